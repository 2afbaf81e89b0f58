import Decoding
import Foundation

/// The processing chain in Float64, written as literally as possible after Hugging Face
/// transformers' processors (and OpenAI's presence/frequency penalties): the reference the engine
/// is checked against. Removed tokens are -inf.
enum ReferenceChain {
    static func run(_ logits: [Double], _ settings: ProcessorSettings, history: TokenHistory, sampling: Bool) -> [Double] {
        var x = logits
        for stage in settings.activeStages where sampling || !stage.isWarper {
            x = apply(stage, x, settings, history)
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

    static func apply(_ stage: ProcessorKind, _ input: [Double], _ s: ProcessorSettings, _ history: TokenHistory) -> [Double] {
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
        case .temperature:
            x = x.map { $0 / Double(s.temperature) }
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
