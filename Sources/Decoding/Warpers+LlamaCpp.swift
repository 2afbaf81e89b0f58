import RealModule

/// What the seeded and stateful stages need beyond the row and the history: XTC's coin for this
/// token and the sequence's mirostat μ.
public struct StageState: Equatable, Sendable {
    /// A uniform draw in [0, 1): XTC fires when it is below xtc_probability.
    public var xtcCoin: Double?
    /// Mirostat's μ for this sequence (bits).
    public var mirostatMu: Float?

    public init(xtcCoin: Double? = nil, mirostatMu: Float? = nil) {
        self.xtcCoin = xtcCoin
        self.mirostatMu = mirostatMu
    }
}

/// The samplers llama.cpp users pick (src/llama-sampling.cpp): top-n-σ, XTC, mirostat 2.0 and
/// dynamic temperature, on candidate lists and on whole rows.
extension Warpers {
    // MARK: Sparse

    /// llama.cpp top-n-sigma: the mean and population standard deviation σ of the finite logits;
    /// remove every token below max − n·σ (no floor; the maximum always stays).
    static func topNSigma(_ candidates: [Candidate], n: Float) -> [Candidate] {
        guard candidates.count > 1, let top = candidates.map(\.logit).max() else { return candidates }
        let mean = candidates.reduce(0.0) { $0 + Double($1.logit) } / Double(candidates.count)
        let variance = candidates.reduce(0.0) { $0 + (Double($1.logit) - mean) * (Double($1.logit) - mean) } / Double(candidates.count)
        let threshold = Double(top) - Double(n) * variance.squareRoot()
        return candidates.filter { Double($0.logit) >= threshold }
    }

    /// llama.cpp xtc, when its coin fired: in rank order, the tokens with probability ≥ threshold
    /// form a prefix; all of them but the last are removed, if at least two qualify and at least
    /// `minKeep` tokens remain.
    static func xtc(_ candidates: [Candidate], threshold: Float, minKeep: Int) -> [Candidate] {
        guard candidates.count > 1, let top = candidates.map(\.logit).max() else { return candidates }
        let logTotal = Double.log(candidates.reduce(0.0) { $0 + Double.exp(Double($1.logit - top)) })
        let order = rankOrder(candidates)
        let above = order.prefix { Double.exp(Double(candidates[$0].logit - top) - logTotal) >= Double(threshold) }.count
        guard above >= 2, candidates.count - (above - 1) >= minKeep else { return candidates }
        let removed = Set(order.prefix(above - 1))
        return candidates.indices.filter { !removed.contains($0) }.map { candidates[$0] }
    }

    /// llama.cpp mirostat-v2's truncation: the tokens whose surprise −log₂ p is at most μ, or the
    /// most likely one when none is.
    static func mirostat(_ candidates: [Candidate], mu: Float) -> [Candidate] {
        guard let top = candidates.map(\.logit).max() else { return candidates }
        let logTotal = Double.log(candidates.reduce(0.0) { $0 + Double.exp(Double($1.logit - top)) })
        let kept = candidates.filter { -(Double($0.logit - top) - logTotal) / Double.log(2) <= Double(mu) }
        return kept.isEmpty ? [candidates[rankOrder(candidates)[0]]] : kept
    }

    /// llama.cpp temp-ext: the temperature for candidates with entropy `entropy` (nats) among
    /// `count` finite ones.
    static func dynamicTemperature(_ settings: ProcessorSettings, entropy: Double, count: Int) -> Float {
        let low = max(0, settings.temperature - settings.dynatempRange)
        let high = settings.temperature + settings.dynatempRange
        let normalized = entropy / Double.log(Double(count))
        return low + (high - low) * Float(Double.pow(max(0, normalized), Double(settings.dynatempExponent)))
    }

