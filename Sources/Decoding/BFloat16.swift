/// bfloat16: the top 16 bits of a float32.
public struct BFloat16: Sendable, Equatable {
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
}
