import RealModule

/// A chosen token and its log-probability under the softmax of the row it came from.
public struct TokenChoice: Equatable, Sendable {
    public let token: Int
    public let logprob: Float

    public init(token: Int, logprob: Float) {
        self.token = token
        self.logprob = logprob
    }
}

/// Greedy decoding: the most likely token, the lowest id among equals.
public enum Greedy {
    /// The argmax of the row and log softmax(row × scale) at it, which is
    /// −log Σ exp((xᵢ − max) × scale): one scan for both, no output row.
    public static func choose(from row: LogitRow, scale: Float = 1) throws(LogitRowError) -> TokenChoice {
        let (maximum, sum) = try row.validatedNormaliser(scale: scale)
        return TokenChoice(token: maximum.index, logprob: Float(-Double.log(sum)))
    }
}
