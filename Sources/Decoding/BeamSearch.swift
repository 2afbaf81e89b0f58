import RealModule

/// Hugging Face transformers' `early_stopping` for beam search.
public enum EarlyStopping: String, Sendable, Codable, CaseIterable {
    /// `True`: stop as soon as `width` hypotheses are finished.
    case whenFull = "true"
    /// `False` (HF's default): stop when the best live beam, scored at its current length, cannot
    /// beat the worst kept hypothesis.
    case heuristic = "false"
    /// `"never"`: the same bound, but with a positive length penalty scored at the maximum length,
    /// so the search only stops when no better hypothesis is possible.
    case never
}

public struct BeamSearchSettings: Sendable, Equatable {
    public var width: Int
    /// Finished scores are sum ÷ length^lengthPenalty.
    public var lengthPenalty: Double = 1
    public var earlyStopping: EarlyStopping = .heuristic
    /// How many hypotheses `best` returns (≤ width).
    public var numReturn: Int = 1
    /// Added to the generated length wherever a length is scored: 0 counts generated tokens only
    /// (HF today); the prompt length gives the older decoder-only convention.
    public var lengthOffset: Int = 0
    public var stop: StopConditions

    public init(width: Int, stop: StopConditions) {
        self.width = width
        self.stop = stop
    }

    public func validate() throws(ParameterError) {
        if width < 1 { throw ParameterError(name: "beam_width", rule: "must be ≥ 1") }
        if numReturn < 1 || numReturn > width { throw ParameterError(name: "num_return", rule: "must be between 1 and beam_width (\(width))") }
        if !lengthPenalty.isFinite { throw ParameterError(name: "length_penalty", rule: "must be finite") }
        if stop.maxNewTokens < 1 { throw ParameterError(name: "max_new_tokens", rule: "must be ≥ 1") }
        if lengthOffset < 0 { throw ParameterError(name: "length_offset", rule: "must be ≥ 0") }
    }
}

/// A live beam: its generated tokens and cumulative (processed) log-probability.
public struct Beam: Equatable, Sendable, Codable {
    public var tokens: [Int]
    public var score: Double

    public init(tokens: [Int], score: Double) {
        self.tokens = tokens
        self.score = score
    }
}

/// A finished hypothesis: its tokens (the EOS included), its length-normalised score, and the plain
/// sum of log-probabilities.
public struct Hypothesis: Equatable, Sendable, Codable {
    public var tokens: [Int]
    public var score: Double
    public var logprobSum: Double
    public var finishReason: FinishReason

    public init(tokens: [Int], score: Double, logprobSum: Double, finishReason: FinishReason) {
        self.tokens = tokens
        self.score = score
        self.logprobSum = logprobSum
        self.finishReason = finishReason
    }
}

/// What one step did: the new live beams (each with the row it continues), the hypotheses that
/// entered the kept set, how many leading tokens can no longer change, and whether search is over.
public struct BeamStep: Equatable, Sendable {
    public struct NewBeam: Equatable, Sendable {
        public let parent: Int
        public let token: Int
        public let score: Double
    }

    public let beams: [NewBeam]
    public let finished: [Hypothesis]
    /// For each of `finished`, the row (of the step just sent) it continues.
    public let finishedParents: [Int]
    public let stablePrefixLength: Int
    public let isDone: Bool
}

