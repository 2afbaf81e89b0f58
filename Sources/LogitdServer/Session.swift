import Decoding
import LogitdProtocol

/// One decoding session: its parameters and where it stands. Steps of one session never run
/// concurrently (the broker keeps at most one in flight per session), so a session needs no lock.
final class Session {
    let id: UInt64
    let parameters: SessionParameters
    let seed: UInt64
    /// The next request's step index. Greedy/sample: the length of the longest sequence (one more
    /// per STEP; a VERIFY adds the tokens it returned); beam: the number of steps decoded.
    var step = 0
    var isDone = false
    var lastUsed: ContinuousClock.Instant
    /// The identity that opened it (its CURVE public key, or "" without CURVE): the only one it answers.
    var owner = ""
    /// Mirostat's μ of each sequence (sampling sessions with mirostat_tau), else empty.
    var mirostatMu: [Float] = []

    enum State {
        /// Greedy or sampling: every sequence's tokens, why it finished, and its log-probability sum.
        case sequences(selector: TokenSelector, histories: [TokenHistory], finished: [FinishReason?], logprobSums: [Double])
        case beam(BeamSearch, LogitsPipeline)
    }

    /// Internal so that Session+Verify.swift can advance it.
    var state: State

    /// What one step produced, ready to encode.
    struct StepOutcome {
        var summary: StepSummary
        var records: [UInt8]
        var alternatives: [UInt8]
        /// The JSON frame: hypotheses kept this step (beam) or, once done, the final result.
        var json: [UInt8]
        /// The details frame, for sessions that asked for one.
        var details: [UInt8]?

        var frames: [[UInt8]] { [summary.encoded, records, alternatives, json] + (details.map { [$0] } ?? []) }
    }

    init(id: UInt64, parameters: SessionParameters, seed: UInt64, now: ContinuousClock.Instant) {
        self.id = id
        self.parameters = parameters
        self.seed = seed
        lastUsed = now
        let prompt = parameters.promptTokenIDs
        switch (parameters.strategy, parameters.history) {
        case (.beam, .beam(let beams, let finished)?):
            state = .beam(BeamSearch(settings: parameters.beamSettings, prompt: prompt, beams: beams, finished: finished), LogitsPipeline(settings: parameters.processors))
        case (.beam, _):
            state = .beam(BeamSearch(settings: parameters.beamSettings, prompt: prompt), LogitsPipeline(settings: parameters.processors))
        case (_, let history):
            let selector = TokenSelector(settings: parameters.processors, seed: parameters.strategy == .sample ? seed : nil)
            var generated = Array(repeating: [Int](), count: parameters.n)
            var sums = Array(repeating: 0.0, count: parameters.n)
            if parameters.strategy == .sample && parameters.processors.isActive(.mirostat) && parameters.processors.temperature != 0 {
                mirostatMu = Array(repeating: 2 * parameters.processors.mirostatTau, count: parameters.n)
            }
            if case .sequences(let tokens, let logprobSums, let mu)? = history {
                generated = tokens
                sums = logprobSums
                if let mu, !mirostatMu.isEmpty { mirostatMu = mu }
            }
            let stop = parameters.stopConditions
            state = .sequences(selector: selector, histories: generated.map { TokenHistory(prompt: prompt, generated: $0) },
                               finished: generated.map { $0.isEmpty ? nil : stop.finishReason($0) }, logprobSums: sums)
        }
        step = parameters.history?.step ?? 0
    }

    /// How many rows the next STEP must carry: the unfinished sequences, or the live beams.
    var expectedRows: Int {
        switch state {
        case .sequences(_, _, let finished, _): finished.filter { $0 == nil }.count
        case .beam(let search, _): search.beams.count
        }
    }

    /// Decodes one step. Changes nothing when it throws.
    func advance(_ request: StepRequest, workspace: Workspace) throws(ProtocolError) -> StepOutcome {
        try check(step: request.descriptor.step, vocab: request.descriptor.vocab, sparse: request.descriptor.sparse)
        guard request.descriptor.logNormaliser else { return try advance(request, pairs: request.logits, logNormalisers: nil, workspace: workspace) }
        // Layout 2: the pairs without their rows' log-sum-exp, which only raw log-probabilities use.
        let (pairs, logNormalisers) = request.splitLogNormalisers()
        for (row, value) in logNormalisers.enumerated() where !value.isFinite {
            throw ProtocolError(.invalidLogits, "row \(row): the log-sum-exp is \(value); it must be finite")
        }
        return try pairs.withUnsafeBytes { bytes in
            Result { () throws(ProtocolError) in try advance(request, pairs: bytes, logNormalisers: logNormalisers, workspace: workspace) }
        }.get()
    }

