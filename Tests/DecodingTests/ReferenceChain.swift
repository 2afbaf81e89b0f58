import Decoding
import Foundation

/// The processing chain in Float64, written as literally as possible after Hugging Face
/// transformers' processors (and OpenAI's presence/frequency penalties): the reference the engine
/// is checked against. Removed tokens are -inf.
enum ReferenceChain {
    static func run(_ logits: [Double], _ settings: ProcessorSettings, history: TokenHistory, sampling: Bool, state: StageState = StageState()) -> [Double] {
        var x = logits
        for stage in settings.activeStages where sampling || !stage.isWarper {
            x = apply(stage, x, settings, history, state: state)
        }
        return x
    }

    /// Rank order: value descending, token ascending among equals (the engine's documented tie rule).
    static func descending(_ x: [Double]) -> [Int] {
        x.indices.sorted { x[$0] > x[$1] || (x[$0] == x[$1] && $0 < $1) }
    }

    static func softmax(_ x: [Double]) -> [Double] {
        let m = x.max()!
        let e = x.map { exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    static func apply(_ stage: ProcessorKind, _ input: [Double], _ s: ProcessorSettings, _ history: TokenHistory, state: StageState = StageState()) -> [Double] {
        var x = input
        let all = history.prompt + history.generated
        let minKeep = s.minTokensToKeep
        switch stage {
        case .repetitionPenalty:
            let r = Double(s.repetitionPenalty)
            for t in Set(all) { x[t] = x[t] < 0 ? x[t] * r : x[t] / r }
        case .presenceFrequencyPenalty:
            var counts: [Int: Int] = [:]
            for t in history.generated { counts[t, default: 0] += 1 }
            for (t, c) in counts { x[t] -= Double(c) * Double(s.frequencyPenalty) + Double(s.presencePenalty) }
        case .noRepeatNGram:
            let n = s.noRepeatNGramSize
            if all.count + 1 >= n {
                var ngrams: [[Int]: [Int]] = [:]
                if all.count >= n {
                    for i in 0...(all.count - n) { ngrams[Array(all[i..<(i + n - 1)]), default: []].append(all[i + n - 1]) }
                }
                for t in ngrams[Array(all[(all.count - n + 1)...])] ?? [] { x[t] = -.infinity }
            }
        case .dry:
            // DRY by brute force: for every earlier position, the longest common suffix of the
            // context up to it and the whole context, capped by the closest sequence breaker.
            let width = s.dryPenaltyLastN < 0 ? all.count : min(all.count, s.dryPenaltyLastN)
            guard width > s.dryAllowedLength else { break }
            let window = Array(all.suffix(width))
            var limit = width
            search: for fromEnd in 0..<width {
                let head = width - 1 - fromEnd
                var best = -1
                for b in s.drySequenceBreakers where b[0] == window[head] && b.count - 1 <= fromEnd && b.count - 1 > best {
                    if (1..<b.count).allSatisfy({ b[$0] == window[head + $0] }) { best = b.count - 1 }
                }
                if best >= 0 { limit = fromEnd - best; break search }
            }
            guard limit >= s.dryAllowedLength else { break }
            var longest: [Int: Int] = [:]
            for p in 0..<(width - 1) {
                var n = 0
                while n <= p && window[p - n] == window[width - 1 - n] { n += 1 }
                n = min(n, limit)
                if n >= s.dryAllowedLength { longest[window[p + 1]] = max(longest[window[p + 1]] ?? 0, n) }
            }
            let single = Set(s.drySequenceBreakers.filter { $0.count == 1 }.map { $0[0] })
            let maxExponent = Double(s.dryBase) > 1.000001 ? Int(88.7228391 / log(Double(s.dryBase))) : 0
            for (t, n) in longest where !single.contains(t) {
                var exponent = n - s.dryAllowedLength
                if maxExponent > 0 && exponent > maxExponent { exponent = maxExponent }
                x[t] -= Double(s.dryMultiplier) * pow(Double(s.dryBase), Double(exponent))
            }
        case .logitBias:
            for (t, b) in s.logitBias { x[t] += Double(b) }
        case .bannedTokens:
            for t in s.bannedTokens { x[t] = -.infinity }
            for sequence in s.bannedSequences {
                let prefix = Array(sequence.dropLast())
                if all.count >= prefix.count && Array(all.suffix(prefix.count)) == prefix { x[sequence.last!] = -.infinity }
            }
        case .allowedTokens:
            let allowed = Set(s.allowedTokens ?? [])
            for t in x.indices where !allowed.contains(t) { x[t] = -.infinity }
        case .minTokens:
            if history.generated.count < s.minNewTokens { for t in s.eosTokens { x[t] = -.infinity } }
        case .temperature where s.dynatempRange > 0:
            // llama.cpp temp-ext over the finite logits: T = min + (max − min)·(H / ln n)^exponent.
            let finite = x.indices.filter { x[$0] > -.infinity }
            guard finite.count > 1 else { break }
            let p = softmax(x)
            let entropy = -finite.reduce(0.0) { $0 + (p[$1] > 0 ? p[$1] * log(p[$1]) : 0) }
            let low = max(0, Double(s.temperature) - Double(s.dynatempRange)), high = Double(s.temperature) + Double(s.dynatempRange)
            let temperature = low + (high - low) * pow(entropy / log(Double(finite.count)), Double(s.dynatempExponent))
            if temperature <= 0 {
                let best = descending(x)[0]
                x = x.indices.map { $0 == best ? x[$0] : -.infinity }
            } else {
                x = x.map { $0 / temperature }
            }
        case .temperature:
            x = x.map { $0 / Double(s.temperature) }
        case .topNSigma:
            // llama.cpp top-n-sigma: mean and population std over the finite logits.
            let finite = x.filter { $0 > -.infinity }
            guard finite.count > 1 else { break }
            let mean = finite.reduce(0, +) / Double(finite.count)
            let std = (finite.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(finite.count)).squareRoot()
            let top = finite.max()!
            x = x.map { $0 < top - Double(s.topNSigma) * std ? -.infinity : $0 }
        case .xtc:
            // llama.cpp xtc: when the coin is at most the probability, sort by p; pos_last = the last
            // position with p ≥ threshold; drop the first pos_last if size − pos_last ≥ min_keep.
            guard let coin = state.xtcCoin, coin < Double(s.xtcProbability) else { break }
            let order = descending(x).filter { x[$0] > -.infinity }
            guard order.count >= 2 else { break }
            let p = softmax(x)
            var last = 0
            for (position, t) in order.enumerated() { if p[t] >= Double(s.xtcThreshold) { last = position } else { break } }
            if order.count - last >= minKeep && last > 0 { for t in order.prefix(last) { x[t] = -.infinity } }
        case .mirostat:
            // llama.cpp mirostat-v2's truncation: keep the sorted prefix with −log₂ p ≤ μ, at least one.
            guard let mu = state.mirostatMu else { break }
            let p = softmax(x)
            let order = descending(x).filter { x[$0] > -.infinity }
            let kept = max(1, order.prefix { -log2(p[$0]) <= Double(mu) }.count)
            for t in order.dropFirst(kept) { x[t] = -.infinity }
        case .topK:
            let k = min(max(s.topK, minKeep), x.count)
            let kth = x.sorted(by: >)[k - 1]
            x = x.map { $0 < kth ? -.infinity : $0 }
        case .topP:
            // HF: sort ascending, cumulative softmax, remove where cumulative ≤ 1 − p, keep the last minKeep.
            let ascending = Array(descending(x).reversed())
            let p = softmax(x)
            var cumulative = 0.0
            var remove = Set<Int>()
            for (position, t) in ascending.enumerated() {
                cumulative += p[t]
                if cumulative <= 1 - Double(s.topP) && position < ascending.count - minKeep { remove.insert(t) }
            }
            for t in remove { x[t] = -.infinity }
        case .minP:
            let p = softmax(x)
            let threshold = Double(s.minP) * p.max()!
            let kept = Set(descending(x).prefix(minKeep))
            for t in x.indices where p[t] < threshold && !kept.contains(t) { x[t] = -.infinity }
        case .epsilon, .eta:
            // HF EpsilonLogitsWarper / EtaLogitsWarper: remove p < cutoff unless at least as large
            // as the minKeep-th largest score.
            let p = softmax(x)
            var cutoff = Double(s.epsilonCutoff)
            if stage == .eta {
                let entropy = -x.indices.reduce(0.0) { $0 + (p[$1] > 0 ? p[$1] * log(p[$1]) : 0) }
                cutoff = min(Double(s.etaCutoff), Double(s.etaCutoff).squareRoot() * exp(-entropy))
            }
            let kth = x.sorted(by: >)[min(minKeep, x.count) - 1]
            for t in x.indices where p[t] < cutoff && x[t] < kth { x[t] = -.infinity }
        case .typicalP:
            let p = softmax(x)
            let logp = p.map { log($0) }
            var entropy = 0.0
            for t in x.indices where p[t] > 0 { entropy -= logp[t] * p[t] }
            let shifted = logp.map { abs(-$0 - entropy) }
            let order = x.indices.sorted { shifted[$0] < shifted[$1] || (shifted[$0] == shifted[$1] && $0 < $1) }
            var cumulative = 0.0
            var lastIndex = 0
            for t in order {
                cumulative += p[t]
                if cumulative < Double(s.typicalP) { lastIndex += 1 }
            }
            lastIndex = min(lastIndex, order.count - 1)
            let cutoff = shifted[order[lastIndex]]
            for (position, t) in order.enumerated() where shifted[t] > cutoff && position >= minKeep { x[t] = -.infinity }
        }
        return x
    }
}

/// The engine's result as a dense Float64 row (-inf for removed tokens).
func denseRow(_ set: CandidateSet, vocab: Int) -> [Double] {
    var row = [Double](repeating: -.infinity, count: vocab)
    switch set {
    case .dense(let values, let scale):
        for t in 0..<vocab { row[t] = Double(values[t] * scale) }
    case .sparse(let candidates):
        for candidate in candidates { row[Int(candidate.token)] = Double(candidate.logit) }
    }
    return row
}
