#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
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

    public init(session: UInt64, step: Int, dtype: LogitDType, rows: Int, vocab: Int, sparse: Bool = false) {
        self.session = session
        self.step = step
        self.dtype = dtype
        self.rows = rows
        self.vocab = vocab
        self.sparse = sparse
    }

    public var payloadBytes: Int { rows * vocab * (sparse ? 8 : dtype.byteWidth) }

    public var encoded: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.size)
        bytes.appendLittleEndian(session)
        bytes.appendLittleEndian(UInt32(step))
        var shape = RowsDescriptor(dtype: dtype, rows: rows, vocab: vocab).encoded
        if sparse { shape[1] = 1 }
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
                              dtype: shape.dtype, rows: shape.rows, vocab: shape.vocab, sparse: shape.sparse)
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

    public func row(_ index: Int) -> LogitRow {
        let rowBytes = descriptor.vocab * descriptor.dtype.byteWidth
        return LogitRow(bytes: UnsafeRawBufferPointer(rebasing: logits[(index * rowBytes)..<((index + 1) * rowBytes)]), dtype: descriptor.dtype)
    }
}

/// The first body frame of TOKENS (0x91) and DONE (0x92): 24 bytes, little-endian.
///
///     offset size field
///     0      8    session id
///     8      4    step index just decoded
///     12     4    records in the next frame
///     16     4    stable prefix length (beam: leading tokens no later step can change; else 0)
///     20     1    kind: 0 = sequences, 1 = beams
///     21     1    flags: bit 0 = the session is done
///     22     2    alternatives per record (the session's `logprobs`)
public struct StepSummary: Equatable, Sendable {
    public static let size = 24

    public enum Kind: UInt8, Sendable { case sequences = 0, beams = 1 }

    public var session: UInt64
    public var step: Int
    public var records: Int
    public var stablePrefixLength: Int
    public var kind: Kind
    public var isDone: Bool
    public var alternatives: Int

    public init(session: UInt64, step: Int, records: Int, stablePrefixLength: Int, kind: Kind, isDone: Bool, alternatives: Int) {
        self.session = session
        self.step = step
        self.records = records
        self.stablePrefixLength = stablePrefixLength
        self.kind = kind
        self.isDone = isDone
        self.alternatives = alternatives
    }

    public var encoded: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.size)
        bytes.appendLittleEndian(session)
        bytes.appendLittleEndian(UInt32(step))
        bytes.appendLittleEndian(UInt32(records))
        bytes.appendLittleEndian(UInt32(stablePrefixLength))
        bytes += [kind.rawValue, isDone ? 1 : 0]
        bytes.appendLittleEndian(UInt16(alternatives))
        return bytes
    }

    public static func parse(_ frame: UnsafeRawBufferPointer) throws(ProtocolError) -> StepSummary {
        guard frame.count == size, let kind = Kind(rawValue: frame[20]) else {
            throw ProtocolError(.internalError, "malformed step summary")
        }
        return StepSummary(
            session: frame.littleEndian(at: 0, as: UInt64.self), step: Int(frame.littleEndian(at: 8, as: UInt32.self)),
            records: Int(frame.littleEndian(at: 12, as: UInt32.self)), stablePrefixLength: Int(frame.littleEndian(at: 16, as: UInt32.self)),
            kind: kind, isDone: frame[21] & 1 == 1, alternatives: Int(frame.littleEndian(at: 22, as: UInt16.self)))
    }
}

/// One chosen token of one sequence: 16 bytes — u32 sequence, u32 token, f32 log-probability,
/// u8 finish reason (0 running, 1 eos, 2 stop sequence, 3 max tokens), 3 bytes of padding.
public struct SequenceToken: Equatable, Sendable {
    public static let size = 16

    public var sequence: Int
    public var token: Int
    public var logprob: Float
    public var finishReason: FinishReason?

    public init(sequence: Int, token: Int, logprob: Float, finishReason: FinishReason?) {
        self.sequence = sequence
        self.token = token
        self.logprob = logprob
        self.finishReason = finishReason
    }

    static func code(_ reason: FinishReason?) -> UInt8 {
        switch reason {
        case nil: 0
        case .eos: 1
        case .stopSequence: 2
        case .maxTokens: 3
        }
    }

    static func reason(_ code: UInt8) -> FinishReason? {
        switch code {
        case 1: .eos
        case 2: .stopSequence
        case 3: .maxTokens
        default: nil
        }
    }

    public static func encode(_ tokens: [SequenceToken]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(tokens.count * size)
        for token in tokens {
            bytes.appendLittleEndian(UInt32(token.sequence))
            bytes.appendLittleEndian(UInt32(token.token))
            bytes.appendLittleEndian(token.logprob.bitPattern)
            bytes += [code(token.finishReason), 0, 0, 0]
        }
        return bytes
    }

