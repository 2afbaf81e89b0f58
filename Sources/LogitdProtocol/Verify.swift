import Decoding

/// VERIFY's descriptor frame: 32 bytes, little-endian.
///
///     offset size field
///     0      8    session id
///     8      4    step index (as STEP's)
///     12     4    sequence number being verified
///     16     1    dtype of the target rows and of dense draft rows: 1 f32, 2 f16, 3 bf16
///     17     1    target layout: 0 dense rows, 1 sparse (u32 token, f32 logit) pairs (dtype 1)
///     18     1    draft layout: 0 none (a point mass on each draft token), 1 dense probability
///                 rows (dtype), 2 sparse (u32 token, f32 probability) pairs
///     19     1    reserved, 0
///     20     4    k: draft tokens
///     24     4    dense targets: vocab (= the session's vocab_size); sparse: candidates per row
///     28     4    sparse drafts: pairs per draft row; otherwise 0
public struct VerifyDescriptor: Equatable, Sendable {
    public static let size = 32

    public enum DraftLayout: UInt8, Sendable { case none = 0, dense = 1, sparse = 2 }

    public var session: UInt64
    public var step: Int
    public var sequence: Int
    public var dtype: LogitDType
    public var sparseTargets: Bool
    public var draftLayout: DraftLayout
    public var draftTokens: Int
    /// Dense targets: elements per row; sparse: candidate pairs per row.
    public var vocab: Int
    public var draftCandidates: Int

    public init(session: UInt64, step: Int, sequence: Int, dtype: LogitDType, sparseTargets: Bool = false, draftLayout: DraftLayout,
                draftTokens: Int, vocab: Int, draftCandidates: Int = 0) {
        self.session = session
        self.step = step
        self.sequence = sequence
        self.dtype = dtype
        self.sparseTargets = sparseTargets
        self.draftLayout = draftLayout
        self.draftTokens = draftTokens
        self.vocab = vocab
        self.draftCandidates = draftCandidates
    }

    public var encoded: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.size)
        bytes.appendLittleEndian(session)
        bytes.appendLittleEndian(UInt32(step))
        bytes.appendLittleEndian(UInt32(sequence))
        bytes += [dtype.rawValue, sparseTargets ? 1 : 0, draftLayout.rawValue, 0]
        bytes.appendLittleEndian(UInt32(draftTokens))
        bytes.appendLittleEndian(UInt32(vocab))
        bytes.appendLittleEndian(UInt32(draftCandidates))
        return bytes
    }

    /// Bytes of the target rows frame: k + 1 rows.
    public var targetBytes: Int { (draftTokens + 1) * vocab * (sparseTargets ? 8 : dtype.byteWidth) }

    /// Bytes of the draft rows frame: k rows, or nothing.
    public var draftBytes: Int {
        switch draftLayout {
        case .none: 0
        case .dense: draftTokens * vocab * dtype.byteWidth
        case .sparse: draftTokens * draftCandidates * 8
        }
    }

    public static func parse(_ frame: UnsafeRawBufferPointer, limits: ProtocolLimits) throws(ProtocolError) -> VerifyDescriptor {
        guard frame.count == size else {
            throw ProtocolError(.badDescriptor, "the verify descriptor has \(frame.count) bytes; it must have \(size)")
        }
        return try parseShape(session: frame.littleEndian(at: 0, as: UInt64.self), step: Int(frame.littleEndian(at: 8, as: UInt32.self)),
                              sequence: Int(frame.littleEndian(at: 12, as: UInt32.self)), shape: UnsafeRawBufferPointer(rebasing: frame[16...]),
                              draftTokens: Int(frame.littleEndian(at: 20, as: UInt32.self)), limits: limits)
    }

    /// The shape fields (dtype, layouts, vocab, draft candidates), as VERIFY's descriptor and BATCH
    /// VERIFY's table head hold them: `shape` starts at the dtype byte, vocab at offset 8, draft
    /// candidates at 12.
    static func parseShape(session: UInt64, step: Int, sequence: Int, shape: UnsafeRawBufferPointer, draftTokens: Int,
                           limits: ProtocolLimits) throws(ProtocolError) -> VerifyDescriptor {
        guard let dtype = LogitDType(rawValue: shape[0]) else {
            throw ProtocolError(.badDescriptor, "unknown dtype code \(shape[0]); known: 1 (f32), 2 (f16), 3 (bf16)")
        }
        guard shape[1] <= 1 else { throw ProtocolError(.badDescriptor, "unknown target layout \(shape[1]); known: 0 (dense), 1 (sparse)") }
        guard let draftLayout = DraftLayout(rawValue: shape[2]) else {
            throw ProtocolError(.badDescriptor, "unknown draft layout \(shape[2]); known: 0 (none), 1 (dense), 2 (sparse)")
        }
        guard shape[3] == 0 else { throw ProtocolError(.badDescriptor, "the verify descriptor's reserved byte must be 0") }
        let sparseTargets = shape[1] == 1
        if sparseTargets && dtype != .float32 { throw ProtocolError(.badDescriptor, "sparse target rows carry f32 logits: dtype must be 1") }
        if sparseTargets && draftLayout == .dense { throw ProtocolError(.badDescriptor, "dense draft rows (layout 1) need dense target rows; with sparse targets send sparse drafts (layout 2)") }
        guard draftTokens >= 1, draftTokens <= limits.maxDraftTokens else {
            throw ProtocolError(.badShape, "k is \(draftTokens) draft tokens; it must be between 1 and \(limits.maxDraftTokens)")
        }
        let vocab = Int(shape.littleEndian(at: 8, as: UInt32.self))
        guard vocab > 0, vocab <= limits.maxVocab else {
            throw ProtocolError(.badShape, "vocab is \(vocab); it must be between 1 and \(limits.maxVocab)")
        }
        let draftCandidates = Int(shape.littleEndian(at: 12, as: UInt32.self))
        switch draftLayout {
        case .sparse:
            guard draftCandidates > 0, draftCandidates <= limits.maxVocab else {
                throw ProtocolError(.badShape, "sparse drafts have \(draftCandidates) pairs per row; it must be between 1 and \(limits.maxVocab)")
            }
        case .none, .dense:
            guard draftCandidates == 0 else { throw ProtocolError(.badDescriptor, "draft candidates must be 0 unless the draft layout is 2 (sparse)") }
        }
        return VerifyDescriptor(session: session, step: step, sequence: sequence, dtype: dtype, sparseTargets: sparseTargets, draftLayout: draftLayout,
                                draftTokens: draftTokens, vocab: vocab, draftCandidates: draftCandidates)
    }
}

