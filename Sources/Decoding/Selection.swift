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

/// Collects every element ≥ the k-th largest (ties with it included, as Hugging Face's top-k keeps
/// them), in one pass: a running threshold rises as the buffer fills, so after the first few
/// thousand elements almost nothing passes the vector compare.
struct TopKCollect: RowKernel {
    let k: Int
    let scale: Float

    func run<Element: LogitElement>(_ element: Element.Type, _ base: UnsafeRawPointer, _ count: Int) -> [Candidate] {
        let capacity = max(4 * k, 256)
        var tokens: [Int32] = []
        var logits: [Float] = []
        tokens.reserveCapacity(capacity + 16)
        logits.reserveCapacity(capacity + 16)
        var threshold = -Float.infinity
        var scratch: [Float] = []

        func tighten() {
            scratch.removeAll(keepingCapacity: true)
            scratch.append(contentsOf: logits)
            threshold = kthLargest(&scratch, k)
            var kept = 0
            for index in 0..<logits.count where logits[index] >= threshold {
                logits[kept] = logits[index]
                tokens[kept] = tokens[index]
                kept += 1
            }
            logits.removeLast(logits.count - kept)
            tokens.removeLast(tokens.count - kept)
        }

        let vectorEnd = count & ~15
        var index = 0
        while index < vectorEnd {
            let values = Element.vector(base, index)
            let passing = values .>= SIMD16(repeating: threshold)
            if any(passing) {
                for lane in 0..<16 where passing[lane] && values[lane] > -.infinity {
                    tokens.append(Int32(index + lane))
                    logits.append(values[lane])
                }
                if logits.count >= capacity { tighten() }
            }
            index &+= 16
        }
        while index < count {
            let value = Element.scalar(base, index)
            if value >= threshold && value > -.infinity {
                tokens.append(Int32(index))
                logits.append(value)
            }
            index &+= 1
        }
        if logits.count > k { tighten() }
        return zip(tokens, logits).map { Candidate(token: Int($0), logit: $1 * scale) }
    }
}

/// Collects every element ≥ `threshold` (raw units), in token order, logits scaled.
struct ThresholdCollect: RowKernel {
    let threshold: Float
    let scale: Float

    func run<Element: LogitElement>(_ element: Element.Type, _ base: UnsafeRawPointer, _ count: Int) -> [Candidate] {
        var candidates: [Candidate] = []
        let limit = SIMD16<Float>(repeating: threshold)
        let vectorEnd = count & ~15
        var index = 0
        while index < vectorEnd {
            let values = Element.vector(base, index)
            let passing = values .>= limit
            if any(passing) {
                for lane in 0..<16 where passing[lane] && values[lane] > -.infinity {
                    candidates.append(Candidate(token: index + lane, logit: values[lane] * scale))
                }
            }
            index &+= 16
        }
        while index < count {
            let value = Element.scalar(base, index)
            if value >= threshold && value > -.infinity { candidates.append(Candidate(token: index, logit: value * scale)) }
            index &+= 1
        }
        return candidates
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
