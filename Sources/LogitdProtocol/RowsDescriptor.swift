import Decoding

/// The frame that says how to read a logits frame: 12 bytes, little-endian.
///
///     offset size field
///     0      1    dtype: 1 = float32, 2 = float16, 3 = bfloat16
///     1      1    layout: 0 = dense rows (the only layout of v1)
///     2      2    reserved, 0
///     4      4    rows
///     8      4    vocab (elements per row)
public struct RowsDescriptor: Equatable, Sendable {
    public static let size = 12

    public var dtype: LogitDType
    public var rows: Int
    public var vocab: Int
    /// Layout 1 (STEP only): rows of (token, logit) pairs; `vocab` counts the pairs per row.
    public var sparse = false
    /// Layout 2 (STEP only): sparse rows, each led by an f32, the full row's log Σ exp.
    public var logNormaliser = false

    public init(dtype: LogitDType, rows: Int, vocab: Int) {
        self.dtype = dtype
        self.rows = rows
        self.vocab = vocab
    }

    /// Bytes the logits frame must hold.
    public var payloadBytes: Int { rows * vocab * dtype.byteWidth }

    public var encoded: [UInt8] {
        var bytes: [UInt8] = [dtype.rawValue, 0, 0, 0]
        bytes.reserveCapacity(Self.size)
        bytes.appendLittleEndian(UInt32(rows))
        bytes.appendLittleEndian(UInt32(vocab))
        return bytes
    }

    /// Parses a descriptor and checks its shape against `limits`. Layouts 1 and 2 (sparse rows of
    /// float32 pairs, 2 with each row's log-sum-exp first) only where `allowSparse`.
    public static func parse(_ frame: UnsafeRawBufferPointer, limits: ProtocolLimits, allowSparse: Bool = false) throws(ProtocolError) -> RowsDescriptor {
        guard frame.count == size else {
            throw ProtocolError(.badDescriptor, "the rows descriptor has \(frame.count) bytes; it must have \(size)")
        }
        guard let dtype = LogitDType(rawValue: frame[0]) else {
            throw ProtocolError(.badDescriptor, "unknown dtype code \(frame[0]); known: 1 (f32), 2 (f16), 3 (bf16)")
        }
        let sparse = (frame[1] == 1 || frame[1] == 2) && allowSparse
        guard frame[1] == 0 || sparse else {
            throw ProtocolError(.badDescriptor, "unknown layout \(frame[1]); known: 0 (dense rows)\(allowSparse ? ", 1 (sparse rows), 2 (sparse rows with their log-sum-exp)" : "")")
        }
        guard !sparse || dtype == .float32 else {
            throw ProtocolError(.badDescriptor, "sparse rows carry float32 logits: dtype must be 1")
        }
        guard frame.littleEndian(at: 2, as: UInt16.self) == 0 else {
            throw ProtocolError(.badDescriptor, "the reserved bytes after the layout must be 0")
        }
        let rows = Int(frame.littleEndian(at: 4, as: UInt32.self))
        let vocab = Int(frame.littleEndian(at: 8, as: UInt32.self))
        guard rows > 0, rows <= limits.maxRows else {
            throw ProtocolError(.badShape, "rows is \(rows); it must be between 1 and \(limits.maxRows)")
        }
        guard vocab > 0, vocab <= limits.maxVocab else {
            throw ProtocolError(.badShape, "vocab is \(vocab); it must be between 1 and \(limits.maxVocab)")
        }
        var descriptor = RowsDescriptor(dtype: dtype, rows: rows, vocab: vocab)
        descriptor.sparse = sparse
        descriptor.logNormaliser = frame[1] == 2
        return descriptor
    }
}

