/// Why a row cannot be decoded.
public enum LogitRowError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case notANumber(index: Int)
    case positiveInfinity(index: Int)
    /// Every logit is -inf: no token can be chosen.
    case allMasked
    /// The processors (bans, allowed set, n-gram rule, …) excluded every token.
    case noCandidates

    public var description: String {
        switch self {
        case .empty: "the row has no logits"
        case .notANumber(let index): "logit \(index) is NaN"
        case .positiveInfinity(let index): "logit \(index) is +inf"
        case .allMasked: "every logit in the row is -inf"
        case .noCandidates: "no token survives the processors (every candidate is banned or masked)"
        }
    }
}

/// The largest logit of a row and the lowest token id holding it.
public struct RowMaximum: Equatable, Sendable {
    public let value: Float
    public let index: Int
}

/// What one scan of a row learns: its maximum, and the maximum of each block of 128 elements.
struct RowSummary {
    let maximum: RowMaximum
    let blockMaxima: UnsafeBufferPointer<Float>
}

/// A kernel over one row, written once and specialised for each element type.
protocol RowKernel {
    associatedtype Result
    func run<Element: LogitElement>(_ element: Element.Type, _ base: UnsafeRawPointer, _ count: Int) -> Result
}

extension LogitRow {
    func apply<Kernel: RowKernel>(_ kernel: Kernel) -> Kernel.Result {
        switch dtype {
        case .float32: kernel.run(Float.self, base, count)
        case .float16: kernel.run(Float16.self, base, count)
        case .bfloat16: kernel.run(BFloat16.self, base, count)
        }
    }

    /// The maximum and its lowest index, after checking that the row can be decoded at all:
    /// not empty, no NaN, no +inf, not entirely -inf. -inf entries are masks and are allowed.
    public func validatedMaximum() throws(LogitRowError) -> RowMaximum {
        try validatedScan(MaximumScan())
    }

    /// The validated maximum and the maximum of every block of 128 elements, kept in `workspace`.
    func validatedSummary(_ workspace: Workspace, slot: Workspace.Slot) throws(LogitRowError) -> RowSummary {
        let blocks = workspace.scratch(count: (count + rowBlockSize - 1) / rowBlockSize, slot: slot)
        let maximum = try validatedScan(MaximumScan(blockMaxima: blocks))
        return RowSummary(maximum: maximum, blockMaxima: UnsafeBufferPointer(blocks))
    }

    private func validatedScan(_ kernel: MaximumScan) throws(LogitRowError) -> RowMaximum {
        guard count > 0 else { throw .empty }
        let scan = apply(kernel)
        if scan.sawInvalid {
            for index in 0..<count {
                let value = self[index]
                if value.isNaN { throw .notANumber(index: index) }
                if value == .infinity { throw .positiveInfinity(index: index) }
            }
        }
        guard scan.maximum.value > -.infinity else { throw .allMasked }
        return scan.maximum
    }

    /// Σ exp((xᵢ − shift) × scale) over the row, accumulated in Double.
    func sumOfExponentials(shiftedBy shift: Float, scale: Float = 1) -> Double {
        apply(ExponentialSum(shift: shift, scale: scale))
    }
}

/// Elements per block in `RowSummary.blockMaxima`.
let rowBlockSize = 128

/// One pass: per-lane maxima with the first index reaching them, whether any lane saw NaN or +inf,
/// and optionally the maximum of every block of 128 elements (for the selection kernels, which
/// then only look inside blocks that can hold a survivor).
struct MaximumScan: RowKernel {
    struct Result {
        var maximum: RowMaximum
        var sawInvalid: Bool
    }

    var blockMaxima: UnsafeMutableBufferPointer<Float>?

    @inline(__always)
    func run<Element: LogitElement>(_ element: Element.Type, _ base: UnsafeRawPointer, _ count: Int) -> Result {
        var best = SIMD16<Float>(repeating: -.infinity)
        var bestIndex = SIMD16<Int32>(repeating: 0)
        var lane = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        var invalid = SIMDMask<SIMD16<Int32>>(repeating: false)
        let vectorEnd = count & ~15
        var index = 0
        var block = 0
        while index < vectorEnd {
            let blockEnd = min(vectorEnd, index &+ rowBlockSize)
            var blockBest = SIMD16<Float>(repeating: -.infinity)
            while index < blockEnd {
                let values = Element.vector(base, index)
                // NaN compares unequal to itself; +inf is the only value equal to +inf.
                invalid .|= (values .!= values) .| (values .== .infinity)
                let better = values .> best
                best.replace(with: values, where: better)
                bestIndex.replace(with: lane, where: better)
                blockBest.replace(with: values, where: values .> blockBest)
                lane &+= 16
                index &+= 16
            }
            if let blockMaxima {
                blockMaxima[block] = blockBest.max()
                block &+= 1
            }
        }
        var value = best.max()
        var position = Int.max
        for l in 0..<16 where best[l] == value && value > -.infinity {
            position = min(position, Int(bestIndex[l]))
        }
        var sawInvalid = any(invalid)
        if let blockMaxima, index < count {
            // The scalar tail belongs to the last (partial) block, which may have no vector part.
            let tailBlock = index / rowBlockSize
            if tailBlock == block { blockMaxima[tailBlock] = -.infinity }
        }
        while index < count {
            let x = Element.scalar(base, index)
            if x.isNaN || x == .infinity { sawInvalid = true }
            if x > value { value = x; position = index }
            if let blockMaxima, x > blockMaxima[index / rowBlockSize] { blockMaxima[index / rowBlockSize] = x }
            index &+= 1
        }
        if position == Int.max { position = 0 }
        return Result(maximum: RowMaximum(value: value, index: position), sawInvalid: sawInvalid)
    }
}

/// Σ exp((xᵢ − shift) × scale). Sixteen float lanes accumulate blocks of 256 elements, and the
/// block sums are added in Double, so the error stays near float epsilon even over 262,144 terms.
struct ExponentialSum: RowKernel {
    let shift: Float
    let scale: Float

    @inline(__always)
    func run<Element: LogitElement>(_ element: Element.Type, _ base: UnsafeRawPointer, _ count: Int) -> Double {
        let shiftVector = SIMD16<Float>(repeating: shift)
        var total = SIMD16<Double>()
        let vectorEnd = count & ~15
        var index = 0
        while index < vectorEnd {
            var block = SIMD16<Float>()
            let blockEnd = min(vectorEnd, index &+ 256)
            while index < blockEnd {
                block += exponentialOfNonPositive((Element.vector(base, index) - shiftVector) * scale)
                index &+= 16
            }
            total.accumulate(block)
        }
        var sum = total.sum()
        while index < count {
            sum += Double(exponential((Element.scalar(base, index) - shift) * scale))
            index &+= 1
        }
        return sum
    }
}

extension SIMD16 where Scalar == Double {
    /// Adds a float block lane by lane: a plain loop compiles to two widening converts and adds,
    /// where the stdlib's generic SIMD conversion stays an out-of-line call.
    @inline(__always)
    mutating func accumulate(_ block: SIMD16<Float>) {
        for lane in 0..<16 { self[lane] += Double(block[lane]) }
    }
}

/// exp of one value through the same polynomial as the vector path, so tails agree with bodies.
@inline(__always)
func exponential(_ x: Float) -> Float {
    vectorExp(SIMD16(repeating: x))[0]
}