    private func advance(_ request: StepRequest, pairs: UnsafeRawBufferPointer, logNormalisers: [Float]?, workspace: Workspace) throws(ProtocolError) -> StepOutcome {
        let descriptor = request.descriptor
        guard descriptor.rows == expectedRows else {
            throw ProtocolError(.wrongStep, "session \(id) has \(expectedRows) live \(parameters.strategy == .beam ? "beams" : "sequences"); the step has \(descriptor.rows) rows")
        }
        // A mask spans the session's vocabulary, for sparse rows too.
        let masks = try request.mask.map { (frame) throws(ProtocolError) in try RowMasks.parse(frame, rows: descriptor.rows, vocab: parameters.vocabSize) }
        // Sparse rows: greedy and sampling decode the candidates directly (those outside the mask
        // dropped); beam search expands them to dense rows (-inf outside the candidates) in the
        // workspace.
        var rows: [LogitRow]
        if descriptor.sparse && parameters.strategy == .beam {
            do throws(SparseRowError) {
                rows = try workspace.expandSparseRows(pairs, rows: descriptor.rows, candidates: descriptor.vocab, vocab: parameters.vocabSize)
            } catch {
                throw ProtocolError(.invalidLogits, "\(error)")
            }
        } else if descriptor.sparse {
            rows = []
        } else {
            rows = (0..<descriptor.rows).map(request.row)
        }
        if let masks { rows = rows.indices.map { masks.masked(rows[$0], $0) } }
        switch state {
        case .sequences(let selector, var histories, var finished, var logprobSums):
            var tokens: [SequenceToken] = []
            var alternatives: [[TokenChoice]] = []
            var details: [StepDetails] = []
            var mu = mirostatMu
            let asked = parameters.reportRequest
            var row = 0
            for sequence in finished.indices where finished[sequence] == nil {
                let sparseCandidates = descriptor.sparse ? try candidates(pairs, row: row, perRow: descriptor.vocab, masks: masks) : nil
                if let logNormalisers, let sparseCandidates {
                    let own = Self.logSumExp(sparseCandidates)
                    guard logNormalisers[row] >= own - 1e-5 * max(1, abs(own)) else {
                        throw ProtocolError(.invalidLogits, "row \(row): the log-sum-exp \(logNormalisers[row]) is below its own candidates' (\(own))")
                    }
                }
                // Draws are keyed by the token's position in its sequence, so that a VERIFY and a
                // STEP at the same position draw alike.
                let position = histories[sequence].generated.count
                do throws(LogitRowError) {
                    let forced = parameters.thinking?.forcedToken(histories[sequence])
                    let report = if let forced {
                        try selector.forced(forced, row: sparseCandidates == nil ? rows[row] : nil, sparse: sparseCandidates, vocab: parameters.vocabSize,
                                            history: histories[sequence], request: asked, workspace: workspace)
                    } else if let sparseCandidates {
                        try selector.report(fromSparse: sparseCandidates, vocab: parameters.vocabSize, history: histories[sequence], sequence: sequence, step: position, request: asked,
                                            mirostatMu: mu.isEmpty ? nil : mu[sequence], logNormaliser: logNormalisers?[row], workspace: workspace)
                    } else {
                        try selector.report(from: rows[row], history: histories[sequence], sequence: sequence, step: position, request: asked,
                                            mirostatMu: mu.isEmpty ? nil : mu[sequence], workspace: workspace)
                    }
                    if let updated = report.mirostatMu, !mu.isEmpty { mu[sequence] = updated }
                    let choice = report.choice
                    histories[sequence].generated.append(choice.token)
                    logprobSums[sequence] += Double(choice.logprob)
                    finished[sequence] = parameters.stopConditions.finishReason(histories[sequence].generated)
                    tokens.append(SequenceToken(sequence: sequence, token: choice.token, logprob: choice.logprob, finishReason: finished[sequence], forced: forced != nil))
                    alternatives.append(report.alternatives)
                    details.append(StepDetails(rank: report.rank, tokenLogprobs: report.tokenLogprobs, support: report.support))
                } catch {
                    throw ProtocolError(row: row, error)
                }
                row += 1
            }
            var summary = commit(selector, histories, finished, logprobSums, records: tokens.count)
            summary.hasDetails = parameters.hasDetails
            mirostatMu = mu
            // Mirostat sessions: every sequence's μ in frame 4, which recovery sends back.
            let json = isDone ? result.encoded : mu.isEmpty ? [] : MirostatState(mu: mu).encoded
            return StepOutcome(summary: summary, records: SequenceToken.encode(tokens), alternatives: AlternativesBody.encode(alternatives), json: json,
                               details: parameters.hasDetails ? StepDetails.encode(details, layout: StepDetails.Layout(parameters)) : nil)
        case .beam(var search, let pipeline):
            let beamStep: BeamStep
            do throws(BeamSearchError) {
                beamStep = try search.advance(rows: rows, pipeline: pipeline, workspace: workspace)
            } catch {
                switch error {
                case .row(let index, let rowError): throw ProtocolError(row: index, rowError)
                case .finished, .wrongRowCount: throw ProtocolError(.wrongStep, "\(error)")
                }
            }
            state = .beam(search, pipeline)
            step += 1
            isDone = beamStep.isDone
            let records = beamStep.beams.map { BeamRecord(parent: $0.parent, token: $0.token, score: $0.score) }
            let summary = StepSummary(session: id, step: step - 1, records: records.count, stablePrefixLength: beamStep.stablePrefixLength, kind: .beams, isDone: isDone, alternatives: 0)
            let kept = SessionResult(session: id, steps: step, sequences: zip(beamStep.finished, beamStep.finishedParents).map { hypothesis, parent in
                var kept = Self.finished(hypothesis)
                kept.parent = parent
                return kept
            })
            return StepOutcome(summary: summary, records: BeamRecord.encode(records), alternatives: [], json: isDone ? result.encoded : kept.encoded)
        }
    }

