import Decoding

/// The first body frame of TOKENS (0x91) and DONE (0x92): 24 bytes, little-endian.
///
///     offset size field
///     0      8    session id
///     8      4    step index just decoded
///     12     4    records in the next frame
///     16     4    stable prefix length (beam: leading tokens no later step can change; else 0)
///     20     1    kind: 0 = sequences, 1 = beams
///     21     1    flags: bit 0 = the session is done; bit 1 = a details frame follows the JSON
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
    /// A fifth frame, StepDetails, follows (sessions with return_rank, logprob_token_ids or return_support).
    public var hasDetails = false
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
        bytes += [kind.rawValue, (isDone ? 1 : 0) | (hasDetails ? 2 : 0)]
        bytes.appendLittleEndian(UInt16(alternatives))
        return bytes
    }

    public static func parse(_ frame: UnsafeRawBufferPointer) throws(ProtocolError) -> StepSummary {
        guard frame.count == size, let kind = Kind(rawValue: frame[20]) else {
            throw ProtocolError(.internalError, "malformed step summary")
        }
        var summary = StepSummary(
            session: frame.littleEndian(at: 0, as: UInt64.self), step: Int(frame.littleEndian(at: 8, as: UInt32.self)),
            records: Int(frame.littleEndian(at: 12, as: UInt32.self)), stablePrefixLength: Int(frame.littleEndian(at: 16, as: UInt32.self)),
            kind: kind, isDone: frame[21] & 1 == 1, alternatives: Int(frame.littleEndian(at: 22, as: UInt16.self)))
        summary.hasDetails = frame[21] & 2 == 2
        return summary
    }
}

/// One chosen token of one sequence: 16 bytes — u32 sequence, u32 token, f32 log-probability,
/// u8 finish reason (0 running, 1 eos, 2 stop sequence, 3 max tokens), u8 flags (bit 0: forced by
/// the thinking budget), 2 bytes of padding.
public struct SequenceToken: Equatable, Sendable {
    public static let size = 16

    public var sequence: Int
    public var token: Int
    public var logprob: Float
    public var finishReason: FinishReason?
    /// The thinking budget forced this token.
    public var forced = false

    public init(sequence: Int, token: Int, logprob: Float, finishReason: FinishReason?, forced: Bool = false) {
        self.sequence = sequence
        self.token = token
        self.logprob = logprob
        self.finishReason = finishReason
        self.forced = forced
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
            bytes += [code(token.finishReason), token.forced ? 1 : 0, 0, 0]
        }
        return bytes
    }

    public static func parse(_ frame: UnsafeRawBufferPointer) throws(ProtocolError) -> [SequenceToken] {
        guard frame.count % size == 0 else { throw ProtocolError(.internalError, "sequence records are not 16-byte records") }
        return (0..<(frame.count / size)).map { index in
            let at = index * size
            return SequenceToken(
                sequence: Int(frame.littleEndian(at: at, as: UInt32.self)), token: Int(frame.littleEndian(at: at + 4, as: UInt32.self)),
                logprob: Float(bitPattern: frame.littleEndian(at: at + 8, as: UInt32.self)), finishReason: reason(frame[at + 12]), forced: frame[at + 13] & 1 == 1)
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