/// Beam search as a step-by-step state machine with Hugging Face transformers' semantics
/// (`generation/utils.py`, `_beam_search`), for one sequence:
///
/// - every live beam's row is log-softmaxed, then the processors (not the warpers) run on it;
/// - the best max(2, 1 + #EOS) × width continuations over all beams × vocabulary are ranked by
///   cumulative log-probability (ties: lower beam, then lower token first);
/// - a continuation that ends in EOS, completes a stop sequence or reaches the maximum length
///   finishes, but only when it ranks within the top `width`; its score is
///   sum ÷ (generated length incl. that token + lengthOffset)^lengthPenalty; the best `width`
///   finished hypotheses are kept (none are added once `width` are kept with early stopping on);
/// - the next live beams are the best `width` unfinished continuations by cumulative score;
/// - the search ends when no continuation is unfinished, when `width` hypotheses are kept with
///   `.whenFull`, or when the best live beam's score ÷ length^penalty (length: its current length,
///   or the maximum with `.never` and a positive penalty) is not above the worst kept hypothesis.
///
/// Deliberate differences from HF, all for degenerate inputs: the first step starts from one beam
/// instead of `width` copies scored −1e9, continuations with −inf score are never taken, and
/// scores are Float64 rather than Float32.
public struct BeamSearch: Sendable {
    public let settings: BeamSearchSettings
    public let prompt: [Int]
    public private(set) var beams: [Beam]
    /// Kept hypotheses, best first, at most `width`.
    public private(set) var finished: [Hypothesis]
    public private(set) var isDone = false

    public init(settings: BeamSearchSettings, prompt: [Int] = []) {
        self.settings = settings
        self.prompt = prompt
        beams = [Beam(tokens: [], score: 0)]
        finished = []
    }

    /// Resumes a search from saved state (for recovery on another daemon).
    public init(settings: BeamSearchSettings, prompt: [Int], beams: [Beam], finished: [Hypothesis], isDone: Bool = false) {
        self.settings = settings
        self.prompt = prompt
        self.beams = beams
        self.finished = finished
        self.isDone = isDone
    }

    /// Tokens generated by every live beam.
    public var generatedLength: Int { beams.first?.tokens.count ?? 0 }

    /// The `numReturn` best finished hypotheses, best first.
    public var best: [Hypothesis] { Array(finished.prefix(settings.numReturn)) }

    private struct Continuation {
        let beam: Int
        let token: Int
        let score: Double
    }

    /// Advances by one token. `rows[i]` holds the logits for live beam `i`, in the order of `beams`.
    public mutating func advance(rows: [LogitRow], pipeline: LogitsPipeline, workspace: Workspace) throws(BeamSearchError) -> BeamStep {
        guard !isDone else { throw .finished }
        guard rows.count == beams.count else { throw .wrongRowCount(expected: beams.count, got: rows.count) }
        let keep = max(2, 1 + settings.stop.eosTokens.count) * settings.width
        var pool: [Continuation] = []
        for (index, row) in rows.enumerated() {
            do throws(LogitRowError) {
                pool += try continuations(of: index, row: row, keep: keep, pipeline: pipeline, workspace: workspace)
            } catch {
                throw .row(index, error)
            }
        }
        pool.sort { $0.score > $1.score || ($0.score == $1.score && ($0.beam < $1.beam || ($0.beam == $1.beam && $0.token < $1.token))) }
        if pool.count > keep { pool.removeLast(pool.count - keep) }
        guard !pool.isEmpty else { throw .row(0, .noCandidates) }

        let length = generatedLength + 1
        var nextBeams: [Beam] = []
        var newBeams: [BeamStep.NewBeam] = []
        var newlyFinished: [Hypothesis] = []
        var parents: [Int] = []
        let full = finished.count == settings.width
        let acceptFinished = !(full && settings.earlyStopping == .whenFull)
        var anyOpen = false
        for (rank, continuation) in pool.enumerated() {
            let tokens = beams[continuation.beam].tokens + [continuation.token]
            if let reason = settings.stop.finishReason(tokens) {
                if rank < settings.width && acceptFinished {
                    let normalised = continuation.score / Double.pow(Double(length + settings.lengthOffset), settings.lengthPenalty)
                    newlyFinished.append(Hypothesis(tokens: tokens, score: normalised, logprobSum: continuation.score, finishReason: reason))
                    parents.append(continuation.beam)
                }
            } else {
                anyOpen = true
                if nextBeams.count < settings.width {
                    nextBeams.append(Beam(tokens: tokens, score: continuation.score))
                    newBeams.append(BeamStep.NewBeam(parent: continuation.beam, token: continuation.token, score: continuation.score))
                }
            }
        }
        // Merge: the kept hypotheses first, so an equal newcomer does not displace an older one.
        let merged = (finished + newlyFinished).enumerated().sorted {
            $0.element.score > $1.element.score || ($0.element.score == $1.element.score && $0.offset < $1.offset)
        }.map(\.element)
        finished = Array(merged.prefix(settings.width))
        let entered = newlyFinished.indices.filter { finished.contains(newlyFinished[$0]) }
        beams = nextBeams
        isDone = !(anyOpen && improvementPossible(length: length) && !(finished.count == settings.width && settings.earlyStopping == .whenFull))
        return BeamStep(beams: newBeams, finished: entered.map { newlyFinished[$0] }, finishedParents: entered.map { parents[$0] }, stablePrefixLength: stablePrefixLength, isDone: isDone)
    }

