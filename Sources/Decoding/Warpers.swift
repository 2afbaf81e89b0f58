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
    /// the head of a larger row. No sort: the cut is found by partitioning (see `MassSelection`).
    static func topP(_ candidates: [Candidate], p: Float, minKeep: Int, maxLogit: Float? = nil, totalMass: Double? = nil) -> [Candidate] {
        guard !candidates.isEmpty else { return candidates }
        let top = maxLogit ?? candidates.map(\.logit).max()!
        let weights = exponentialWeights(candidates, shift: top)
        let total = totalMass ?? weights.reduce(0.0) { $0 + Double($1) }
        let cut = MassSelection.cut(candidates, weights: weights, limit: Double(p) * total, minKeep: minKeep)
        return candidates.filter { cut.keeps($0) }
    }

    /// exp(logit − shift) for each candidate, sixteen at a time.
    static func exponentialWeights(_ candidates: [Candidate], shift: Float) -> [Float] {
        var weights = [Float](repeating: 0, count: candidates.count)
        var index = 0
        while index < candidates.count {
            var lanes = SIMD16<Float>(repeating: -.infinity)
            let end = min(candidates.count, index + 16)
            for position in index..<end { lanes[position - index] = candidates[position].logit - shift }
            let exps = exponentialOfNonPositive(lanes)
            for position in index..<end { weights[position] = exps[position - index] }
            index = end
        }
        return weights
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

    static func topK(_ row: LogitRow, summary: RowSummary, scale: Float, k: Int, workspace: Workspace) -> [Candidate] {
        row.collectTopK(min(k, row.count), summary: summary, scale: scale, workspace: workspace)
    }

    /// min-p without exp per token: p ≥ min_p × p_max ⇔ x ≥ max + ln(min_p) / scale.
    static func minP(_ row: LogitRow, summary: RowSummary, scale: Float, minP: Float, minKeep: Int, workspace: Workspace) -> [Candidate] {
        let threshold = summary.maximum.value + Float(Double.log(Double(minP))) / scale
        let survivors = row.collect(atLeast: threshold, summary: summary, scale: scale, workspace: workspace)
        return survivors.count >= minKeep ? survivors : topK(row, summary: summary, scale: scale, k: minKeep, workspace: workspace)
    }

    /// top-p without sorting the vocabulary: one pass for the normaliser, a strided sample of the
    /// row to guess a logit below which less than the remaining mass lies, the tokens above that
    /// guess collected from the blocks that can hold them (checked: their mass must reach p, else
    /// the guess is lowered), then the exact rule on that head by partitioning.
    static func topP(_ row: LogitRow, summary: RowSummary, scale: Float, p: Float, minKeep: Int, workspace: Workspace) -> [Candidate] {
        let maximum = summary.maximum.value
        let total = row.sumOfExponentials(shiftedBy: maximum, scale: scale)
        let needed = Double(p) * total
        let stride = max(1, row.count / 2048)
        var sample: [Float] = []
        sample.reserveCapacity(row.count / stride + 1)
        for index in Swift.stride(from: 0, to: row.count, by: stride) { sample.append(row[index]) }
        sample.sort(by: >)
        // The logit above which the sample holds p plus a quarter of the rest of its own mass. A
        // strided sample tends to miss the few heaviest tokens; measuring against its own total
        // then errs on the inclusive side. The guess is checked exactly below.
        let weights = sample.map { Double.exp(Double(($0 - maximum) * scale)) }
        let sampleTotal = weights.reduce(0, +)
        let aim = (Double(p) + (1 - Double(p)) / 4) * sampleTotal
        var estimated = 0.0
        var guess = sample.count - 1
        for (position, weight) in weights.enumerated() {
            estimated += weight
            if estimated >= aim { guess = position; break }
        }
        while true {
            let threshold = guess >= sample.count - 1 ? -Float.infinity : sample[guess]
            let head = row.collect(atLeast: threshold, summary: summary, scale: scale, workspace: workspace)
            let headMass = exponentialWeights(head, shift: maximum * scale).reduce(0.0) { $0 + Double($1) }
            if (headMass >= needed && head.count >= minKeep) || threshold == -.infinity {
                return topP(head, p: p, minKeep: minKeep, maxLogit: maximum * scale, totalMass: total)
            }
            guess = min(sample.count - 1, guess + max(16, guess / 2))
        }
    }
}

/// Where a rank-ordered cut falls, found without sorting: the smallest prefix of the candidates in
/// rank order (logit descending, token ascending among equals) whose weight reaches `limit` and
/// which holds at least `minKeep` tokens. Quickselect with a three-way partition on the logit:
/// expected linear time.
struct MassSelection {
    /// Tokens with a logit above `logit` are kept; at `logit`, tokens up to `lastTiedToken`.
    let logit: Float
    let lastTiedToken: Int32

    func keeps(_ candidate: Candidate) -> Bool {
        candidate.logit > logit || (candidate.logit == logit && candidate.token <= lastTiedToken)
    }

    static func cut(_ candidates: [Candidate], weights: [Float], limit: Double, minKeep: Int) -> MassSelection {
        var items = Array(zip(candidates, weights))
        var low = 0, high = items.count  // the unresolved range, in rank order between the parts
        var countBefore = 0
        var massBefore = 0.0
        func satisfied(_ count: Int, _ mass: Double) -> Bool { mass >= limit && count >= minKeep }
        while low < high {
            let pivot = items[low + (high - low) / 2].0.logit
            // Three-way partition of items[low..<high]: above, equal, below the pivot.
            var above = low, scan = low, below = high
            while scan < below {
                let value = items[scan].0.logit
                if value > pivot {
                    items.swapAt(above, scan)
                    above += 1
                    scan += 1
                } else if value < pivot {
                    below -= 1
                    items.swapAt(scan, below)
                } else {
                    scan += 1
                }
            }
            var aboveMass = 0.0
            for index in low..<above { aboveMass += Double(items[index].1) }
            let aboveCount = above - low
            if aboveCount > 0 && satisfied(countBefore + aboveCount, massBefore + aboveMass) {
                high = above
                continue
            }
            // The cut is among the tied values or below them.
            countBefore += aboveCount
            massBefore += aboveMass
            let tied = items[above..<below].sorted { $0.0.token < $1.0.token }
            for item in tied {
                countBefore += 1
                massBefore += Double(item.1)
                if satisfied(countBefore, massBefore) { return MassSelection(logit: pivot, lastTiedToken: item.0.token) }
            }
            low = below
        }
        // Never satisfied (p = 1 within rounding, or fewer than minKeep tokens): keep everything.
        return MassSelection(logit: -.infinity, lastTiedToken: .max)
    }
}