/// A VERIFY, read in place from its frames: the descriptor, the k draft tokens (u32 each), the
/// k + 1 target rows, the k draft rows (or none) and, with the header's mask flag, the mask frame
/// (checked by the session, which knows its vocabulary).
public struct VerifyRequest: @unchecked Sendable {
    public let descriptor: VerifyDescriptor
    public let draftTokens: [Int]
    public let targets: UnsafeRawBufferPointer
    public let drafts: UnsafeRawBufferPointer
    public var mask: UnsafeRawBufferPointer?

    /// Checks the frames' sizes against the descriptor.
    public init(descriptor: VerifyDescriptor, tokens: UnsafeRawBufferPointer, targets: UnsafeRawBufferPointer, drafts: UnsafeRawBufferPointer,
                mask: UnsafeRawBufferPointer?) throws(ProtocolError) {
        let k = descriptor.draftTokens
        guard tokens.count == 4 * k else {
            throw ProtocolError(.sizeMismatch, "the draft tokens frame has \(tokens.count) bytes; \(k) tokens × 4 bytes is \(4 * k)")
        }
        guard targets.count == descriptor.targetBytes else {
            let shape = descriptor.sparseTargets ? "\(k + 1) rows × \(descriptor.vocab) pairs × 8 bytes" : "\(k + 1) rows × \(descriptor.vocab) vocab × \(descriptor.dtype.byteWidth) bytes (\(descriptor.dtype))"
            throw ProtocolError(.sizeMismatch, "the target rows frame has \(targets.count) bytes; \(shape) is \(descriptor.targetBytes)")
        }
        guard drafts.count == descriptor.draftBytes else {
            throw ProtocolError(.sizeMismatch, "the draft rows frame has \(drafts.count) bytes; draft layout \(descriptor.draftLayout.rawValue) with k = \(k) needs \(descriptor.draftBytes)")
        }
        self.descriptor = descriptor
        self.draftTokens = (0..<k).map { Int(tokens.littleEndian(at: 4 * $0, as: UInt32.self)) }
        self.targets = targets
        self.drafts = drafts
        self.mask = mask
    }

