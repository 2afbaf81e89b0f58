import CLogitKernels

/// The builds of the row kernels that one binary carries (Sources/CLogitKernels), widest first.
/// Every variant gives bit-identical results; they differ only in speed.
public enum KernelVariant: String, CaseIterable, Sendable, CustomStringConvertible {
    /// AVX-512 F/DQ/BW/VL with F16C: sixteen lanes in one register.
    case avx512
    /// AVX2 with F16C (and BMI, LZCNT, POPCNT).
    case avx2
    /// Baseline x86-64 (SSE2): any x86-64 CPU.
    case baseline
    /// The same code compiled for any other CPU (NEON on arm64).
    case portable

    var c: lk_variant {
        switch self {
        case .avx512: LK_AVX512
        case .avx2: LK_AVX2
        case .baseline: LK_BASELINE
        case .portable: LK_PORTABLE
        }
    }

    /// Whether this build carries the variant and this CPU runs it.
    public var isSupported: Bool { lk_variant_supported(c) != 0 }

    public var description: String { rawValue }
}

/// Which kernel variant runs: the widest this CPU supports, chosen once on first use, unless the
/// environment variable `LOGITD_KERNELS` names another (a lower one, to test or compare).
public enum Kernels {
    public static let environmentVariable = "LOGITD_KERNELS"

    /// The variant in use.
    public static var active: KernelVariant {
        switch lk_active_variant() {
        case LK_AVX512: .avx512
        case LK_AVX2: .avx2
        case LK_BASELINE: .baseline
        default: .portable
        }
    }

    /// The variants this CPU and build can run, widest first.
    public static var supported: [KernelVariant] { KernelVariant.allCases.filter(\.isSupported) }

    /// Uses `variant` from now on, for every thread.
    public static func use(_ variant: KernelVariant) throws(KernelSelectionError) {
        guard lk_select(variant.c) == 0 else {
            throw KernelSelectionError(message: "this CPU or build cannot run the \(variant) kernels (supported: \(supported.map(\.rawValue).joined(separator: ", ")))")
        }
    }

    /// The sum of the row, read sixteen lanes at a time as every kernel reads it: the plain pass
    /// that `logitd-bench kernels` measures each operation against.
    public static func plainPass(_ row: LogitRow) -> Float {
        lk_sum(row.base, Int64(row.count), row.kernelType)
    }

    /// e^x with the kernels' own sixteen-lane polynomial (relative error below 2e-7 on
    /// [-87.3, 88.3]; exactly 0 below -87.3 and at -inf; above 88.3 as at 88.3; NaN stays NaN).
    public static func exp(_ x: Float) -> Float {
        lk_exp(x)
    }

    /// Checks `LOGITD_KERNELS` (unset, or a supported variant) and returns the variant in use:
    /// what an executable calls at start-up, so that a wrong value is a clear error, not a fallback.
    @discardableResult
    public static func checkEnvironment() throws(KernelSelectionError) -> KernelVariant {
        if let message = lk_environment_error() { throw KernelSelectionError(message: String(cString: message)) }
        return active
    }
}

public struct KernelSelectionError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public var description: String { message }
}