/// What the daemon accepts, announced in WELCOME and enforced on every request.
public struct ProtocolLimits: Equatable, Sendable, Codable {
    public var maxVocab: Int
    public var maxRows: Int
    public var maxMessageBytes: Int
    /// Most draft tokens one VERIFY may carry (k).
    public var maxDraftTokens: Int
    /// Per-session bounds, checked on OPEN: parallel sequences, beam width, alternatives per token,
    /// tokens to generate, and elements in any list parameter (and in each of its sequences).
    public var maxN: Int
    public var maxBeamWidth: Int
    public var maxLogprobs: Int
    /// Most named tokens whose log-probabilities a session reports (`logprob_token_ids`).
    public var maxLogprobTokenIDs: Int
    public var maxNewTokens: Int
    public var maxListLength: Int
    /// Sessions: idle time before one expires, and how many the daemon holds at once.
    public var sessionTTLMilliseconds: Int
    public var maxSessions: Int
    public var maxSessionsPerIdentity: Int

    public init(maxVocab: Int, maxRows: Int, maxMessageBytes: Int, maxDraftTokens: Int = 32, maxN: Int = 256, maxBeamWidth: Int = 128,
                maxLogprobs: Int = 20, maxLogprobTokenIDs: Int = 256, maxNewTokens: Int = 1 << 20, maxListLength: Int = 1 << 20,
                sessionTTLMilliseconds: Int = 600_000, maxSessions: Int = 10_000, maxSessionsPerIdentity: Int = 10_000) {
        self.maxVocab = maxVocab
        self.maxRows = maxRows
        self.maxMessageBytes = maxMessageBytes
        self.maxDraftTokens = maxDraftTokens
        self.maxN = maxN
        self.maxBeamWidth = maxBeamWidth
        self.maxLogprobs = maxLogprobs
        self.maxLogprobTokenIDs = maxLogprobTokenIDs
        self.maxNewTokens = maxNewTokens
        self.maxListLength = maxListLength
        self.sessionTTLMilliseconds = sessionTTLMilliseconds
        self.maxSessions = maxSessions
        self.maxSessionsPerIdentity = maxSessionsPerIdentity
    }

    enum CodingKeys: String, CodingKey {
        case maxVocab = "max_vocab"
        case maxRows = "max_rows"
        case maxMessageBytes = "max_message_bytes"
        case maxDraftTokens = "max_draft_tokens"
        case maxN = "max_n"
        case maxBeamWidth = "max_beam_width"
        case maxLogprobs = "max_logprobs"
        case maxLogprobTokenIDs = "max_logprob_token_ids"
        case maxNewTokens = "max_new_tokens"
        case maxListLength = "max_list_length"
        case sessionTTLMilliseconds = "session_ttl_ms"
        case maxSessions = "max_sessions"
        case maxSessionsPerIdentity = "max_sessions_per_identity"
    }

    /// Daemons from before VERIFY and the session bounds publish fewer keys: those read as 0.
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        maxVocab = try container.decode(Int.self, forKey: .maxVocab)
        maxRows = try container.decode(Int.self, forKey: .maxRows)
        maxMessageBytes = try container.decode(Int.self, forKey: .maxMessageBytes)
        maxDraftTokens = try container.decodeIfPresent(Int.self, forKey: .maxDraftTokens) ?? 0
        maxN = try container.decodeIfPresent(Int.self, forKey: .maxN) ?? 0
        maxBeamWidth = try container.decodeIfPresent(Int.self, forKey: .maxBeamWidth) ?? 0
        maxLogprobs = try container.decodeIfPresent(Int.self, forKey: .maxLogprobs) ?? 0
        maxLogprobTokenIDs = try container.decodeIfPresent(Int.self, forKey: .maxLogprobTokenIDs) ?? 0
        maxNewTokens = try container.decodeIfPresent(Int.self, forKey: .maxNewTokens) ?? 0
        maxListLength = try container.decodeIfPresent(Int.self, forKey: .maxListLength) ?? 0
        sessionTTLMilliseconds = try container.decodeIfPresent(Int.self, forKey: .sessionTTLMilliseconds) ?? 0
        maxSessions = try container.decodeIfPresent(Int.self, forKey: .maxSessions) ?? 0
        maxSessionsPerIdentity = try container.decodeIfPresent(Int.self, forKey: .maxSessionsPerIdentity) ?? 0
    }
}