    /// Dense target row `index`.
    public func targetRow(_ index: Int) -> LogitRow {
        let rowBytes = descriptor.vocab * descriptor.dtype.byteWidth
        return LogitRow(bytes: UnsafeRawBufferPointer(rebasing: targets[(index * rowBytes)..<((index + 1) * rowBytes)]), dtype: descriptor.dtype)
    }

    /// Dense draft row `index` (probabilities in the descriptor's dtype, over the targets' vocab).
    public func draftRow(_ index: Int) -> LogitRow {
        let rowBytes = descriptor.vocab * descriptor.dtype.byteWidth
        return LogitRow(bytes: UnsafeRawBufferPointer(rebasing: drafts[(index * rowBytes)..<((index + 1) * rowBytes)]), dtype: descriptor.dtype)
    }
}

/// The first body frame of VERIFIED: the 24 bytes of a step summary (records: tokens emitted;
/// kind 0; flags bit 0: the session is done), then u32 sequence and u32 accepted draft tokens.
public struct VerifySummary: Equatable, Sendable {
    public static let size = 32

    public var step: StepSummary
    public var sequence: Int
    public var accepted: Int

    public init(step: StepSummary, sequence: Int, accepted: Int) {
        self.step = step
        self.sequence = sequence
        self.accepted = accepted
    }

    public var encoded: [UInt8] {
        var bytes = step.encoded
        bytes.appendLittleEndian(UInt32(sequence))
        bytes.appendLittleEndian(UInt32(accepted))
        return bytes
    }

    public static func parse(_ frame: UnsafeRawBufferPointer) throws(ProtocolError) -> VerifySummary {
        guard frame.count == size else { throw ProtocolError(.internalError, "malformed verify summary") }
        return VerifySummary(step: try StepSummary.parse(UnsafeRawBufferPointer(rebasing: frame[..<StepSummary.size])),
                             sequence: Int(frame.littleEndian(at: 24, as: UInt32.self)), accepted: Int(frame.littleEndian(at: 28, as: UInt32.self)))
    }
}

/// BATCH VERIFY's table frame: a 16-byte head — u8 dtype, u8 target layout (0: dense rows), u8
/// draft layout, u8 reserved (0), u32 entries, u32 vocab (every entry's session must have this
/// vocab_size), u32 pairs per sparse draft row (else 0) — then 24 bytes per entry: u64 session, u32 step, u32 sequence,
/// u32 k, u32 reserved (0). The other frames hold every entry's part, in table order.
public enum VerifyTable {
    public static let headSize = 16
    public static let entrySize = 24

    public struct Entry: Equatable, Sendable {
        public var session: UInt64
        public var step: Int
        public var sequence: Int
        public var draftTokens: Int

        public init(session: UInt64, step: Int, sequence: Int, draftTokens: Int) {
            self.session = session
            self.step = step
            self.sequence = sequence
            self.draftTokens = draftTokens
        }
    }

    public static func encode(dtype: LogitDType, draftLayout: VerifyDescriptor.DraftLayout, vocab: Int, draftCandidates: Int = 0, entries: [Entry]) -> [UInt8] {
        var bytes: [UInt8] = [dtype.rawValue, 0, draftLayout.rawValue, 0]
        bytes.appendLittleEndian(UInt32(entries.count))
        bytes.appendLittleEndian(UInt32(vocab))
        bytes.appendLittleEndian(UInt32(draftCandidates))
        for entry in entries {
            bytes.appendLittleEndian(entry.session)
            bytes.appendLittleEndian(UInt32(entry.step))
            bytes.appendLittleEndian(UInt32(entry.sequence))
            bytes.appendLittleEndian(UInt32(entry.draftTokens))
            bytes.appendLittleEndian(UInt32(0))
        }
        return bytes
    }

    /// The distinct sessions of a table, as far as it can be read (for the broker's ordering).
    public static func sessionIDs(_ frame: UnsafeRawBufferPointer) -> [UInt64] {
        tableSessionIDs(frame, headSize: headSize, entrySize: entrySize)
    }

