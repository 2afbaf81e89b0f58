/// Where the sequence-dependent stages write: a dense float32 row, or a sparse candidate list.
protocol LogitEditable {
    /// The current logit of `token`, or nil when it is no longer a candidate.
    func logit(of token: Int) -> Float?
    mutating func setLogit(_ value: Float, of token: Int)
    /// Removes every token not in `tokens`.
    mutating func restrict(to tokens: Set<Int>)
}

/// A float32 copy of the row that the edits change in place. Tokens outside the row (a prompt may
/// hold ids the model's vocabulary does not) are no candidates: reading them gives nil, writing
/// them does nothing.
struct DenseEdits: LogitEditable {
    let values: UnsafeMutableBufferPointer<Float>

    func logit(of token: Int) -> Float? {
        guard token >= 0 && token < values.count else { return nil }
        let value = values[token]
        return value > -.infinity ? value : nil
    }

    func setLogit(_ value: Float, of token: Int) {
        if token >= 0 && token < values.count { values[token] = value }
    }

    func restrict(to tokens: Set<Int>) {
        for index in values.indices where !tokens.contains(index) { values[index] = -.infinity }
    }
}

/// Candidates in ascending token order; a -inf logit removes one.
struct SparseEdits: LogitEditable {
    var candidates: [Candidate]

    private func position(of token: Int) -> Int? {
        var low = 0, high = candidates.count
        while low < high {
            let middle = (low + high) / 2
            if Int(candidates[middle].token) < token { low = middle + 1 } else { high = middle }
        }
        return low < candidates.count && Int(candidates[low].token) == token ? low : nil
    }

    func logit(of token: Int) -> Float? {
        position(of: token).map { candidates[$0].logit }
    }

    mutating func setLogit(_ value: Float, of token: Int) {
        guard let index = position(of: token) else { return }
        if value > -.infinity { candidates[index].logit = value } else { candidates.remove(at: index) }
    }

    mutating func restrict(to tokens: Set<Int>) {
        candidates.removeAll { !tokens.contains(Int($0.token)) }
    }
}

extension ProcessorSettings {
    /// Applies one sequence-dependent stage (any stage that is not a warper).
    func applyEdit<Target: LogitEditable>(_ kind: ProcessorKind, to target: inout Target, history: TokenHistory) {
        switch kind {
        case .repetitionPenalty:
            // Hugging Face: once per distinct token of prompt + generated; the sign decides the direction.
            for token in Set(history.prompt).union(history.generated) {
                guard let value = target.logit(of: token) else { continue }
                target.setLogit(value < 0 ? value * repetitionPenalty : value / repetitionPenalty, of: token)
            }
        case .dry:
            for (token, penalty) in dryPenalties(history) {
                guard let value = target.logit(of: token) else { continue }
                target.setLogit(value - penalty, of: token)
            }
        case .presenceFrequencyPenalty:
            // OpenAI / vLLM: generated tokens only; count × frequency + presence.
            var counts: [Int: Int] = [:]
            for token in history.generated { counts[token, default: 0] += 1 }
            for (token, count) in counts {
                guard let value = target.logit(of: token) else { continue }
                target.setLogit(value - Float(count) * frequencyPenalty - presencePenalty, of: token)
            }
        case .noRepeatNGram:
            for token in noRepeatNGramBans(history) { target.setLogit(-.infinity, of: token) }
        case .logitBias:
            for (token, bias) in logitBias {
                guard let value = target.logit(of: token) else { continue }
                target.setLogit(value + bias, of: token)
            }
        case .bannedTokens:
            for token in bannedTokens { target.setLogit(-.infinity, of: token) }
            for sequence in bannedSequences where history.endsWith(sequence.dropLast()) {
                target.setLogit(-.infinity, of: sequence[sequence.count - 1])
            }
        case .allowedTokens:
            if let allowedTokens { target.restrict(to: Set(allowedTokens)) }
        case .minTokens:
            if history.generated.count < minNewTokens {
                for token in eosTokens { target.setLogit(-.infinity, of: token) }
            }
        case .temperature, .topK, .topP, .minP, .typicalP, .epsilon, .eta, .topNSigma, .xtc, .mirostat:
            preconditionFailure("\(kind) is a warper, not an edit")
        }
    }

    /// Tokens that would complete an n-gram already in the sequence (prompt included), as Hugging
    /// Face's NoRepeatNGramLogitsProcessor finds them.
    func noRepeatNGramBans(_ history: TokenHistory) -> [Int] {
        let n = noRepeatNGramSize
        let tokens = history.all
        let length = tokens.count
        guard n > 0, length + 1 >= n else { return [] }
        let prefix = tokens[(length - n + 1)..<length]
        var banned: [Int] = []
        var start = 0
        while start + n <= length {
            if tokens[start..<(start + n - 1)].elementsEqual(prefix) { banned.append(tokens[start + n - 1]) }
            start += 1
        }
        return banned
    }
}
