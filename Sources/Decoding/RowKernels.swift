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
        try validatedScan(MaximumScan<MaximumOnly>()).maximum
    }

    /// The validated maximum and softmax's normaliser Σ exp((xᵢ − max) × scale), in one pass.
    public func validatedNormaliser(scale: Float = 1) throws(LogitRowError) -> (maximum: RowMaximum, exponentialSum: Double) {
        let scan = try validatedScan(MaximumScan<MaximumAndSum>(exponentialScale: scale))
        return (scan.maximum, scan.exponentialSum)
    }

    /// The validated maximum and the maximum of every block of 128 elements, kept in `workspace`;
    /// with `exponentialScale`, softmax's normaliser at that scale too, from the same pass.
    func validatedSummary(_ workspace: Workspace, slot: Workspace.Slot, exponentialScale: Float? = nil) throws(LogitRowError) -> RowSummary {
        let blocks = workspace.scratch(count: (count + rowBlockSize - 1) / rowBlockSize, slot: slot)
        guard let exponentialScale else {
            let scan = try validatedScan(MaximumScan<MaximumOnly>(blockMaxima: blocks))
            return RowSummary(maximum: scan.maximum, blockMaxima: UnsafeBufferPointer(blocks), exponentialSum: nil)
        }
        let scan = try validatedScan(MaximumScan<MaximumAndSum>(blockMaxima: blocks, exponentialScale: exponentialScale))
        return RowSummary(maximum: scan.maximum, blockMaxima: UnsafeBufferPointer(blocks), exponentialSum: scan.exponentialSum)
    }

    private func validatedScan<Mode>(_ kernel: MaximumScan<Mode>) throws(LogitRowError) -> MaximumScanResult {
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

/// Whether a `MaximumScan` also sums exponentials: a type, so that each kind of scan is compiled
/// on its own and the plain one (argmax) carries no trace of the sum.
protocol MaximumScanMode {
    static var sums: Bool { get }
}

enum MaximumOnly: MaximumScanMode {
    static var sums: Bool { false }
}

enum MaximumAndSum: MaximumScanMode {
    static var sums: Bool { true }
}

struct MaximumScanResult {
    var maximum: RowMaximum
    var sawInvalid: Bool
    /// Σ exp((xᵢ − maximum) × exponentialScale) when the scan sums; 0 otherwise.
    var exponentialSum: Double
}

/// One pass: per-lane maxima with the first index reaching them, whether any lane saw NaN or +inf,
/// and optionally the maximum of every block of 128 elements (for the selection kernels, which
/// then only look inside blocks that can hold a survivor) and Σ exp((xᵢ − max) × scale).
///
/// The sum is taken "online", in the same loop as the maximum: each chunk of 2,048 elements is
/// summed relative to the largest value seen before it, and the running total (in Double) is
/// rescaled by exp((old − new) × scale), computed in Double, whenever a chunk raises that value — a
/// few times per row on real logits, at worst once per chunk. A chunk that rises more than e^60
/// above it is summed again against its own maximum. Softmax's normaliser then costs one read of
/// the row instead of two, which matters most when the row comes cold from the socket.
struct MaximumScan<Mode: MaximumScanMode>: RowKernel {
    var blockMaxima: UnsafeMutableBufferPointer<Float>?
    var exponentialScale: Float = 1

    /// Elements summed against one reference: 8 KB of float32, still in L1 if they must be summed
    /// again, and one horizontal maximum (a scalar loop) per 2,048.
    static var chunkSize: Int { 2048 }
    /// How far (× scale) a chunk may rise above the reference and still be summed against it:
    /// e^60 × 2,048 terms stays far inside float32.
    static var largestExponent: Float { 60 }

    @inline(__always)
    func run<Element: LogitElement>(_ element: Element.Type, _ base: UnsafeRawPointer, _ count: Int) -> MaximumScanResult {
        var best = SIMD16<Float>(repeating: -.infinity)
        var bestIndex = SIMD16<Int32>(repeating: 0)
        var lane = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        var invalid = SIMDMask<SIMD16<Int32>>(repeating: false)
        // The online sum, relative to `reference`: the largest value seen before the current chunk.
        let summing = Mode.sums
        let scale = exponentialScale
        var reference = count >= 16 ? Element.vector(base, 0).max() : -Float.infinity
        var total = SIMD16<Double>()
        let vectorEnd = count & ~15
        var index = 0
        var block = 0
        while index < vectorEnd {
            let chunkStart = index
            let chunkEnd = min(vectorEnd, index &+ Self.chunkSize)
            var chunkBest = SIMD16<Float>(repeating: -.infinity)
            var chunkTotal = SIMD16<Double>()
            let shift = SIMD16<Float>(repeating: reference)
            while index < chunkEnd {
                let blockEnd = min(chunkEnd, index &+ rowBlockSize)
                var blockBest = SIMD16<Float>(repeating: -.infinity)
                var blockSum = SIMD16<Float>()
                while index < blockEnd {
                    let values = Element.vector(base, index)
                    // NaN compares unequal to itself; +inf is the only value equal to +inf.
                    invalid .|= (values .!= values) .| (values .== .infinity)
                    let better = values .> best
                    best.replace(with: values, where: better)
                    bestIndex.replace(with: lane, where: better)
                    blockBest.replace(with: values, where: values .> blockBest)
                    if summing { blockSum += vectorExp((values - shift) * scale) }
                    lane &+= 16
                    index &+= 16
                }
                if let blockMaxima {
                    blockMaxima[block] = blockBest.max()
                    block &+= 1
                }
                chunkBest.replace(with: blockBest, where: blockBest .> chunkBest)
                if summing { chunkTotal.accumulate(blockSum) }
            }
            guard summing else { continue }
            let chunkMaximum = chunkBest.max()
            if reference > -.infinity && (chunkMaximum - reference) * scale <= Self.largestExponent {
                total += chunkTotal
                if chunkMaximum > reference {
                    total *= Double.exp(Double(reference - chunkMaximum) * Double(scale))
                    reference = chunkMaximum
                }
            } else {
                // The chunk rose too far above the reference for its exponentials (or there was
                // none yet): sum it again, still in L1, against its own maximum.
                total.addExponentials(base, Element.self, chunkStart..<chunkEnd, chunkMaximum: chunkMaximum, reference: &reference, scale: scale)
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
            if summing && x > -.infinity {
                if x > reference {
                    if reference > -.infinity { exponentialSum *= Double.exp(Double(reference - x) * Double(scale)) }
                    reference = x
                }
                exponentialSum += Double(exponential((x - reference) * scale))
            }
            index &+= 1
        }
        if position == Int.max { position = 0 }
        return MaximumScanResult(maximum: RowMaximum(value: value, index: position), sawInvalid: sawInvalid, exponentialSum: exponentialSum)
    }
}

/// Σ exp((xᵢ − shift) × scale). Sixteen float lanes accumulate blocks of 256 elements, and the
/// block sums are added in Double, so the error stays near float epsilon even over 262,144 terms.
struct ExponentialSum: RowKernel {
    let shift: Float
    let scale: Float

    @inline(__always)
    func run<Element: LogitElement>(_ element: Element.Type, _ base: UnsafeRawPointer, _ count: Int) -> Double {
        var total = SIMD16<Double>()
        let vectorEnd = count & ~15
        total.addExponentials(base, Element.self, 0..<vectorEnd, shift: shift, scale: scale)
        var sum = total.sum()
        var index = vectorEnd
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
        addExponentials(base, Element.self, range, shift: reference, scale: scale)
    }

    /// Adds Σ exp((xᵢ − shift) × scale) over `range` (whole vectors, every xᵢ ≤ shift): sixteen
    /// float lanes accumulate blocks of 256 elements, and the blocks are added in Double.
    @inline(__always)
    mutating func addExponentials<Element: LogitElement>(_ base: UnsafeRawPointer, _ element: Element.Type, _ range: Range<Int>,
                                                         shift: Float, scale: Float) {
        let shiftVector = SIMD16<Float>(repeating: shift)
        var index = range.lowerBound
        while index < range.upperBound {
            var block = SIMD16<Float>()
            let blockEnd = Swift.min(range.upperBound, index &+ 256)
            while index < blockEnd {
                block += exponentialOfNonPositive((Element.vector(base, index) - shiftVector) * scale)
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
