import CLogitKernels

/// A row of logits read in place from memory that someone else owns (a received ZeroMQ frame,
/// an array): `count` elements of `dtype`, little-endian, with no alignment requirement.
public struct LogitRow: @unchecked Sendable {
    public let base: UnsafeRawPointer
    public let count: Int
    public let dtype: LogitDType
    /// An allowed-token bitmask over the row, or nil: ceil(count / 32) little-endian 32-bit words,
    /// bit j of word w allowing token 32·w + j (the layout llguidance and xgrammar write). Every
    /// kernel reads a disallowed token as -inf, whatever its stored logit, in the same pass.
    public let mask: UnsafeRawPointer?

    /// A row over `bytes`, which must hold exactly `count × dtype.byteWidth` bytes; with `mask`,
    /// ceil(count / 32) words at any alignment (bits for ids ≥ count ignored), its tokens are those
    /// the mask allows.
    public init(bytes: UnsafeRawBufferPointer, dtype: LogitDType, mask: UnsafeRawBufferPointer? = nil) {
        precondition(bytes.count % dtype.byteWidth == 0, "row bytes are not a whole number of \(dtype) elements")
        // An empty buffer may have no base address; no kernel reads through it then.
        self.base = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 0x10)!
        self.count = bytes.count / dtype.byteWidth
        self.dtype = dtype
        if let mask {
            precondition(mask.count == Self.maskByteCount(count: count), "a mask over \(count) tokens has \(Self.maskByteCount(count: count)) bytes")
        }
        self.mask = mask?.baseAddress
    }

    /// Bytes of a mask over `count` tokens: ceil(count / 32) 32-bit words.
    public static func maskByteCount(count: Int) -> Int { (count + 31) / 32 * 4 }

    /// Whether the mask (if any) allows `token`.
    @inline(__always)
    func allows(_ token: Int) -> Bool {
        guard let mask else { return true }
        return Self.mask(mask, allows: token)
    }

    /// Whether the bitmask at `mask` (little-endian words, any alignment) allows `token`.
    @inline(__always)
    public static func mask(_ mask: UnsafeRawPointer, allows token: Int) -> Bool {
        UInt32(littleEndian: mask.loadUnaligned(fromByteOffset: (token >> 5) * 4, as: UInt32.self)) >> UInt32(token & 31) & 1 == 1
    }

    /// Element `index` as Float.
    public subscript(index: Int) -> Float {
        precondition(index >= 0 && index < count, "token index out of range")
        guard allows(index) else { return -.infinity }
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

    /// The mask as the kernels take it.
    var kernelMask: UnsafePointer<UInt32>? { mask?.assumingMemoryBound(to: UInt32.self) }
}
