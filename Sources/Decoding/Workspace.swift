/// Per-thread scratch memory for the chain, reused from row to row so the hot path does not
/// allocate. Not thread-safe: each worker owns one.
public final class Workspace {
    /// Separate buffers, so a caller can prepare a row (and its block maxima) in one while the
    /// pipeline edits a copy in another.
    enum Slot: Int, CaseIterable {
        case pipeline = 0
        case input = 1
        case pipelineBlocks = 2
        case inputBlocks = 3
        case expandedRows = 4
    }

    private var buffers: [UnsafeMutableBufferPointer<Float>]
    private var candidates: UnsafeMutableBufferPointer<Candidate> = .allocate(capacity: 16)

    public init() {
        buffers = Slot.allCases.map { _ in .allocate(capacity: 16) }
    }

    deinit {
        buffers.forEach { $0.deallocate() }
        candidates.deallocate()
    }

    /// Rows given as candidate pairs — per row `candidates` × (u32 token id, f32 logit),
    /// little-endian — expanded to dense float32 rows of `vocab` with -inf everywhere else. Valid
    /// until the next call. Throws when a token id is out of range or repeated within a row.
    public func expandSparseRows(_ pairs: UnsafeRawBufferPointer, rows: Int, candidates: Int, vocab: Int) throws(SparseRowError) -> [LogitRow] {
        precondition(pairs.count == rows * candidates * 8, "pairs must hold rows × candidates × 8 bytes")
        let dense = scratch(count: rows * vocab, slot: .expandedRows)
        dense.initialize(repeating: -.infinity)
        for row in 0..<rows {
            for candidate in 0..<candidates {
                let at = (row * candidates + candidate) * 8
                let token = Int(UInt32(littleEndian: pairs.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
                let logit = Float(bitPattern: UInt32(littleEndian: pairs.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self)))
                guard token < vocab else { throw .tokenOutOfRange(row: row, token: token, vocab: vocab) }
                guard dense[row * vocab + token] == -.infinity else { throw .repeatedToken(row: row, token: token) }
                // A candidate given as -inf is no candidate: leave it masked.
                dense[row * vocab + token] = logit
            }
        }
        let base = UnsafeRawBufferPointer(dense)
        return (0..<rows).map { LogitRow(bytes: UnsafeRawBufferPointer(rebasing: base[($0 * vocab * 4)..<(($0 + 1) * vocab * 4)]), dtype: .float32) }
    }

    /// Candidate pairs of one row — `candidates` × (u32 token id, f32 logit), little-endian —
    /// checked for range and repeats, in ascending token order.
    public static func sparseCandidates(_ pairs: UnsafeRawBufferPointer, row: Int, candidates: Int, vocab: Int) throws(SparseRowError) -> [Candidate] {
        var list: [Candidate] = []
        list.reserveCapacity(candidates)
        for candidate in 0..<candidates {
            let at = (row * candidates + candidate) * 8
            let token = Int(UInt32(littleEndian: pairs.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
            let logit = Float(bitPattern: UInt32(littleEndian: pairs.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self)))
            guard token < vocab else { throw .tokenOutOfRange(row: row, token: token, vocab: vocab) }
            list.append(Candidate(token: token, logit: logit))
        }
        // Sorting finds repeats next to each other, cheaper than hashing every token.
        list.sort { $0.token < $1.token }
        for index in list.indices.dropFirst() where list[index].token == list[index - 1].token {
            throw .repeatedToken(row: row, token: Int(list[index].token))
        }
        return list
    }

    /// Room for `count` candidates, valid until the next call: collection kernels write here so a
    /// large head does not cost a fresh allocation (and its page faults) on every row.
    func candidateScratch(count: Int) -> UnsafeMutableBufferPointer<Candidate> {
        if candidates.count < count {
            candidates.deallocate()
            candidates = .allocate(capacity: count)
        }
        return candidates
    }

    /// A float32 buffer of `count` elements, valid until the next call for the same slot.
    func scratch(count: Int, slot: Slot = .pipeline) -> UnsafeMutableBufferPointer<Float> {
        if buffers[slot.rawValue].count < count {
            buffers[slot.rawValue].deallocate()
            buffers[slot.rawValue] = .allocate(capacity: count)
        }
        return UnsafeMutableBufferPointer(rebasing: buffers[slot.rawValue][0..<count])
    }
}

/// Why candidate pairs cannot be expanded into a row.
public enum SparseRowError: Error, Equatable, Sendable, CustomStringConvertible {
    case tokenOutOfRange(row: Int, token: Int, vocab: Int)
    case repeatedToken(row: Int, token: Int)

    public var description: String {
        switch self {
        case .tokenOutOfRange(let row, let token, let vocab): "row \(row): candidate token \(token) is outside the vocabulary (0..<\(vocab))"
        case .repeatedToken(let row, let token): "row \(row): candidate token \(token) appears twice"
        }
    }
}
