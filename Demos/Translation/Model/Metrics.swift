import RealModule

/// Translation quality, computed in the project so the evaluation needs nothing else.
public enum TranslationMetrics {
    /// Corpus BLEU (Papineni et al. 2002) on whitespace tokens, one reference per sentence, no
    /// smoothing: 100 × brevity penalty × geometric mean of the clipped n-gram precisions, n = 1…4.
    /// 0 when some order has no match.
    public static func bleu(hypotheses: [String], references: [String]) -> Double {
        precondition(hypotheses.count == references.count, "one reference per hypothesis")
        var matches = [Int](repeating: 0, count: 4)
        var totals = [Int](repeating: 0, count: 4)
        var hypothesisLength = 0, referenceLength = 0
        for (hypothesis, reference) in zip(hypotheses, references) {
            let h = hypothesis.split(separator: " ").map(String.init)
            let r = reference.split(separator: " ").map(String.init)
            hypothesisLength += h.count
            referenceLength += r.count
            for n in 1...4 {
                let hypothesisGrams = ngramCounts(h, n)
                let referenceGrams = ngramCounts(r, n)
                totals[n - 1] += max(0, h.count - n + 1)
                for (gram, count) in hypothesisGrams { matches[n - 1] += min(count, referenceGrams[gram] ?? 0) }
            }
        }
        guard hypothesisLength > 0, !zip(matches, totals).contains(where: { $0.0 == 0 || $0.1 == 0 }) else { return 0 }
        let logPrecision = zip(matches, totals).reduce(0.0) { $0 + Double.log(Double($1.0) / Double($1.1)) } / 4
        let brevity = hypothesisLength < referenceLength ? Double.exp(1 - Double(referenceLength) / Double(hypothesisLength)) : 1
        return 100 * brevity * Double.exp(logPrecision)
    }

    /// Corpus chrF (Popović 2015) as sacreBLEU 2 computes it: character n-grams of order 1…6 with
    /// whitespace removed, matches and counts summed over the corpus, an F-β score (β = 2) per
    /// order, averaged over the orders present in both hypotheses and references.
    public static func chrF(hypotheses: [String], references: [String], order: Int = 6, beta: Double = 2) -> Double {
        precondition(hypotheses.count == references.count, "one reference per hypothesis")
        var matches = [Int](repeating: 0, count: order)
        var hypothesisTotals = [Int](repeating: 0, count: order)
        var referenceTotals = [Int](repeating: 0, count: order)
        for (hypothesis, reference) in zip(hypotheses, references) {
            let h = Array(hypothesis.filter { !$0.isWhitespace }).map(String.init)
            let r = Array(reference.filter { !$0.isWhitespace }).map(String.init)
            for n in 1...order {
                let hypothesisGrams = ngramCounts(h, n)
                let referenceGrams = ngramCounts(r, n)
                hypothesisTotals[n - 1] += max(0, h.count - n + 1)
                referenceTotals[n - 1] += max(0, r.count - n + 1)
                for (gram, count) in hypothesisGrams { matches[n - 1] += min(count, referenceGrams[gram] ?? 0) }
            }
        }
        var score = 0.0
        var effectiveOrders = 0
        for n in 0..<order where hypothesisTotals[n] > 0 && referenceTotals[n] > 0 {
            effectiveOrders += 1
            let precision = Double(matches[n]) / Double(hypothesisTotals[n])
            let recall = Double(matches[n]) / Double(referenceTotals[n])
            let denominator = beta * beta * precision + recall
            if denominator > 0 { score += (1 + beta * beta) * precision * recall / denominator }
        }
        return effectiveOrders == 0 ? 0 : 100 * score / Double(effectiveOrders)
    }

    private static func ngramCounts(_ items: [String], _ n: Int) -> [[String]: Int] {
        var counts: [[String]: Int] = [:]
        guard items.count >= n else { return counts }
        for start in 0...(items.count - n) { counts[Array(items[start..<(start + n)]), default: 0] += 1 }
        return counts
    }
}