    /// A STEP's or VERIFY's step index and row width against the session's: dense rows span its
    /// vocabulary, sparse rows hold at most that many candidates.
    func check(step requested: Int, vocab: Int, sparse: Bool) throws(ProtocolError) {
        guard requested == step else {
            throw ProtocolError(.wrongStep, "session \(id) expects step \(step), got step \(requested)")
        }
        if sparse {
            guard vocab <= parameters.vocabSize else {
                throw ProtocolError(.badShape, "\(vocab) candidates per row; session \(id) has vocab_size \(parameters.vocabSize)")
            }
        } else if vocab != parameters.vocabSize {
            throw ProtocolError(.badShape, "vocab is \(vocab); session \(id) was opened with vocab_size \(parameters.vocabSize)")
        }
    }

    /// Sparse row `row` of `pairs` as candidates, those its mask disallows dropped.
    func candidates(_ pairs: UnsafeRawBufferPointer, row: Int, perRow: Int, masks: RowMasks?) throws(ProtocolError) -> [Candidate] {
        var candidates: [Candidate]
        do throws(SparseRowError) {
            candidates = try Workspace.sparseCandidates(pairs, row: row, candidates: perRow, vocab: parameters.vocabSize)
        } catch {
            throw ProtocolError(.invalidLogits, "\(error)")
        }
        if let masks {
            candidates = candidates.filter { masks.allows(Int($0.token), row: row) }
            // Nothing allowed: the same error as a dense row masked everywhere.
            if candidates.isEmpty { throw ProtocolError(row: row, LogitRowError.allMasked) }
        }
        return candidates
    }

    /// log Σ exp of the candidates' logits (after any mask), in Double.
    static func logSumExp(_ candidates: [Candidate]) -> Float {
        guard let top = candidates.map(\.logit).max(), top > -.infinity else { return -.infinity }
        return Float(Double(top) + Double.log(candidates.reduce(0.0) { $0 + Double.exp(Double($1.logit - top)) }))
    }

    /// Stores a greedy/sampling step's new state; the step index becomes the longest sequence's
    /// length. Returns the summary of the step just decoded.
    func commit(_ selector: TokenSelector, _ histories: [TokenHistory], _ finished: [FinishReason?], _ logprobSums: [Double], records: Int) -> StepSummary {
        state = .sequences(selector: selector, histories: histories, finished: finished, logprobSums: logprobSums)
        let decoded = step
        step = histories.map(\.generated.count).max() ?? 0
        isDone = !finished.contains(nil)
        return StepSummary(session: id, step: decoded, records: records, stablePrefixLength: 0, kind: .sequences, isDone: isDone, alternatives: parameters.logprobs)
    }

    /// Every sequence so far (greedy/sample), or the n best hypotheses (beam).
    var result: SessionResult {
        switch state {
        case .sequences(_, let histories, let finished, let logprobSums):
            let sequences = histories.indices.map {
                FinishedSequence(sequence: $0, tokens: histories[$0].generated, finishReason: finished[$0], logprobSum: logprobSums[$0])
            }
            return SessionResult(session: id, steps: step, sequences: sequences)
        case .beam(let search, _):
            return SessionResult(session: id, steps: step, sequences: search.best.map(Self.finished))
        }
    }

    private static func finished(_ hypothesis: Hypothesis) -> FinishedSequence {
        FinishedSequence(tokens: hypothesis.tokens, finishReason: hypothesis.finishReason, logprobSum: hypothesis.logprobSum, score: hypothesis.score)
    }
}