    /// Parses the table and slices the other frames into one VERIFY per entry. Targets are dense
    /// rows (layout 0), as in BATCH STEP; a mask frame holds Σ (k + 1) mask rows, or one for all.
    static func parse(_ table: UnsafeRawBufferPointer, tokens: UnsafeRawBufferPointer, targets: UnsafeRawBufferPointer, drafts: UnsafeRawBufferPointer,
                      mask: UnsafeRawBufferPointer?, limits: ProtocolLimits) throws(ProtocolError) -> [VerifyRequest] {
        guard table.count >= headSize else {
            throw ProtocolError(.badDescriptor, "the verify table has \(table.count) bytes; its head alone has \(headSize)")
        }
        let count = Int(table.littleEndian(at: 4, as: UInt32.self))
        guard count > 0, table.count == headSize + count * entrySize else {
            throw ProtocolError(.badDescriptor, "the verify table has \(table.count) bytes; \(count) entries need \(headSize + count * entrySize) (and at least one entry)")
        }
        guard table[1] == 0 else { throw ProtocolError(.badDescriptor, "BATCH VERIFY takes dense target rows (layout 0); send sparse ones as VERIFY") }
        var descriptors: [VerifyDescriptor] = []
        var seen = Set<UInt64>()
        for index in 0..<count {
            let at = headSize + index * entrySize
            guard table.littleEndian(at: at + 20, as: UInt32.self) == 0 else { throw ProtocolError(.badDescriptor, "entry \(index)'s reserved bytes must be 0") }
            // The head's shape fields sit where a descriptor's do (its entry count where k would be).
            let descriptor = try VerifyDescriptor.parseShape(
                session: table.littleEndian(at: at, as: UInt64.self), step: Int(table.littleEndian(at: at + 8, as: UInt32.self)),
                sequence: Int(table.littleEndian(at: at + 12, as: UInt32.self)), shape: UnsafeRawBufferPointer(rebasing: table[0..<headSize]),
                draftTokens: Int(table.littleEndian(at: at + 16, as: UInt32.self)), limits: limits)
            guard seen.insert(descriptor.session).inserted else {
                throw ProtocolError(.badDescriptor, "session \(descriptor.session) appears twice in the batch (send one VERIFY per sequence)")
            }
            descriptors.append(descriptor)
        }
        let tokenBytes = descriptors.reduce(0) { $0 + 4 * $1.draftTokens }
        let targetBytes = descriptors.reduce(0) { $0 + $1.targetBytes }
        let draftBytes = descriptors.reduce(0) { $0 + $1.draftBytes }
        let rows = descriptors.reduce(0) { $0 + $1.draftTokens + 1 }
        guard rows <= limits.maxRows else { throw ProtocolError(.badShape, "the batch has \(rows) target rows; the limit is \(limits.maxRows)") }
        guard tokens.count == tokenBytes else { throw ProtocolError(.sizeMismatch, "the draft tokens frame has \(tokens.count) bytes; the table's entries need \(tokenBytes)") }
        guard targets.count == targetBytes else { throw ProtocolError(.sizeMismatch, "the target rows frame has \(targets.count) bytes; the table's entries need \(targetBytes)") }
        guard drafts.count == draftBytes else { throw ProtocolError(.sizeMismatch, "the draft rows frame has \(drafts.count) bytes; the table's entries need \(draftBytes)") }
        let masks = try mask.map { (frame) throws(ProtocolError) in try RowMasks.parse(frame, rows: rows, vocab: descriptors[0].vocab) }
        var (tokenOffset, targetOffset, draftOffset, row) = (0, 0, 0, 0)
        var requests: [VerifyRequest] = []
        for descriptor in descriptors {
            let k = descriptor.draftTokens
            requests.append(try VerifyRequest(descriptor: descriptor, tokens: UnsafeRawBufferPointer(rebasing: tokens[tokenOffset..<(tokenOffset + 4 * k)]),
                                              targets: UnsafeRawBufferPointer(rebasing: targets[targetOffset..<(targetOffset + descriptor.targetBytes)]),
                                              drafts: UnsafeRawBufferPointer(rebasing: drafts[draftOffset..<(draftOffset + descriptor.draftBytes)]),
                                              mask: masks?.frame(forRows: row..<(row + k + 1))))
            tokenOffset += 4 * k
            targetOffset += descriptor.targetBytes
            draftOffset += descriptor.draftBytes
            row += k + 1
        }
        return requests
    }
}
