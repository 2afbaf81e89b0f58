/// Why a sequence ended.
public enum FinishReason: String, Sendable, Codable, Equatable {
    case eos
    case stopSequence = "stop_sequence"
    case maxTokens = "max_tokens"
}

/// When a sequence is finished: an end-of-sequence token, a stop sequence just completed, or the
/// token budget spent. Checked after each token, in that order.
public struct StopConditions: Sendable, Equatable {
    public var eosTokens: Set<Int>
    /// Token sequences that end generation once the generated tokens end with one of them.
    public var stopSequences: [[Int]]
    /// Most tokens to generate.
    public var maxNewTokens: Int

    public init(eosTokens: [Int] = [], stopSequences: [[Int]] = [], maxNewTokens: Int) {
        self.eosTokens = Set(eosTokens)
        self.stopSequences = stopSequences
        self.maxNewTokens = maxNewTokens
    }

    /// The reason `generated` (whose last token was just chosen) is finished, or nil.
    public func finishReason(_ generated: [Int]) -> FinishReason? {
        if let last = generated.last, eosTokens.contains(last) { return .eos }
        for sequence in stopSequences where !sequence.isEmpty && generated.count >= sequence.count && generated.suffix(sequence.count).elementsEqual(sequence) {
            return .stopSequence
        }
        return generated.count >= maxNewTokens ? .maxTokens : nil
    }
}
