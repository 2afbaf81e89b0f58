import CLogitKernels
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
    /// the head of a larger row. No sort: the cut is found by bucketing (see `MassSelection`).
    static func topP(_ candidates: [Candidate], p: Float, minKeep: Int, maxLogit: Float? = nil, totalMass: Double? = nil) -> [Candidate] {
        guard !candidates.isEmpty else { return candidates }
        let top = maxLogit ?? candidates.map(\.logit).max()!
        let weights = exponentialWeights(candidates, shift: top)
        let total = totalMass ?? weights.reduce(0.0) { $0 + Double($1) }
        let cut = MassSelection.cut(candidates, weights: weights, limit: Double(p) * total, minKeep: minKeep)
        return cut.kept(candidates)
    }

    /// exp(logit − shift) for each candidate (logit ≤ shift).
    static func exponentialWeights(_ candidates: [Candidate], shift: Float) -> [Float] {
        [Float](unsafeUninitializedCapacity: candidates.count) { weights, initialized in
            candidates.withUnsafeBufferPointer { list in
                list.withMemoryRebound(to: lk_candidate.self) {
                    lk_candidate_weights($0.baseAddress, Int64(candidates.count), shift, weights.baseAddress)
                }
            }
            initialized = candidates.count
        }
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

    /// HF EpsilonLogitsWarper: keep tokens whose probability is at least `cutoff`, and every token
    /// at least as likely as the `minKeep`-th (ties included).
    static func epsilon(_ candidates: [Candidate], cutoff: Float, minKeep: Int) -> [Candidate] {
        probabilityCutoff(candidates, minKeep: minKeep) { _, _ in Double(cutoff) }
    }

    /// HF EtaLogitsWarper: the same with the cutoff min(ε, √ε · e^−H), H the entropy in nats.
    static func eta(_ candidates: [Candidate], cutoff: Float, minKeep: Int) -> [Candidate] {
        probabilityCutoff(candidates, minKeep: minKeep) { probabilities, logProbabilities in
            var entropy = 0.0
            for (p, logp) in zip(probabilities, logProbabilities) where p > 0 { entropy -= p * logp }
            let epsilon = Double(cutoff)
            return min(epsilon, epsilon.squareRoot() * Double.exp(-entropy))
        }
    }

    private static func probabilityCutoff(_ candidates: [Candidate], minKeep: Int, cutoff: ([Double], [Double]) -> Double) -> [Candidate] {
        guard let top = candidates.map(\.logit).max() else { return candidates }
        let logTotal = Double.log(candidates.reduce(0.0) { $0 + Double.exp(Double($1.logit - top)) })
        let logProbabilities = candidates.map { Double($0.logit - top) - logTotal }
        let probabilities = logProbabilities.map { Double.exp($0) }
        let threshold = cutoff(probabilities, logProbabilities)
        let ranked = candidates.map(\.logit).sorted(by: >)
        let kth = ranked[min(minKeep, ranked.count) - 1]
        return candidates.indices.filter { probabilities[$0] >= threshold || candidates[$0].logit >= kth }.map { candidates[$0] }
    }

    // MARK: Dense

    /// epsilon without exp per token: p ≥ ε ⇔ x ≥ max + (ln ε + ln Σ) / scale, Σ the normaliser.
    static func epsilon(_ row: LogitRow, summary: RowSummary, scale: Float, cutoff: Float, minKeep: Int, workspace: Workspace) -> [Candidate] {
        let total = row.sumOfExponentials(shiftedBy: summary.maximum.value, scale: scale)
        let threshold = summary.maximum.value + Float((Double.log(Double(cutoff)) + Double.log(total)) / Double(scale))
        let survivors = row.collect(atLeast: threshold, summary: summary, scale: scale, workspace: workspace)
        return survivors.count >= minKeep ? survivors : topK(row, summary: summary, scale: scale, k: minKeep, workspace: workspace)
    }

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
        let sample = Swift.stride(from: 0, to: row.count, by: stride).map { Candidate(token: $0, logit: row[$0] * scale) }
        let sampleWeights = exponentialWeights(sample, shift: maximum * scale)
        let sampleTotal = sampleWeights.reduce(0.0) { $0 + Double($1) }
        // Aim past p in the sample's own mass: a strided sample tends to miss the few heaviest
        // tokens, and measured against its own total it then errs on the inclusive side. Each
        // failed guess (the head's exact mass falls short of p) aims halfway closer to everything.
        var aim = Double(p) + (1 - Double(p)) / 4
        while true {
            let threshold: Float
            if aim >= 1 {
                threshold = -.infinity
            } else {
                let cut = MassSelection.cut(sample, weights: sampleWeights, limit: aim * sampleTotal, minKeep: 1)
                threshold = cut.logit == -.infinity ? -.infinity : row[Int(cut.lastTiedToken)]
            }
            let head = row.collect(atLeast: threshold, summary: summary, scale: scale, workspace: workspace)
            let weights = exponentialWeights(head, shift: maximum * scale)
            let headMass = weights.reduce(0.0) { $0 + Double($1) }
            if (headMass >= needed && head.count >= minKeep) || threshold == -.infinity {
                let cut = MassSelection.cut(head, weights: weights, limit: needed, minKeep: minKeep)
                return cut.kept(head)
            }
            aim = aim + (1 - aim) / 2 < 0.9999 ? aim + (1 - aim) / 2 : 1
        }
    }
}

/// Where a rank-ordered cut falls, found without sorting: the smallest prefix of the candidates in
/// rank order (logit descending, token ascending among equals) whose weight reaches `limit` and
/// which holds at least `minKeep` tokens (`lk_mass_cut`: the candidates are bucketed by logit,
/// about eight to a bucket, equal logits always together, and only the bucket where the cut falls
/// is put in rank order).
struct MassSelection {
    /// Tokens with a logit above `logit` are kept; at `logit`, tokens up to `lastTiedToken`.
    let logit: Float
    let lastTiedToken: Int32

    /// The candidates this cut keeps, in their order.
    func kept(_ candidates: [Candidate]) -> [Candidate] {
        var kept = candidates
        let count = kept.withUnsafeMutableBufferPointer { list in
            list.withMemoryRebound(to: lk_candidate.self) { lk_keep($0.baseAddress, Int64(list.count), lk_cut(logit: logit, last_tied_token: lastTiedToken)) }
        }
        kept.removeLast(kept.count - Int(count))
        return kept
    }

    static func cut(_ candidates: [Candidate], weights: [Float], limit: Double, minKeep: Int) -> MassSelection {
        precondition(weights.count == candidates.count, "one weight per candidate")
        let cut = candidates.withUnsafeBufferPointer { list in
            list.withMemoryRebound(to: lk_candidate.self) { lk_mass_cut($0.baseAddress, Int64(list.count), weights, limit, Int64(minKeep)) }
        }
        return MassSelection(logit: cut.logit, lastTiedToken: cut.last_tied_token)
    }
}
