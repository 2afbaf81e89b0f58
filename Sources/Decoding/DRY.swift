import RealModule

/// DRY, "don't repeat yourself" (text-generation-webui's definition, as llama.cpp implements it in
/// llama_sampler_dry_apply): a token that would extend a repetition of at least `allowed_length`
/// tokens of the context is penalised by multiplier · base^(length − allowed_length). Sequence
/// breakers (token-id sequences) cap how far back a repetition may reach.
extension ProcessorSettings {
    /// The penalty of every token that would extend a repeat, for a sequence with `history`
    /// (prompt and generated tokens, the last `dryPenaltyLastN` of them; −1: all).
    func dryPenalties(_ history: TokenHistory) -> [Int: Float] {
        let context = history.all
        let width = dryPenaltyLastN < 0 ? context.count : min(context.count, dryPenaltyLastN)
        guard width > dryAllowedLength else { return [:] }
        let window = Array(context.suffix(width))
        let limit = dryRepeatLimit(window)
        guard limit >= dryAllowedLength else { return [:] }
        // suffixMatch[k]: how many tokens the window's end shares with the window cut k tokens
        // short — the longest common suffix, by the Z-algorithm on the reversed window.
        let reversed = Array(window.reversed())
        let suffixMatch = zFunction(reversed)
        var longest: [Int: Int] = [:]
        for k in 1..<width {
            let length = min(suffixMatch[k], limit)
            guard length >= dryAllowedLength else { continue }
            // The window cut k short ends at position width − 1 − k; the token after it would
            // extend the repeat.
            let token = window[width - k]
            longest[token] = max(longest[token] ?? 0, length)
        }
        let singleBreakers = Set(drySequenceBreakers.filter { $0.count == 1 }.map { $0[0] })
        // Keep base^exponent finite in Float, as llama.cpp clamps it.
        let maxExponent = dryBase > 1.000001 ? Int(88.7228391 / Double.log(Double(dryBase))) : 0
        var penalties: [Int: Float] = [:]
        for (token, length) in longest where !singleBreakers.contains(token) {
            var exponent = length - dryAllowedLength
            if maxExponent > 0 && exponent > maxExponent { exponent = maxExponent }
            penalties[token] = dryMultiplier * Float(Double.pow(Double(dryBase), Double(exponent)))
        }
        return penalties
    }

    /// How far back from the end a repetition may reach: up to the closest sequence breaker (the
    /// longest breaker starting there), else the whole window.
    private func dryRepeatLimit(_ window: [Int]) -> Int {
        let count = window.count
        for fromEnd in 0..<count {
            let head = count - 1 - fromEnd
            var longestTail = -1
            for breaker in drySequenceBreakers where breaker[0] == window[head] {
                let tail = breaker.count - 1
                guard tail > longestTail, tail <= fromEnd else { continue }
                if (0..<tail).allSatisfy({ breaker[1 + $0] == window[head + 1 + $0] }) { longestTail = tail }
            }
            if longestTail >= 0 { return fromEnd - longestTail }
        }
        return count
    }
}

/// z[k] = the length of the longest common prefix of `s` and `s[k...]` (z[0] = s.count), in
/// linear time.
func zFunction(_ s: [Int]) -> [Int] {
    let n = s.count
    var z = [Int](repeating: 0, count: n)
    guard n > 0 else { return z }
    z[0] = n
    var left = 0, right = 0
    for k in 1..<n {
        if k < right { z[k] = min(right - k, z[k - left]) }
        while k + z[k] < n && s[z[k]] == s[k + z[k]] { z[k] += 1 }
        if k + z[k] > right { left = k; right = k + z[k] }
    }
    return z
}