    /// The dynamic-temperature stage on a list: unchanged with one candidate (as llama.cpp), only
    /// the best by rank at temperature 0.
    static func dynamicTemperature(_ candidates: [Candidate], settings: ProcessorSettings) -> [Candidate] {
        guard candidates.count > 1 else { return candidates }
        let temperature = dynamicTemperature(settings, entropy: Double(SetDistribution(.sparse(candidates)).entropy), count: candidates.count)
        guard temperature > 0 else { return [candidates[rankOrder(candidates)[0]]] }
        return candidates.map { Candidate(token: Int($0.token), logit: $0.logit / temperature) }
    }

    // MARK: Dense

    /// top-n-σ on a whole row: one pass for the moments (about the maximum), then the collection.
    static func topNSigma(_ row: LogitRow, summary: RowSummary, scale: Float, n: Float, workspace: Workspace) -> [Candidate] {
        let maximum = summary.maximum.value
        let (count, sum, sumSquares) = row.finiteMoments(shiftedBy: maximum)
        let mean = sum / Double(count)
        let sigma = max(0, sumSquares / Double(count) - mean * mean).squareRoot()
        // Scaling by 1/T scales the mean, σ and the maximum alike: the same tokens pass.
        return row.collect(atLeast: Float(Double(maximum) - Double(n) * sigma), summary: summary, scale: scale, workspace: workspace)
    }

    /// XTC on a whole row: the tokens above the probability threshold by one logit threshold; the
    /// rest of the row as a list only when the coin fired and something is removed.
    static func xtc(_ row: LogitRow, summary: RowSummary, scale: Float, threshold: Float, minKeep: Int, workspace: Workspace) -> CandidateSet {
        let maximum = summary.maximum.value
        let total = row.sumOfExponentials(shiftedBy: maximum, scale: scale)
        let cut = Double(maximum) + (Double.log(Double(threshold)) + Double.log(total)) / Double(scale)
        let above = row.collect(atLeast: Float(cut), summary: summary, scale: scale, workspace: workspace)
            .filter { Double.exp(Double($0.logit - maximum * scale)) / total >= Double(threshold) }
        let finite = row.count(atLeast: -.greatestFiniteMagnitude)
        guard above.count >= 2, finite - (above.count - 1) >= minKeep else { return .dense(row, scale: scale) }
        let removed = Set(rankOrder(above).prefix(above.count - 1).map { above[$0].token })
        let all = row.collect(atLeast: -.infinity, summary: summary, scale: scale, workspace: workspace)
        return .sparse(all.filter { !removed.contains($0.token) })
    }

    /// Mirostat's truncation on a whole row: p ≥ 2^−μ ⇔ x ≥ max + (−μ·ln 2 + ln Σ) / scale.
    static func mirostat(_ row: LogitRow, summary: RowSummary, scale: Float, mu: Float, workspace: Workspace) -> [Candidate] {
        let maximum = summary.maximum.value
        let total = row.sumOfExponentials(shiftedBy: maximum, scale: scale)
        let cut = Double(maximum) + (-Double(mu) * Double.log(2) + Double.log(total)) / Double(scale)
        let kept = row.collect(atLeast: Float(cut), summary: summary, scale: scale, workspace: workspace)
            .filter { -(Double($0.logit - maximum * scale) - Double.log(total)) / Double.log(2) <= Double(mu) }
        return kept.isEmpty ? [Candidate(token: summary.maximum.index, logit: maximum * scale)] : kept
    }

    /// Dynamic temperature on a whole row: the entropy by the exp-moment kernel.
    static func dynamicTemperature(_ row: LogitRow, scale: Float, summary: RowSummary, settings: ProcessorSettings) -> CandidateSet {
        let finite = row.count(atLeast: -.greatestFiniteMagnitude)
        guard finite > 1 else { return .dense(row, scale: scale) }
        let temperature = dynamicTemperature(settings, entropy: Double(SetDistribution(.dense(row, scale: scale)).entropy), count: finite)
        guard temperature > 0 else { return .sparse([Candidate(token: summary.maximum.index, logit: summary.maximum.value * scale)]) }
        return .dense(row, scale: scale / temperature)
    }
}
