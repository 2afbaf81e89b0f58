import Decoding

/// BATCH STEP's table frame: a 16-byte head — u8 dtype, u8 layout (0), u16 reserved (0),
/// u32 entries, u32 vocab, u32 reserved (0) — then per entry 16 bytes: u64 session, u32 step,
/// u32 rows. The logits frame holds every entry's rows, in table order.
public enum BatchTable {
    public static let headSize = 16
    public static let entrySize = 16

    public struct Entry: Equatable, Sendable {
        public var session: UInt64
        public var step: Int
        public var rows: Int

        public init(session: UInt64, step: Int, rows: Int) {
            self.session = session
            self.step = step
            self.rows = rows
        }
    }

    public static func encode(dtype: LogitDType, vocab: Int, entries: [Entry]) -> [UInt8] {
        var bytes: [UInt8] = [dtype.rawValue, 0, 0, 0]
        bytes.appendLittleEndian(UInt32(entries.count))
        bytes.appendLittleEndian(UInt32(vocab))
        bytes.appendLittleEndian(UInt32(0))
        for entry in entries {
            bytes.appendLittleEndian(entry.session)
            bytes.appendLittleEndian(UInt32(entry.step))
            bytes.appendLittleEndian(UInt32(entry.rows))
        }
        return bytes
    }

    /// The distinct sessions of a table, as far as it can be read (for the broker's ordering).
    public static func sessionIDs(_ frame: UnsafeRawBufferPointer) -> [UInt64] {
        tableSessionIDs(frame, headSize: headSize, entrySize: entrySize)
    }

    /// Parses the table and slices the logits frame (and the mask frame, if there is one: a mask row
    /// per row of the batch, or one for all of them) into one STEP per entry.
    static func parse(_ table: UnsafeRawBufferPointer, logits: UnsafeRawBufferPointer, mask: UnsafeRawBufferPointer?, limits: ProtocolLimits) throws(ProtocolError) -> [StepRequest] {
        guard table.count >= headSize else {
            throw ProtocolError(.badDescriptor, "the batch table has \(table.count) bytes; its head alone has \(headSize)")
        }
        guard let dtype = LogitDType(rawValue: table[0]) else {
            throw ProtocolError(.badDescriptor, "unknown dtype code \(table[0]); known: 1 (f32), 2 (f16), 3 (bf16)")
        }
        guard table[1] == 0, table.littleEndian(at: 2, as: UInt16.self) == 0, table.littleEndian(at: 12, as: UInt32.self) == 0 else {
            throw ProtocolError(.badDescriptor, "the batch table's layout must be 0 and its reserved bytes 0")
        }
        let count = Int(table.littleEndian(at: 4, as: UInt32.self))
        let vocab = Int(table.littleEndian(at: 8, as: UInt32.self))
        guard count > 0, table.count == headSize + count * entrySize else {
            throw ProtocolError(.badDescriptor, "the batch table has \(table.count) bytes; \(count) entries need \(headSize + count * entrySize) (and at least one entry)")
        }
        guard vocab > 0, vocab <= limits.maxVocab else {
            throw ProtocolError(.badShape, "vocab is \(vocab); it must be between 1 and \(limits.maxVocab)")
        }
        var entries: [StepDescriptor] = []
        var seen = Set<UInt64>()
        for index in 0..<count {
            let at = headSize + index * entrySize
            let descriptor = StepDescriptor(session: table.littleEndian(at: at, as: UInt64.self), step: Int(table.littleEndian(at: at + 8, as: UInt32.self)),
                                            dtype: dtype, rows: Int(table.littleEndian(at: at + 12, as: UInt32.self)), vocab: vocab)
            guard descriptor.rows > 0 else { throw ProtocolError(.badShape, "entry \(index) has no rows") }
            guard seen.insert(descriptor.session).inserted else {
                throw ProtocolError(.badDescriptor, "session \(descriptor.session) appears twice in the batch")
            }
            entries.append(descriptor)
        }
        let rows = entries.reduce(0) { $0 + $1.rows }
        guard rows <= limits.maxRows else { throw ProtocolError(.badShape, "the batch has \(rows) rows; the limit is \(limits.maxRows)") }
        let expected = rows * vocab * dtype.byteWidth
        guard logits.count == expected else {
            throw ProtocolError(.sizeMismatch, "the logits frame has \(logits.count) bytes; \(rows) rows × \(vocab) vocab × \(dtype.byteWidth) bytes (\(dtype)) is \(expected)")
        }
        let masks = try mask.map { (frame) throws(ProtocolError) in try RowMasks.parse(frame, rows: rows, vocab: vocab) }
        var offset = 0
        var row = 0
        return entries.map { descriptor in
            let bytes = descriptor.payloadBytes
            defer { offset += bytes; row += descriptor.rows }
            return StepRequest(descriptor: descriptor, logits: UnsafeRawBufferPointer(rebasing: logits[offset..<(offset + bytes)]),
                               mask: masks?.frame(forRows: row..<(row + descriptor.rows)))
        }
    }
}

/// The distinct session ids of a batch table (a head with the entry count at offset 4, then
/// entries that start with their u64 session id), as far as the frame holds them.
func tableSessionIDs(_ frame: UnsafeRawBufferPointer, headSize: Int, entrySize: Int) -> [UInt64] {
    guard frame.count >= headSize else { return [] }
    let count = min(Int(frame.littleEndian(at: 4, as: UInt32.self)), (frame.count - headSize) / entrySize)
    var seen = Set<UInt64>()
    return (0..<count).compactMap { index in
        let id = frame.littleEndian(at: headSize + index * entrySize, as: UInt64.self)
        return seen.insert(id).inserted ? id : nil
    }
}
