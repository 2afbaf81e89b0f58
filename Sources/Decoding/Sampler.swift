import RealModule

/// Choosing one token from what the chain left, with the log-probability of that token under the
/// distribution it was chosen from.
public enum Sampler {
    /// The most likely candidate, the lowest token id among equals.
    public static func greedy(_ set: CandidateSet) -> TokenChoice {
        switch set {
        case .dense(let row, let scale):
            // This cannot fail: the pipeline already validated the row.
            return (try? Greedy.choose(from: row, scale: scale)) ?? TokenChoice(token: 0, logprob: 0)
        case .sparse(let candidates):
            var best = candidates[0]
            for candidate in candidates.dropFirst() where Candidate.ranksBefore(candidate, best) { best = candidate }
            let total = Warpers.exponentialWeights(candidates, shift: best.logit).reduce(0.0) { $0 + Double($1) }
            return TokenChoice(token: Int(best.token), logprob: Float(-Double.log(total)))
        }
    }

    /// Inverse-CDF sampling with one uniform draw `u` ∈ [0, 1): the candidates are walked in
    /// ascending token order and the first whose running probability exceeds u is chosen.
    public static func sample(_ set: CandidateSet, uniform u: Double) -> TokenChoice {
        switch set {
        case .dense(let row, let scale):
            // This cannot fail: the pipeline already validated the row.
            let (maximum, total) = (try? row.validatedNormaliser(scale: scale)).map { ($0.maximum.value, $0.exponentialSum) } ?? (0, 1)
            let token = row.inverseCDF(shift: maximum, scale: scale, target: u * total)
            let logprob = Double((row[token] - maximum) * scale) - Double.log(total)
            return TokenChoice(token: token, logprob: Float(logprob))
        case .sparse(let candidates):
            let top = candidates.map(\.logit).max()!
            let weights = Warpers.exponentialWeights(candidates, shift: top)
            let total = weights.reduce(0.0) { $0 + Double($1) }
            let target = u * total
            var cumulative = 0.0
            var chosen = candidates.count - 1
            for (index, weight) in weights.enumerated() {
                cumulative += Double(weight)
                if cumulative > target { chosen = index; break }
            }
            let logprob = Double(candidates[chosen].logit - top) - Double.log(total)
            return TokenChoice(token: Int(candidates[chosen].token), logprob: Float(logprob))
        }
    }
}

extension Sampler {
    /// The `n` most likely candidates with their log-probabilities under the same distribution
    /// (rank order: logit descending, token ascending among equals).
    public static func alternatives(_ n: Int, of set: CandidateSet, workspace: Workspace) -> [TokenChoice] {
        guard n > 0 else { return [] }
        switch set {
        case .dense(let row, let scale):
            guard let summary = try? row.validatedSummary(workspace, slot: .inputBlocks, exponentialScale: scale),
                  let total = summary.exponentialSum else { return [] }
            let maximum = summary.maximum.value
            let logTotal = Double.log(total)
            let top = row.collectTopK(min(n, row.count), summary: summary, scale: scale, workspace: workspace)
            return top.sorted(by: Candidate.ranksBefore).prefix(n).map {
                TokenChoice(token: Int($0.token), logprob: Float(Double($0.logit - maximum * scale) - logTotal))
            }
        case .sparse(let candidates):
            let top = candidates.map(\.logit).max()!
            let logTotal = Double.log(Warpers.exponentialWeights(candidates, shift: top).reduce(0.0) { $0 + Double($1) })
            return candidates.sorted(by: Candidate.ranksBefore).prefix(n).map {
                TokenChoice(token: Int($0.token), logprob: Float(Double($0.logit - top) - logTotal))
            }
        }
    }
}

/// The whole per-row decision for greedy or sampling: the chain, then argmax or a seeded draw.
public struct TokenSelector: Sendable {
    public let pipeline: LogitsPipeline
    /// nil: greedy. Otherwise draws come from this generator at (sequence, step).
    public let generator: Philox?

    public init(settings: ProcessorSettings, seed: UInt64?) {
        pipeline = LogitsPipeline(settings: settings)
        generator = settings.temperature == 0 ? nil : seed.map(Philox.init)
    }

    /// Chooses the next token of sequence `sequence` at generation step `step`.
    public func choose(from row: LogitRow, history: TokenHistory, sequence: Int, step: Int, workspace: Workspace) throws(LogitRowError) -> TokenChoice {
        try report(from: row, history: history, sequence: sequence, step: step, request: ReportRequest(), workspace: workspace).choice
    }
}