    /// HF's bound: can the best live beam still beat the worst kept hypothesis?
    private func improvementPossible(length: Int) -> Bool {
        guard let best = beams.first else { return false }
        guard finished.count == settings.width, let worst = finished.last else { return true }
        let hypotheticalLength = settings.earlyStopping == .never && settings.lengthPenalty > 0
            ? settings.stop.maxNewTokens + settings.lengthOffset
            : length + settings.lengthOffset
        return best.score / Double.pow(Double(hypotheticalLength), settings.lengthPenalty) > worst.score
    }

    /// Leading tokens shared by every sequence that can still become the best result: the live
    /// beams and the kept hypotheses; once done, the whole best hypothesis.
    public var stablePrefixLength: Int {
        if isDone { return finished.first?.tokens.count ?? 0 }
        let sequences = beams.map(\.tokens) + finished.map(\.tokens)
        guard let first = sequences.first else { return 0 }
        var length = first.count
        for sequence in sequences.dropFirst() {
            length = min(length, sequence.count)
            var index = 0
            while index < length && sequence[index] == first[index] { index += 1 }
            length = index
        }
        return length
    }

    /// The best `keep` continuations of one beam: processed log-probabilities plus the beam's score.
    private func continuations(of index: Int, row: LogitRow, keep: Int, pipeline: LogitsPipeline, workspace: Workspace) throws(LogitRowError) -> [Continuation] {
        let summary = try row.validatedSummary(workspace, slot: .inputBlocks, exponentialScale: 1)
        let maximum = summary.maximum.value
        let logNormaliser = maximum + Float(Double.log(summary.exponentialSum ?? 1))
        let beam = beams[index]
        let candidates: [Candidate]
        if pipeline.isIdentity(sampling: false) {
            candidates = row.collectTopK(min(keep, row.count), summary: summary, scale: 1, workspace: workspace).map {
                Candidate(token: Int($0.token), logit: $0.logit - logNormaliser)
            }
        } else {
            let values = workspace.scratch(count: row.count, slot: .input)
            row.write(shiftedBy: logNormaliser, into: values)
            let logProbabilities = LogitRow(bytes: UnsafeRawBufferPointer(values), dtype: .float32)
            let set = try pipeline.candidates(for: logProbabilities, history: TokenHistory(prompt: prompt, generated: beam.tokens), sampling: false, workspace: workspace)
            switch set {
            case .dense(let processed, _):
                let processedSummary = try processed.validatedSummary(workspace, slot: .pipelineBlocks)
                candidates = processed.collectTopK(min(keep, processed.count), summary: processedSummary, scale: 1, workspace: workspace)
            case .sparse(let list): candidates = Warpers.topK(list, k: min(keep, list.count))
            }
        }
        return candidates.map { Continuation(beam: index, token: Int($0.token), score: beam.score + Double($0.logit)) }
    }
}

public enum BeamSearchError: Error, Equatable, Sendable, CustomStringConvertible {
    case finished
    case wrongRowCount(expected: Int, got: Int)
    case row(Int, LogitRowError)

    public var description: String {
        switch self {
        case .finished: "the beam search is already finished"
        case .wrongRowCount(let expected, let got): "expected one row per live beam (\(expected)), got \(got)"
        case .row(let index, let error): "row \(index): \(error)"
        }
    }
}