    public static func parse(_ frame: UnsafeRawBufferPointer) throws(ProtocolError) -> [SequenceToken] {
        guard frame.count % size == 0 else { throw ProtocolError(.internalError, "sequence records are not 16-byte records") }
        return (0..<(frame.count / size)).map { index in
            let at = index * size
            return SequenceToken(
                sequence: Int(frame.littleEndian(at: at, as: UInt32.self)), token: Int(frame.littleEndian(at: at + 4, as: UInt32.self)),
                logprob: Float(bitPattern: frame.littleEndian(at: at + 8, as: UInt32.self)), finishReason: reason(frame[at + 12]))
        }
    }
}

/// One new live beam: 16 bytes — u32 parent (its row in the step just sent), u32 token, f64
/// cumulative score. The next STEP sends one row per record, in this order.
public struct BeamRecord: Equatable, Sendable {
    public static let size = 16

    public var parent: Int
    public var token: Int
    public var score: Double

    public init(parent: Int, token: Int, score: Double) {
        self.parent = parent
        self.token = token
        self.score = score
    }

    public static func encode(_ records: [BeamRecord]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(records.count * size)
        for record in records {
            bytes.appendLittleEndian(UInt32(record.parent))
            bytes.appendLittleEndian(UInt32(record.token))
            bytes.appendLittleEndian(record.score.bitPattern)
        }
        return bytes
    }

    public static func parse(_ frame: UnsafeRawBufferPointer) throws(ProtocolError) -> [BeamRecord] {
        guard frame.count % size == 0 else { throw ProtocolError(.internalError, "beam records are not 16-byte records") }
        return (0..<(frame.count / size)).map { index in
            let at = index * size
            return BeamRecord(parent: Int(frame.littleEndian(at: at, as: UInt32.self)), token: Int(frame.littleEndian(at: at + 4, as: UInt32.self)),
                              score: Double(bitPattern: frame.littleEndian(at: at + 8, as: UInt64.self)))
        }
    }
}

/// Alternatives: per record, `alternatives` × (u32 token, f32 log-probability), best first.
public enum AlternativesBody {
    public static func encode(_ alternatives: [[TokenChoice]]) -> [UInt8] {
        TokensBody.encode(alternatives.flatMap { $0 })
    }

    public static func parse(_ frame: UnsafeRawBufferPointer, perRecord: Int) throws(ProtocolError) -> [[TokenChoice]] {
        let flat = try TokensBody.parse(frame)
        guard perRecord > 0 else { return [] }
        return stride(from: 0, to: flat.count, by: perRecord).map { Array(flat[$0..<min(flat.count, $0 + perRecord)]) }
    }
}

/// A finished sequence or hypothesis as the JSON frames of TOKENS, DONE and CLOSED carry it.
public struct FinishedSequence: Codable, Equatable, Sendable {
    public var sequence: Int?
    public var tokens: [Int]
    public var finishReason: String?
    public var logprobSum: Double
    /// Beam search only: the length-normalised score.
    public var score: Double?

    public init(sequence: Int? = nil, tokens: [Int], finishReason: FinishReason?, logprobSum: Double, score: Double? = nil) {
        self.sequence = sequence
        self.tokens = tokens
        self.finishReason = finishReason?.rawValue
        self.logprobSum = logprobSum
        self.score = score
    }

    enum CodingKeys: String, CodingKey {
        case sequence, tokens, score
        case finishReason = "finish_reason"
        case logprobSum = "logprob_sum"
    }
}

/// The JSON of DONE and CLOSED: every sequence (greedy/sample) or the n best hypotheses (beam).
public struct SessionResult: Codable, Equatable, Sendable {
    public var session: UInt64
    public var steps: Int
    public var sequences: [FinishedSequence]

    public init(session: UInt64, steps: Int, sequences: [FinishedSequence]) {
        self.session = session
        self.steps = steps
        self.sequences = sequences
    }

    public var encoded: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Array(try! encoder.encode(self))
    }

    public static func parse(_ frame: UnsafeRawBufferPointer) throws(ProtocolError) -> SessionResult {
        try decodeJSON(SessionResult.self, from: frame, what: "the session result")
    }
}

/// The JSON of OPENED.
public struct OpenedBody: Sendable {
    public let session: UInt64
    public let parameters: SessionParameters
    public let seed: UInt64

    public init(session: UInt64, parameters: SessionParameters, seed: UInt64) {
        self.session = session
        self.parameters = parameters
        self.seed = seed
    }

    /// The step index the session continues with (non-zero for a recovered session).
    public var step: Int { parameters.history?.step ?? 0 }

    /// `{"parameters": {…}, "seed": …, "session": …, "step": …}`; the history is not echoed.
    public var encoded: [UInt8] {
        var echoed = parameters
        echoed.history = nil
        return Array("{\"parameters\":".utf8) + echoed.resolvedJSON + Array(",\"seed\":\(seed),\"session\":\(session),\"step\":\(step)}".utf8)
    }
}

/// What a client needs from OPENED: the session id and the seed in use.
public struct OpenedReply: Decodable, Equatable, Sendable {
    public let session: UInt64
    public let seed: UInt64
    public let step: Int

    public static func parse(_ frame: UnsafeRawBufferPointer) throws(ProtocolError) -> OpenedReply {
        try decodeJSON(OpenedReply.self, from: frame, what: "OPENED's body")
    }
}

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
