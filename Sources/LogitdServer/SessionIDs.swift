import Decoding

/// Session ids: the issue counter under a secret permutation of 62-bit numbers (a four-round
/// Feistel network whose round function is Philox keyed at start-up). Ids are unguessable, never
/// reused by one daemon, and an id it issued is recognised as its own long after the session is
/// forgotten — so a closed session's id answers SESSION_CLOSED, never UNKNOWN_SESSION (which would
/// invite a stale client to re-open it from its history).
public struct SessionIDs: Sendable {
    private static let halfBits: UInt64 = 31
    private static let halfMask: UInt64 = (1 << halfBits) - 1
    private let key: Philox
    private var next: UInt64 = 1

    public init(key: UInt64 = Philox.drawSeed()) {
        self.key = Philox(seed: key)
    }

    private func round(_ half: UInt64, _ index: Int) -> UInt64 {
        UInt64(key.block(sequence: UInt32(index), step: half, draw: 0).0) & Self.halfMask
    }

    public func id(ofCounter counter: UInt64) -> UInt64 {
        var (left, right) = (counter >> Self.halfBits & Self.halfMask, counter & Self.halfMask)
        for index in 0..<4 { (left, right) = (right, left ^ round(right, index)) }
        return left << Self.halfBits | right
    }

    public func counter(ofID id: UInt64) -> UInt64? {
        guard id >> (2 * Self.halfBits) == 0 else { return nil }
        var (left, right) = (id >> Self.halfBits, id & Self.halfMask)
        for index in (0..<4).reversed() { (left, right) = (right ^ round(left, index), left) }
        return left << Self.halfBits | right
    }

    /// A new id (never 0).
    public mutating func issue() -> UInt64 {
        while true {
            let id = id(ofCounter: next)
            next += 1
            if id != 0 { return id }
        }
    }

    /// Whether this daemon issued `id`.
    public func issued(_ id: UInt64) -> Bool {
        counter(ofID: id).map { $0 >= 1 && $0 < next } ?? false
    }
}
