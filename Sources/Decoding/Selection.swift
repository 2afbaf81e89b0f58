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
        let output = workspace.candidateScratch(count: count)
        let written = apply(BlockCollect(threshold: threshold, blockMaxima: summary.blockMaxima, scale: scale, output: output))
        return Array(output[0..<written])
    }

    /// Every element ≥ the k-th largest (ties with it included, as Hugging Face's top-k keeps them),
    /// in token order. The k-th largest block maximum is a lower bound for the k-th largest element
    /// (k blocks each hold an element at least that large), so at most about k blocks are read.
    func collectTopK(_ k: Int, summary: RowSummary, scale: Float, workspace: Workspace) -> [Candidate] {
        var maxima = Array(summary.blockMaxima)
        let bound = maxima.count > k ? kthLargest(&maxima, k) : -Float.infinity
        let head = collect(atLeast: bound, summary: summary, scale: 1, workspace: workspace)
        guard head.count > k else { return head.map { Candidate(token: Int($0.token), logit: $0.logit * scale) } }
        var logits = head.map(\.logit)
        let threshold = kthLargest(&logits, k)
        return head.compactMap { $0.logit >= threshold ? Candidate(token: Int($0.token), logit: $0.logit * scale) : nil }
    }
}

/// The elements ≥ `threshold` of the blocks whose maximum reaches it, written to `output` (room
/// for the whole row); returns how many.
struct BlockCollect: RowKernel {
    let threshold: Float
    let blockMaxima: UnsafeBufferPointer<Float>
    let scale: Float
    let output: UnsafeMutableBufferPointer<Candidate>

    func run<Element: LogitElement>(_ element: Element.Type, _ base: UnsafeRawPointer, _ count: Int) -> Int {
        var written = 0
        let thresholdVector = SIMD16<Float>(repeating: threshold)
        for (block, blockMaximum) in blockMaxima.enumerated() where blockMaximum >= threshold && blockMaximum > -.infinity {
            var index = block * rowBlockSize
            let end = Swift.min(count, index + rowBlockSize)
            // Sixteen at a time: one compare, and work only for the lanes that pass (Swift SIMD
            // has no compress-store; the lanes' bits are walked instead).
            while index &+ 16 <= end {
                let values = Element.vector(base, index)
                let passing = (values .>= thresholdVector) .& (values .> -.infinity)
                if any(passing) {
                    var bits = passing.laneBits
                    while bits != 0 {
                        let lane = bits.trailingZeroBitCount
                        output[written] = Candidate(token: index &+ lane, logit: Element.scalar(base, index &+ lane) * scale)
                        written &+= 1
                        bits &= bits &- 1
                    }
                }
                index &+= 16
            }
            while index < end {
                let value = Element.scalar(base, index)
                if value >= threshold && value > -.infinity {
                    output[written] = Candidate(token: index, logit: value * scale)
                    written &+= 1
                }
                index &+= 1
            }
        }
        return written
    }
}

extension SIMDMask where Storage == SIMD16<Int32> {
    /// Lane i's truth as bit i.
    @inline(__always)
    var laneBits: UInt32 {
        let weights = SIMD16<Int32>(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
        return UInt32(truncatingIfNeeded: (unsafeBitCast(self, to: SIMD16<Int32>.self) & weights).wrappedSum())
    }
}

/// The token where the running sum of exp((xᵢ − shift) × scale), in token order, first reaches
/// `target`: inverse-CDF sampling over a whole row without materialising it. Whole 16-lane blocks
/// below the target are skipped with one vector sum.
struct InverseCDF: RowKernel {
    let shift: Float
    let scale: Float
    let target: Double

    func run<Element: LogitElement>(_ element: Element.Type, _ base: UnsafeRawPointer, _ count: Int) -> Int {
        var cumulative = 0.0
        var lastCandidate = -1
        let shiftVector = SIMD16<Float>(repeating: shift)
        let vectorEnd = count & ~15
        var index = 0
        while index < vectorEnd {
            let weights = exponentialOfNonPositive((Element.vector(base, index) - shiftVector) * scale)
            let blockSum = Double(weights.sum())
            if cumulative + blockSum >= target {
                for lane in 0..<16 where weights[lane] > 0 {
                    cumulative += Double(weights[lane])
                    lastCandidate = index + lane
                    if cumulative >= target { return lastCandidate }
                }
            } else {
                cumulative += blockSum
                if blockSum > 0 {
                    for lane in stride(from: 15, through: 0, by: -1) where weights[lane] > 0 {
                        lastCandidate = index + lane
                        break
                    }
                }
            }
            index &+= 16
        }
        while index < count {
            let weight = exponential((Element.scalar(base, index) - shift) * scale)
            if weight > 0 {
                cumulative += Double(weight)
                lastCandidate = index
                if cumulative >= target { return index }
            }
            index &+= 1
        }
        // Rounding left the sum a hair short of the target: the last possible token.
        return lastCandidate
    }
}
