import RealModule

/// The sampling warpers, with Hugging Face transformers' definitions, on sparse candidate lists
/// (ascending token order, logits scaled) and, without materialising the row, on dense rows.
enum Warpers {
    // MARK: Sparse

    /// HF TopKLogitsWarper: keep every candidate ≥ the k-th largest logit (k ≥ min_tokens_to_keep).
    static func topK(_ candidates: [Candidate], k: Int) -> [Candidate] {
        guard candidates.count > k else { return candidates }
        var logits = candidates.map(\.logit)
        let threshold = kthLargest(&logits, k)
        return candidates.filter { $0.logit >= threshold }
    }

    /// Candidate positions in rank order: logit descending, token ascending among equals.
    static func rankOrder(_ candidates: [Candidate]) -> [Int] {
        candidates.indices.sorted { Candidate.ranksBefore(candidates[$0], candidates[$1]) }
    }

    /// HF TopPLogitsWarper: in rank order, keep a token while the probability mass ranked strictly
    /// before it is below p (so the token that reaches p is kept), and at least `minKeep` tokens.
    /// `totalMass`, relative to `maxLogit`, covers tokens outside the list when the list is only
    /// the head of a larger row.
    static func topP(_ candidates: [Candidate], p: Float, minKeep: Int, maxLogit: Float? = nil, totalMass: Double? = nil) -> [Candidate] {
        guard !candidates.isEmpty else { return candidates }
        let top = maxLogit ?? candidates.map(\.logit).max()!
        let weights = candidates.map { Double.exp(Double($0.logit - top)) }
        let total = totalMass ?? weights.reduce(0, +)
        let limit = Double(p) * total
        var before = 0.0
        var keep = Set<Int>()
        for (rank, position) in rankOrder(candidates).enumerated() {
            guard before < limit || rank < minKeep else { break }
            keep.insert(position)
            before += weights[position]
        }
        return candidates.indices.filter(keep.contains).map { candidates[$0] }
    }

    /// HF MinPLogitsWarper: drop tokens whose probability is below min_p × the top probability,
    /// keeping at least `minKeep` tokens.
    static func minP(_ candidates: [Candidate], minP: Float, minKeep: Int) -> [Candidate] {
        guard let top = candidates.map(\.logit).max() else { return candidates }
        var keep = Set(candidates.indices.filter { Double.exp(Double(candidates[$0].logit - top)) >= Double(minP) })
        if keep.count < minKeep {
            keep.formUnion(rankOrder(candidates).prefix(minKeep))
        }
        return candidates.indices.filter(keep.contains).map { candidates[$0] }
    }

    /// HF TypicalLogitsWarper: order tokens by |−log p − H| (H the entropy), ascending, ties by
    /// token id; find the first position where the running mass reaches `mass`; keep every token
    /// whose distance is not above the distance there, and at least the first `minKeep`.
    static func typical(_ candidates: [Candidate], mass: Float, minKeep: Int) -> [Candidate] {
        guard candidates.count > 1, let top = candidates.map(\.logit).max() else { return candidates }
        let weights = candidates.map { Double.exp(Double($0.logit - top)) }
        let total = weights.reduce(0, +)
        let logTotal = Double.log(total)
        let logProbabilities = candidates.map { Double($0.logit - top) - logTotal }
        var entropy = 0.0
        for (weight, logProbability) in zip(weights, logProbabilities) { entropy -= weight / total * logProbability }
        let distance = logProbabilities.map { abs(-$0 - entropy) }
        let order = candidates.indices.sorted {
            distance[$0] < distance[$1] || (distance[$0] == distance[$1] && candidates[$0].token < candidates[$1].token)
        }
        var cumulative = 0.0
        var below = 0
        for position in order {
            cumulative += weights[position] / total
            if cumulative < Double(mass) { below += 1 } else { break }
        }
        let cutoff = distance[order[min(below, order.count - 1)]]
        var keep = Set(order.filter { distance[$0] <= cutoff })
        keep.formUnion(order.prefix(minKeep))
        return candidates.indices.filter(keep.contains).map { candidates[$0] }
    }

    // MARK: Dense

    static func topK(_ row: LogitRow, scale: Float, k: Int) -> [Candidate] {
        row.apply(TopKCollect(k: min(k, row.count), scale: scale))
    }

    /// min-p without exp per token: p ≥ min_p × p_max ⇔ x ≥ max + ln(min_p) / scale.
    static func minP(_ row: LogitRow, scale: Float, maximum: Float, minP: Float, minKeep: Int) -> [Candidate] {
        let threshold = maximum + Float(Double.log(Double(minP))) / scale
        let survivors = row.apply(ThresholdCollect(threshold: threshold, scale: scale))
        return survivors.count >= minKeep ? survivors : topK(row, scale: scale, k: minKeep)
    }

    /// top-p without sorting the vocabulary: one pass for the normaliser, a strided sample of the
    /// row to guess a logit below which less than the remaining mass can lie, one pass to collect
    /// the tokens above that guess (checked: their mass must reach p, else the guess is lowered),
    /// then the exact rule on the collected head only.
    static func topP(_ row: LogitRow, scale: Float, maximum: Float, p: Float, minKeep: Int) -> [Candidate] {
        let total = row.sumOfExponentials(shiftedBy: maximum, scale: scale)
        let needed = Double(p) * total
        let stride = max(1, row.count / 2048)
        var sample: [Float] = []
        sample.reserveCapacity(row.count / stride + 1)
        for index in Swift.stride(from: 0, to: row.count, by: stride) { sample.append(row[index]) }
        sample.sort(by: >)
        // Walk the sample's estimated mass until it covers p plus half of what is left.
        let aim = needed + (total - needed) / 2
        var estimated = 0.0
        var guess = sample.count - 1
        for (position, value) in sample.enumerated() {
            estimated += Double(stride) * Double.exp(Double((value - maximum) * scale))
            if estimated >= aim { guess = position; break }
        }
        while true {
            let threshold = guess >= sample.count - 1 ? -Float.infinity : sample[guess]
            let head = row.apply(ThresholdCollect(threshold: threshold, scale: scale))
            let headMass = head.reduce(0.0) { $0 + Double.exp(Double($1.logit - maximum * scale)) }
            if headMass >= needed || threshold == -.infinity {
                return topP(head, p: p, minKeep: minKeep, maxLogit: maximum * scale, totalMass: total)
            }
            guess = min(sample.count - 1, guess * 2 + 16)
        }
    }
}
