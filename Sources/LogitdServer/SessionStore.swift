import Decoding
import Foundation
import LogitdProtocol

/// Every open session, shared by the workers. The lock guards the table only: a session itself is
/// used by one worker at a time, because the broker keeps one step per session in flight.
final class SessionStore: @unchecked Sendable {
    enum Ending: String {
        case closed, finished, expired
    }

    let ttl: Duration
    let maxSessions: Int
    /// Most sessions of one owner; 0: no such limit.
    let maxPerOwner: Int
    private var openByOwner: [String: Int] = [:]
    private let lock = NSLock()
    private var sessions: [UInt64: Session] = [:]
    /// Recently ended sessions, so that using one says why it is gone; bounded.
    private var ended: [UInt64: (ending: Ending, owner: String)] = [:]
    private var endedOrder: [UInt64] = []
    /// How many ended sessions keep their reason (closed, finished, expired).
    private let endedMemory: Int
    private var ids = SessionIDs()
    /// The most sessions open since memory was last handed back to the system.
    private var highWater = 0

    init(ttl: Duration, maxSessions: Int, maxPerOwner: Int = 0, endedMemory: Int = 65_536) {
        self.ttl = ttl
        self.maxSessions = maxSessions
        self.maxPerOwner = maxPerOwner
        self.endedMemory = endedMemory
    }

    var count: Int { lock.withLock { sessions.count } }

    func open(_ parameters: SessionParameters, owner: String = "", now: ContinuousClock.Instant = .now) throws(ProtocolError) -> Session {
        let seed = parameters.seed ?? Philox.drawSeed()
        var resolved = parameters
        resolved.seed = seed
        if resolved.history.map({ history in
            let session = Session(id: 0, parameters: resolved, seed: seed, now: now)
            return session.expectedRows == 0
        }) == true {
            throw ProtocolError(.badParameters, "\"history\": every sequence is already finished; nothing to continue")
        }
        let result: Result<Session, ProtocolError> = lock.withLock {
            sweepLocked(now: now)
            guard sessions.count < maxSessions else {
                return .failure(ProtocolError(.tooManySessions, "the daemon holds its maximum of \(maxSessions) sessions (limits.max_sessions)"))
            }
            if maxPerOwner > 0 && openByOwner[owner, default: 0] >= maxPerOwner {
                return .failure(ProtocolError(.tooManySessions, "this client holds its maximum of \(maxPerOwner) sessions (limits.max_sessions_per_identity)"))
            }
            let id = ids.issue()
            let session = Session(id: id, parameters: resolved, seed: seed, now: now)
            session.owner = owner
            sessions[id] = session
            openByOwner[owner, default: 0] += 1
            highWater = max(highWater, sessions.count)
            return .success(session)
        }
        return try result.get()
    }

    /// The open session `id` of `identity`, marked as used now; or the error that says why there is
    /// none. Another identity's session is answered as if it did not exist.
    func session(_ id: UInt64, identity: String = "", now: ContinuousClock.Instant = .now) throws(ProtocolError) -> Session {
        let unknown = ProtocolError(.unknownSession, "no session \(id) on this daemon")
        let result: Result<Session, ProtocolError> = lock.withLock {
            if let session = sessions[id] {
                guard session.owner == identity else { return .failure(unknown) }
                if now - session.lastUsed > ttl {
                    endLocked(id, .expired)
                } else {
                    session.lastUsed = now
                    return .success(session)
                }
            }
            if let owner = ended[id]?.owner, owner != identity { return .failure(unknown) }
            switch ended[id]?.ending {
            case .closed?: return .failure(ProtocolError(.sessionClosed, "session \(id) was closed"))
            case .finished?: return .failure(ProtocolError(.sessionClosed, "session \(id) is finished"))
            case .expired?: return .failure(ProtocolError(.sessionExpired, "session \(id) expired after \(ttl) idle"))
            // Issued here but no longer remembered: it ended; only ids never issued are unknown.
            case nil where ids.issued(id): return .failure(ProtocolError(.sessionClosed, "session \(id) has ended (closed, finished or expired)"))
            case nil: return .failure(unknown)
            }
        }
        return try result.get()
    }

    /// Ends a session (closed by its client, or finished).
    func end(_ id: UInt64, _ ending: Ending) {
        lock.withLock { endLocked(id, ending) }
    }

    /// Drops every session idle for longer than the TTL.
    func sweep(now: ContinuousClock.Instant = .now) {
        lock.withLock { sweepLocked(now: now) }
    }

    /// Whether enough sessions ended since the last call that their memory is worth handing back
    /// to the system (the allocator keeps freed memory for reuse otherwise).
    func shouldReleaseMemory() -> Bool {
        lock.withLock {
            guard highWater >= 64, sessions.count <= highWater / 2 else { return false }
            highWater = sessions.count
            return true
        }
    }

    private func sweepLocked(now: ContinuousClock.Instant) {
        for (id, session) in sessions where now - session.lastUsed > ttl { endLocked(id, .expired) }
    }

    private func endLocked(_ id: UInt64, _ ending: Ending) {
        let removed = sessions.removeValue(forKey: id)
        if let removed {
            openByOwner[removed.owner, default: 1] -= 1
            if openByOwner[removed.owner] == 0 { openByOwner[removed.owner] = nil }
        }
        let owner = removed?.owner ?? ended[id]?.owner ?? ""
        if ended.updateValue((ending, owner), forKey: id) == nil { endedOrder.append(id) }
        if endedOrder.count > endedMemory {
            let dropped = endedOrder.count - endedMemory / 2
            for old in endedOrder.prefix(dropped) { ended[old] = nil }
            endedOrder.removeFirst(dropped)
        }
    }
}
