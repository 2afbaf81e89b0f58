import CLogitKernels

/// The k-th largest of `values` (k ≥ 1, k ≤ count), by quickselect; reorders `values`.
func kthLargest(_ values: inout [Float], _ k: Int) -> Float {
    var low = 0
    var high = values.count - 1
    let target = k - 1
    while low < high {
        // Median of three keeps sorted and reversed inputs linear.
        let middle = (low + high) / 2
        let pivot = max(min(values[low], values[middle]), min(max(values[low], values[middle]), values[high]))
        var i = low, j = high
        while i <= j {
            while values[i] > pivot { i += 1 }
            while values[j] < pivot { j -= 1 }
            if i <= j {
                values.swapAt(i, j)
                i += 1
                j -= 1
            }
        }
        if target <= j { high = j } else if target >= i { low = i } else { return values[target] }
    }
    return values[target]
}

extension LogitRow {
    /// Every element ≥ `threshold` (raw units), in token order, logits multiplied by `scale`. Only
    /// blocks whose maximum reaches the threshold are read.
    func collect(atLeast threshold: Float, summary: RowSummary, scale: Float, workspace: Workspace) -> [Candidate] {
        // Room for the row and the group of sixteen the packing may write past the survivors.
        let output = workspace.candidateScratch(count: count + 16)
        let written = output.withMemoryRebound(to: lk_candidate.self) {
            Int(lk_collect(base, Int64(count), kernelType, kernelMask, summary.blockMaxima.baseAddress, threshold, scale, $0.baseAddress))
        }
        return Array(output[0..<written])
    }

    /// Every element ≥ the k-th largest (ties with it included, as Hugging Face's top-k keeps them),
    /// in token order. The k-th largest block maximum is a lower bound for the k-th largest element
    /// (k blocks each hold an element at least that large), so at most about k blocks are read.
    func collectTopK(_ k: Int, summary: RowSummary, scale: Float, workspace: Workspace) -> [Candidate] {
        // Blocks a mask disallows entirely have maximum -inf; the k-th largest is among the others
        // whenever they are at least k.
        var maxima = summary.blockMaxima.filter { $0 > -Float.infinity }
        let bound = maxima.count >= k && summary.blockMaxima.count > k ? kthLargest(&maxima, k) : -Float.infinity
        let head = collect(atLeast: bound, summary: summary, scale: 1, workspace: workspace)
        guard head.count > k else { return head.map { Candidate(token: Int($0.token), logit: $0.logit * scale) } }
        var logits = head.map(\.logit)
        let threshold = kthLargest(&logits, k)
        return head.compactMap { $0.logit >= threshold ? Candidate(token: Int($0.token), logit: $0.logit * scale) : nil }
    }
}
