/// How a kernel reads one element type: sixteen lanes at a time, widened to Float in registers,
/// so an f16 or bf16 row is never copied to a float32 row first.
public protocol LogitElement {
    static var dtype: LogitDType { get }
    /// Elements `index ..< index + 16` of the row at `base`, as Float.
    static func vector(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float>
    /// Element `index` of the row at `base`, as Float.
    static func scalar(_ base: UnsafeRawPointer, _ index: Int) -> Float
}

extension Float: LogitElement {
    public static var dtype: LogitDType { .float32 }

    @inlinable @inline(__always)
    public static func vector(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        base.loadUnaligned(fromByteOffset: index &* 4, as: SIMD16<Float>.self)
    }

    @inlinable @inline(__always)
    public static func scalar(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        base.loadUnaligned(fromByteOffset: index &* 4, as: Float.self)
    }
}

extension Float16: LogitElement {
    public static var dtype: LogitDType { .float16 }

    @inlinable @inline(__always)
    public static func vector(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        let halves = base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD16<Float16>.self)
        // A plain lane loop (one vcvtph2ps with F16C): the stdlib's generic SIMD conversion can stay
        // an out-of-line call per vector, as for bfloat16 below.
        var values = SIMD16<Float>()
        for lane in 0..<16 { values[lane] = Float(halves[lane]) }
        return values
    }

    @inlinable @inline(__always)
    public static func scalar(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        Float(base.loadUnaligned(fromByteOffset: index &* 2, as: Float16.self))
    }
}

/// bfloat16: the top 16 bits of a float32, so widening is a shift.
public struct BFloat16: LogitElement, Sendable, Equatable {
    public var bitPattern: UInt16

    public init(bitPattern: UInt16) { self.bitPattern = bitPattern }

    /// Rounds to nearest, ties to even (NaN stays NaN).
    public init(_ value: Float) {
        if value.isNaN {
            bitPattern = 0x7FC0
        } else {
            let bits = value.bitPattern
            let rounding = 0x7FFF &+ ((bits >> 16) & 1)
            bitPattern = UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
        }
    }

    public var floatValue: Float { Float(bitPattern: UInt32(bitPattern) << 16) }

    public static var dtype: LogitDType { .bfloat16 }

    @inlinable @inline(__always)
    public static func vector(_ base: UnsafeRawPointer, _ index: Int) -> SIMD16<Float> {
        let halves = base.loadUnaligned(fromByteOffset: index &* 2, as: SIMD16<UInt16>.self)
        // A plain lane loop: the compiler turns it into one zero-extend and one shift, where the
        // stdlib's generic SIMD conversion stays an out-of-line call per vector.
        var bits = SIMD16<UInt32>()
        for lane in 0..<16 { bits[lane] = UInt32(halves[lane]) &<< 16 }
        return unsafeBitCast(bits, to: SIMD16<Float>.self)
    }

    @inlinable @inline(__always)
    public static func scalar(_ base: UnsafeRawPointer, _ index: Int) -> Float {
        Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: index &* 2, as: UInt16.self)) << 16)
    }
}
