import Decoding

/// STEP's descriptor frame: 24 bytes, little-endian — the session, the step index, then the
/// 12 bytes of a DECODE rows descriptor.
///
///     offset size field
///     0      8    session id
///     8      4    step index (0 for the first step)
///     12     1    dtype: 1 = float32, 2 = float16, 3 = bfloat16
///     13     1    layout: 0 = dense rows
///     14     2    reserved, 0
///     16     4    rows (live sequences or beams)
///     20     4    vocab (elements per row; must equal the session's vocab_size)
public struct StepDescriptor: Equatable, Sendable {
    public static let size = 24

    public var session: UInt64
    public var step: Int
    public var dtype: LogitDType
    public var rows: Int
    /// Dense rows: elements per row. Sparse rows: candidate pairs per row.
    public var vocab: Int
    /// Layout 1: each row is `vocab` pairs of (u32 token id, f32 logit), every other token -inf.
    public var sparse: Bool
    /// Layout 2: each sparse row starts with an f32, the full row's log Σ exp.
    public var logNormaliser: Bool

    public init(session: UInt64, step: Int, dtype: LogitDType, rows: Int, vocab: Int, sparse: Bool = false, logNormaliser: Bool = false) {
        self.session = session
        self.step = step
        self.dtype = dtype
        self.rows = rows
        self.vocab = vocab
        self.sparse = sparse || logNormaliser
        self.logNormaliser = logNormaliser
    }

    /// Bytes of one row: elements, or pairs (and the log-sum-exp in layout 2).
    public var rowBytes: Int { sparse ? vocab * 8 + (logNormaliser ? 4 : 0) : vocab * dtype.byteWidth }

    public var payloadBytes: Int { rows * rowBytes }

    public var encoded: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.size)
        bytes.appendLittleEndian(session)
        bytes.appendLittleEndian(UInt32(step))
        var shape = RowsDescriptor(dtype: dtype, rows: rows, vocab: vocab).encoded
        if sparse { shape[1] = logNormaliser ? 2 : 1 }
        return bytes + shape
    }

    /// The session id of a STEP or CLOSE frame, if it is long enough: what the broker orders by.
    public static func sessionID(_ frame: UnsafeRawBufferPointer) -> UInt64? {
        frame.count >= 8 ? frame.littleEndian(at: 0, as: UInt64.self) : nil
    }

    public static func parse(_ frame: UnsafeRawBufferPointer, limits: ProtocolLimits) throws(ProtocolError) -> StepDescriptor {
        guard frame.count == size else {
            throw ProtocolError(.badDescriptor, "the step descriptor has \(frame.count) bytes; it must have \(size)")
        }
        let shape = try RowsDescriptor.parse(UnsafeRawBufferPointer(rebasing: frame[12...]), limits: limits, allowSparse: true)
        return StepDescriptor(session: frame.littleEndian(at: 0, as: UInt64.self), step: Int(frame.littleEndian(at: 8, as: UInt32.self)),
                              dtype: shape.dtype, rows: shape.rows, vocab: shape.vocab, sparse: shape.sparse, logNormaliser: shape.logNormaliser)
    }
}

/// A STEP request, read in place.
public struct StepRequest: @unchecked Sendable {
    public let descriptor: StepDescriptor
    public let logits: UnsafeRawBufferPointer
    /// The mask frame, when the header's flag said one follows: checked by the session, which
    /// knows the vocabulary it spans (for sparse rows, the session's vocab_size).
    public var mask: UnsafeRawBufferPointer?

    public init(descriptor: StepDescriptor, logits: UnsafeRawBufferPointer, mask: UnsafeRawBufferPointer? = nil) {
        self.descriptor = descriptor
        self.logits = logits
        self.mask = mask
    }

    /// Layout 2: the rows' pairs without the leading log-sum-exp (a layout-1 frame), and each row's
    /// log-sum-exp.
    public func splitLogNormalisers() -> (pairs: [UInt8], logNormalisers: [Float]) {
        let pairBytes = descriptor.vocab * 8
        var pairs: [UInt8] = []
        pairs.reserveCapacity(descriptor.rows * pairBytes)
        var logNormalisers: [Float] = []
        for row in 0..<descriptor.rows {
            let start = row * descriptor.rowBytes
            logNormalisers.append(Float(bitPattern: logits.littleEndian(at: start, as: UInt32.self)))
            pairs += logits[(start + 4)..<(start + 4 + pairBytes)]
        }
        return (pairs, logNormalisers)
    }

    public func row(_ index: Int) -> LogitRow {
        let rowBytes = descriptor.vocab * descriptor.dtype.byteWidth
        return LogitRow(bytes: UnsafeRawBufferPointer(rebasing: logits[(index * rowBytes)..<((index + 1) * rowBytes)]), dtype: descriptor.dtype)
    }
}
