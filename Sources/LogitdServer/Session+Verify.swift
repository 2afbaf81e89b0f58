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
        guard descriptor.step == step else {
            throw ProtocolError(.wrongStep, "session \(id) expects step \(step), got step \(descriptor.step)")
        }
        let sequence = descriptor.sequence
        guard sequence < finished.count else {
            throw ProtocolError(.wrongStep, "session \(id) has \(finished.count) sequences; VERIFY names sequence \(sequence)")
        }
        guard finished[sequence] == nil else {
            throw ProtocolError(.wrongStep, "sequence \(sequence) of session \(id) has finished (\(finished[sequence]!.rawValue))")
        }
        let vocab = parameters.vocabSize
        if descriptor.sparseTargets {
            guard descriptor.vocab <= vocab else {
                throw ProtocolError(.badShape, "\(descriptor.vocab) candidates per target row; session \(id) has vocab_size \(vocab)")
            }
        } else if descriptor.vocab != vocab {
            throw ProtocolError(.badShape, "vocab is \(descriptor.vocab); session \(id) was opened with vocab_size \(vocab)")
        }
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
        state = .sequences(selector: selector, histories: histories, finished: finished, logprobSums: logprobSums)
        let decoded = step
        step = histories.map(\.generated.count).max() ?? 0
        isDone = !finished.contains(nil)
        let summary = StepSummary(session: id, step: decoded, records: records.count, stablePrefixLength: 0, kind: .sequences, isDone: isDone, alternatives: parameters.logprobs)
        return VerifyOutcome(summary: VerifySummary(step: summary, sequence: sequence, accepted: verification.accepted), records: SequenceToken.encode(records),
                             alternatives: AlternativesBody.encode(verification.alternatives), json: isDone ? result.encoded : [])
    }

    /// The k + 1 target rows, masked; sparse rows as candidates (those a mask disallows dropped).
    private func targetRows(_ request: VerifyRequest, masks: RowMasks?) throws(ProtocolError) -> [TargetRow] {
        let descriptor = request.descriptor
        var rows: [TargetRow] = []
        for index in 0...descriptor.draftTokens {
            if descriptor.sparseTargets {
                var candidates: [Candidate]
                do throws(SparseRowError) {
                    candidates = try Workspace.sparseCandidates(request.targets, row: index, candidates: descriptor.vocab, vocab: parameters.vocabSize)
                } catch {
                    throw ProtocolError(.invalidLogits, "\(error)")
                }
                if let masks {
                    candidates = candidates.filter { masks.allows(Int($0.token), row: index) }
                    if candidates.isEmpty { throw ProtocolError(row: index, LogitRowError.allMasked) }
                }
                rows.append(.sparse(candidates))
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
