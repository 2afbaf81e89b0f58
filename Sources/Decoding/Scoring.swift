import RealModule

/// What SCORE reports of one observed token.
public struct TokenScore: Equatable, Sendable {
    /// log p of the token under the chain's distribution (the raw row's when the chain is empty);
    /// -inf when the chain removed it.
    public var logprob: Float
    /// log p under the softmax of the row as received (its mask applied).
    public var rawLogprob: Float
    /// 1 + the number of other tokens whose raw logit is at least the token's.
    public var rank: Int
    /// The entropy of the chain's distribution, in nats.
    public var entropy: Float

    public init(logprob: Float, rawLogprob: Float, rank: Int, entropy: Float) {
        self.logprob = logprob
        self.rawLogprob = rawLogprob
        self.rank = rank
        self.entropy = entropy
    }
}

extension LogitsPipeline {
    /// Scores `token` as the token that followed `history` where the model gave `row`: the chain
    /// runs as when sampling (warpers included), for perplexity, prompt log-probabilities and
    /// evaluation under stated processors.
    public func score(_ token: Int, row: LogitRow, history: TokenHistory, workspace: Workspace) throws(LogitRowError) -> TokenScore {
        let processed = SetDistribution(try candidates(for: row, history: history, sampling: true, workspace: workspace))
        let raw = isIdentity(sampling: true) ? processed : SetDistribution(.dense(row, scale: 1))
        return TokenScore(logprob: processed.logprobs(of: [token])[0], rawLogprob: raw.logprobs(of: [token])[0],
                          rank: row.count(atLeast: row[token]), entropy: processed.entropy)
    }
}

/// Classification with a language model: the softmax over a few named tokens ("positive",
/// "negative", "neutral"), and how much of the whole distribution they hold.
public enum Classification {
    /// softmax(row[tokens] / temperature), and ln Σ p(tokens) under softmax(row / temperature):
    /// near 0 when the model answers with one of them. Throws `noCandidates` when every named token
    /// is -inf (masked).
    public static func classify(_ row: LogitRow, tokens: [Int], temperature: Float = 1) throws(LogitRowError) -> (probabilities: [Float], logMass: Float) {
        let scale = 1 / temperature
        let (maximum, total) = try row.validatedNormaliser(scale: scale)
        let shifted = tokens.map { Double((row[$0] - maximum.value) * scale) }
        guard let top = shifted.max(), top > -.infinity else { throw .noCandidates }
        let subset = shifted.reduce(0.0) { $0 + Double.exp($1 - top) }
        let logSubset = top + Double.log(subset)
        return (shifted.map { Float(Double.exp($0 - logSubset)) }, Float(min(0, logSubset - Double.log(total))))
    }
}
