import CLogitKernels

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

/// Elements per block in `RowSummary.blockMaxima`.
let rowBlockSize = Int(LK_BLOCK)

/// The passes over a row, each one call into the kernel variant in use (`Kernels`).
extension LogitRow {
    /// The maximum and its lowest index, after checking that the row can be decoded at all:
    /// not empty, no NaN, no +inf, not entirely -inf. -inf entries are masks and are allowed.
    public func validatedMaximum() throws(LogitRowError) -> RowMaximum {
        try validatedScan(blockMaxima: nil, sums: false, scale: 1).maximum
    }

    /// The validated maximum and softmax's normaliser Σ exp((xᵢ − max) × scale), in one pass.
    public func validatedNormaliser(scale: Float = 1) throws(LogitRowError) -> (maximum: RowMaximum, exponentialSum: Double) {
        try validatedScan(blockMaxima: nil, sums: true, scale: scale)
    }

    /// The validated maximum and the maximum of every block of 128 elements, kept in `workspace`;
    /// with `exponentialScale`, softmax's normaliser at that scale too, from the same pass.
    func validatedSummary(_ workspace: Workspace, slot: Workspace.Slot, exponentialScale: Float? = nil) throws(LogitRowError) -> RowSummary {
        let blocks = workspace.scratch(count: (count + rowBlockSize - 1) / rowBlockSize, slot: slot)
        let scan = try validatedScan(blockMaxima: blocks.baseAddress, sums: exponentialScale != nil, scale: exponentialScale ?? 1)
        return RowSummary(maximum: scan.maximum, blockMaxima: UnsafeBufferPointer(blocks), exponentialSum: exponentialScale.map { _ in scan.exponentialSum })
    }

    private func validatedScan(blockMaxima: UnsafeMutablePointer<Float>?, sums: Bool, scale: Float) throws(LogitRowError) -> (maximum: RowMaximum, exponentialSum: Double) {
        guard count > 0 else { throw .empty }
        var scan = lk_scan_result()
        lk_scan(base, Int64(count), kernelType, kernelMask, blockMaxima, sums ? 1 : 0, scale, &scan)
        if scan.saw_invalid != 0 {
            for index in 0..<count {
                let value = self[index]
                if value.isNaN { throw .notANumber(index: index) }
                if value == .infinity { throw .positiveInfinity(index: index) }
            }
        }
        guard scan.max_value > -.infinity else { throw .allMasked }
        return (RowMaximum(value: scan.max_value, index: Int(scan.max_index)), scan.exponential_sum)
    }

    /// Σ exp((xᵢ − shift) × scale) over the row, accumulated in Double.
    func sumOfExponentials(shiftedBy shift: Float, scale: Float = 1) -> Double {
        lk_exp_sum(base, Int64(count), kernelType, kernelMask, shift, scale)
    }

    /// Σ eᵢ·yᵢ over the row, yᵢ = (xᵢ − shift) × scale, eᵢ = exp(yᵢ): the entropy's second sum.
    func exponentialMoment(shiftedBy shift: Float, scale: Float = 1) -> Double {
        lk_exp_moment(base, Int64(count), kernelType, kernelMask, shift, scale)
    }

    /// outputᵢ = exp((xᵢ − shift) × scale); returns their sum, accumulated in Double.
    func writeExponentials(shiftedBy shift: Float, scale: Float, into output: UnsafeMutableBufferPointer<Float>) -> Double {
        precondition(output.count >= count, "output must have room for the row")
        return lk_exp_write(base, Int64(count), kernelType, kernelMask, shift, scale, output.baseAddress)
    }

    /// outputᵢ = (xᵢ − shift) × scale as float32: a widened, shifted or scaled copy of the row.
    func write(shiftedBy shift: Float = 0, scale: Float = 1, into output: UnsafeMutableBufferPointer<Float>) {
        precondition(output.count >= count, "output must have room for the row")
        lk_affine_write(base, Int64(count), kernelType, kernelMask, shift, scale, output.baseAddress)
    }

    /// The token where the running sum of exp((xᵢ − shift) × scale), in token order, first reaches
    /// `target`: inverse-CDF sampling over a whole row without materialising it.
    func inverseCDF(shift: Float, scale: Float, target: Double) -> Int {
        Int(lk_inverse_cdf(base, Int64(count), kernelType, kernelMask, shift, scale, target))
    }
}

extension LogitRow {
    /// Over the finite elements: how many, Σ (xᵢ − shift) and Σ (xᵢ − shift)².
    func finiteMoments(shiftedBy shift: Float) -> (count: Int, sum: Double, sumSquares: Double) {
        var sums = (0.0, 0.0)
        let count = withUnsafeMutableBytes(of: &sums) { lk_finite_moments(base, Int64(self.count), kernelType, kernelMask, shift, $0.baseAddress!.assumingMemoryBound(to: Double.self)) }
        return (Int(count), sums.0, sums.1)
    }

    /// How many elements are ≥ `threshold` (masked ones read -inf).
    func count(atLeast threshold: Float) -> Int {
        Int(lk_count_at_least(base, Int64(count), kernelType, kernelMask, threshold))
    }

    /// Σ of the row's elements in Double, and the first element that is NaN or negative (nil when
    /// none is): whether the row is a probability distribution.
    func distributionCheck() -> (firstInvalid: Int?, sum: Double) {
        var sum = 0.0
        let invalid = lk_distribution(base, Int64(count), kernelType, &sum)
        return (invalid < 0 ? nil : Int(invalid), sum)
    }
}

/// e^x through the kernels' own polynomial, so that a scalar result agrees with the vector ones.
@inline(__always)
func exponential(_ x: Float) -> Float {
    lk_exp(x)
}
