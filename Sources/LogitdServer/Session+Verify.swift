import Decoding
import LogitdProtocol

extension Session {
    /// What one VERIFY produced, ready to encode: VERIFIED's four body frames.
    struct VerifyOutcome {
        var summary: VerifySummary
        var records: [UInt8]
        var alternatives: [UInt8]
        /// The final result once the session is done, else empty.
        var json: [UInt8]

        var frames: [[UInt8]] { [summary.encoded, records, alternatives, json] }
    }

    /// Verifies a draft for one sequence (docs/DECODING.md, "Speculative verification"). Every
    /// check comes before any change: when it throws, the session is as it was.
    func verify(_ request: VerifyRequest, workspace: Workspace) throws(ProtocolError) -> VerifyOutcome {
        let descriptor = request.descriptor
        guard case .sequences(let selector, var histories, var finished, var logprobSums) = state else {
            throw ProtocolError(.unknownStrategy, "VERIFY is defined for greedy and sampling sessions; session \(id) does beam search, for which speculative verification has no published semantics to match")
        }
        guard parameters.thinking == nil else {
            throw ProtocolError(.badParameters, "VERIFY cannot verify session \(id): it has a thinking budget, whose forced tokens STEP emits")
        }
        guard mirostatMu.isEmpty else {
            throw ProtocolError(.badParameters, "VERIFY cannot verify session \(id): mirostat's μ changes with every token, and speculative verification has no published semantics for it")
        }
        guard parameters.logprobsMode == .processed && !parameters.hasDetails else {
            throw ProtocolError(.badParameters, "VERIFY reports processed log-probabilities only; session \(id) asked for logprobs_mode \"\(parameters.logprobsMode.rawValue)\" or a details frame (STEP gives them)")
        }
        try check(step: descriptor.step, vocab: descriptor.vocab, sparse: descriptor.sparseTargets)
        let sequence = descriptor.sequence
        guard sequence < finished.count else {
            throw ProtocolError(.wrongStep, "session \(id) has \(finished.count) sequences; VERIFY names sequence \(sequence)")
        }
        guard finished[sequence] == nil else {
            throw ProtocolError(.wrongStep, "sequence \(sequence) of session \(id) has finished (\(finished[sequence]!.rawValue))")
        }
        let vocab = parameters.vocabSize
        let k = descriptor.draftTokens
        for (position, token) in request.draftTokens.enumerated() where token >= vocab {
            throw ProtocolError(.badDraft, "draft token \(token) at position \(position) is outside the vocabulary (0..<\(vocab))")
        }
        let masks = try request.mask.map { (frame) throws(ProtocolError) in try RowMasks.parse(frame, rows: k + 1, vocab: vocab) }
        let targets = try targetRows(request, masks: masks)
        let (distributions, sums) = try draftDistributions(request)
        let verification: Verification
        do throws(VerificationError) {
            verification = try selector.verify(draft: request.draftTokens, targets: targets, distributions: distributions, sums: sums,
                                               history: histories[sequence], stop: parameters.stopConditions, sequence: sequence,
                                               alternatives: parameters.logprobs, workspace: workspace)
        } catch {
            switch error {
            case .row(let position, let rowError): throw ProtocolError(row: position, rowError)
            }
        }
        var records: [SequenceToken] = []
        for (index, choice) in verification.tokens.enumerated() {
            histories[sequence].generated.append(choice.token)
            logprobSums[sequence] += Double(choice.logprob)
            let reason = index == verification.tokens.count - 1 ? verification.finishReason : nil
            records.append(SequenceToken(sequence: sequence, token: choice.token, logprob: choice.logprob, finishReason: reason))
        }
        finished[sequence] = verification.finishReason
        let summary = commit(selector, histories, finished, logprobSums, records: records.count)
        return VerifyOutcome(summary: VerifySummary(step: summary, sequence: sequence, accepted: verification.accepted), records: SequenceToken.encode(records),
                             alternatives: AlternativesBody.encode(verification.alternatives), json: isDone ? result.encoded : [])
    }

    /// The k + 1 target rows, masked; sparse rows as candidates (those a mask disallows dropped).
    private func targetRows(_ request: VerifyRequest, masks: RowMasks?) throws(ProtocolError) -> [TargetRow] {
        let descriptor = request.descriptor
        var rows: [TargetRow] = []
        for index in 0...descriptor.draftTokens {
            if descriptor.sparseTargets {
                rows.append(.sparse(try candidates(request.targets, row: index, perRow: descriptor.vocab, masks: masks)))
            } else {
                let row = request.targetRow(index)
                rows.append(.dense(masks.map { $0.masked(row, index) } ?? row))
            }
        }
        return rows
    }

    /// The draft's k distributions, validated, and their sums.
    private func draftDistributions(_ request: VerifyRequest) throws(ProtocolError) -> ([DraftDistribution], [Double]) {
        let descriptor = request.descriptor
        var distributions: [DraftDistribution] = []
        var sums: [Double] = []
        for (position, token) in request.draftTokens.enumerated() {
            let distribution: DraftDistribution
            switch descriptor.draftLayout {
            case .none:
                distribution = .pointMass
            case .dense:
                distribution = .dense(request.draftRow(position))
            case .sparse:
                do throws(SparseRowError) {
                    distribution = .sparse(try Workspace.sparseCandidates(request.drafts, row: position, candidates: descriptor.draftCandidates, vocab: parameters.vocabSize))
                } catch {
                    throw ProtocolError(.badDraft, "\(error)")
                }
            }
            do throws(DraftError) {
                sums.append(try distribution.validated(position: position, token: token))
            } catch {
                throw ProtocolError(.badDraft, "\(error)")
            }
            distributions.append(distribution)
        }
        return (distributions, sums)
    }
}
