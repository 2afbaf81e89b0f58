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

/// What one scan of a row learns: its maximum, the maximum of each block of 128 elements, and
/// (when asked for) softmax's normaliser.
struct RowSummary {
    let maximum: RowMaximum
    let blockMaxima: UnsafeBufferPointer<Float>
    /// Σ exp((xᵢ − max) × scale) for the scale the summary was asked for, else nil.
    let exponentialSum: Double?
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
        try validatedScan(MaximumScan()).maximum
    }

    /// The validated maximum and softmax's normaliser Σ exp((xᵢ − max) × scale), in one pass.
    public func validatedNormaliser(scale: Float = 1) throws(LogitRowError) -> (maximum: RowMaximum, exponentialSum: Double) {
        let scan = try validatedScan(MaximumScan(exponentialScale: scale))
        return (scan.maximum, scan.exponentialSum)
    }

    /// The validated maximum and the maximum of every block of 128 elements, kept in `workspace`;
    /// with `exponentialScale`, softmax's normaliser at that scale too, from the same pass.
    func validatedSummary(_ workspace: Workspace, slot: Workspace.Slot, exponentialScale: Float? = nil) throws(LogitRowError) -> RowSummary {
        let blocks = workspace.scratch(count: (count + rowBlockSize - 1) / rowBlockSize, slot: slot)
        let scan = try validatedScan(MaximumScan(blockMaxima: blocks, exponentialScale: exponentialScale))
        return RowSummary(maximum: scan.maximum, blockMaxima: UnsafeBufferPointer(blocks),
                          exponentialSum: exponentialScale == nil ? nil : scan.exponentialSum)
    }

    private func validatedScan(_ kernel: MaximumScan) throws(LogitRowError) -> MaximumScan.Result {
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
        return scan
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
/// then only look inside blocks that can hold a survivor) and Σ exp((xᵢ − max) × scale).
///
/// The sum is taken "online": each block of 128 is summed, while it is still in L1, relative to
/// the largest value seen so far, and the running total (in Double) is rescaled by
/// exp((old − new) × scale) whenever a block raises that largest value — a few times per row on
/// real logits, at worst once per block. Softmax's normaliser then costs one read of the row
/// instead of two, which matters most when the row comes cold from the socket.
struct MaximumScan: RowKernel {
    struct Result {
        var maximum: RowMaximum
        var sawInvalid: Bool
        /// Σ exp((xᵢ − maximum) × exponentialScale); 0 when no scale was given.
        var exponentialSum: Double
    }

    var blockMaxima: UnsafeMutableBufferPointer<Float>?
    var exponentialScale: Float?

    /// Elements whose maximum is found before their exponentials are summed: 8 KB of float32,
    /// still in L1 for the second look, and one horizontal maximum (a scalar loop) per 2,048.
    static let chunkSize = 2048

    @inline(__always)
    func run<Element: LogitElement>(_ element: Element.Type, _ base: UnsafeRawPointer, _ count: Int) -> Result {
        var best = SIMD16<Float>(repeating: -.infinity)
        var bestIndex = SIMD16<Int32>(repeating: 0)
        var lane = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        var invalid = SIMDMask<SIMD16<Int32>>(repeating: false)
        // The online sum: relative to `reference`, the largest value summed so far.
        var reference = -Float.infinity
        var total = SIMD16<Double>()
        let vectorEnd = count & ~15
        var index = 0
        var block = 0
        while index < vectorEnd {
            let chunkStart = index
            let chunkEnd = min(vectorEnd, index &+ Self.chunkSize)
            var chunkBest = SIMD16<Float>(repeating: -.infinity)
            while index < chunkEnd {
                let blockEnd = min(chunkEnd, index &+ rowBlockSize)
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
                chunkBest.replace(with: blockBest, where: blockBest .> chunkBest)
            }
            if let scale = exponentialScale {
                total.addExponentials(base, Element.self, chunkStart..<chunkEnd, chunkMaximum: chunkBest.max(), reference: &reference, scale: scale)
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
        var exponentialSum = total.sum()
        while index < count {
            let x = Element.scalar(base, index)
            if x.isNaN || x == .infinity { sawInvalid = true }
            if x > value { value = x; position = index }
            if let blockMaxima, x > blockMaxima[index / rowBlockSize] { blockMaxima[index / rowBlockSize] = x }
            if let scale = exponentialScale, x > -.infinity {
                if x > reference {
                    if reference > -.infinity { exponentialSum *= Double.exp(Double(reference - x) * Double(scale)) }
                    reference = x
                }
                exponentialSum += Double(exponential((x - reference) * scale))
            }
            index &+= 1
        }
        if position == Int.max { position = 0 }
        return Result(maximum: RowMaximum(value: value, index: position), sawInvalid: sawInvalid, exponentialSum: exponentialSum)
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
    /// The online sum's step for one chunk (see `MaximumScan`): raises `reference` to the chunk's
    /// maximum if that is larger, rescaling the running total, then adds Σ exp((xᵢ − reference) × scale).
    @inline(__always)
    mutating func addExponentials<Element: LogitElement>(_ base: UnsafeRawPointer, _ element: Element.Type, _ range: Range<Int>,
                                                         chunkMaximum: Float, reference: inout Float, scale: Float) {
        if chunkMaximum > reference {
            if reference > -.infinity { self *= Double.exp(Double(reference - chunkMaximum) * Double(scale)) }
            reference = chunkMaximum
        }
        guard reference > -.infinity else { return }
        let shift = SIMD16<Float>(repeating: reference)
        var index = range.lowerBound
        while index < range.upperBound {
            var block = SIMD16<Float>()
            let blockEnd = Swift.min(range.upperBound, index &+ 256)
            while index < blockEnd {
                block += exponentialOfNonPositive((Element.vector(base, index) - shift) * scale)
                index &+= 16
            }
            accumulate(block)
        }
    }

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
