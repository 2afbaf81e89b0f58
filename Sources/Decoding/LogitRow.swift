import CLogitKernels

/// A row of logits read in place from memory that someone else owns (a received ZeroMQ frame,
/// an array): `count` elements of `dtype`, little-endian, with no alignment requirement.
public struct LogitRow: @unchecked Sendable {
    public let base: UnsafeRawPointer
    public let count: Int
    public let dtype: LogitDType

    /// A row over `bytes`, which must hold exactly `count × dtype.byteWidth` bytes.
    public init(bytes: UnsafeRawBufferPointer, dtype: LogitDType) {
        precondition(bytes.count % dtype.byteWidth == 0, "row bytes are not a whole number of \(dtype) elements")
        // An empty buffer may have no base address; no kernel reads through it then.
        self.base = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 0x10)!
        self.count = bytes.count / dtype.byteWidth
        self.dtype = dtype
    }

    /// Element `index` as Float.
    public subscript(index: Int) -> Float {
        precondition(index >= 0 && index < count, "token index out of range")
        switch dtype {
        case .float32: return base.loadUnaligned(fromByteOffset: index &* 4, as: Float.self)
        case .float16: return Float(base.loadUnaligned(fromByteOffset: index &* 2, as: Float16.self))
        case .bfloat16: return BFloat16(bitPattern: base.loadUnaligned(fromByteOffset: index &* 2, as: UInt16.self)).floatValue
        }
    }
}

extension LogitRow {
    /// The element type as the kernels number it.
    var kernelType: Int32 { Int32(dtype.rawValue) }
}
