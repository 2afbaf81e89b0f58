/// Keeps the requests of each session in arrival order, one in flight per session, while requests
/// of other sessions go ahead. A request may touch several sessions (a batch step): it runs once it
/// is first in line for all of them and none of them is busy.
public struct SessionOrder<Request> {
    private var nextTicket = 0
    /// Per session, the tickets of its requests in arrival order; the first may be in flight.
    private var queues: [UInt64: [Int]] = [:]
    private var held: [Int: (sessions: [UInt64], request: Request)] = [:]
    private var busy: Set<UInt64> = []

    /// Requests of `session` waiting behind the one in flight.
    public init() {}

    public func waiting(for session: UInt64) -> Int {
        max(0, (queues[session]?.count ?? 0) - (busy.contains(session) ? 1 : 0))
    }

    /// Takes a request touching `sessions` (not empty, no repeats). Returns it when it may run now;
    /// otherwise holds it until `finish` releases it.
    public mutating func admit(_ request: Request, sessions: [UInt64]) -> Request? {
        let ticket = nextTicket
        nextTicket += 1
        for session in sessions { queues[session, default: []].append(ticket) }
        held[ticket] = (sessions, request)
        return release(ticket)
    }

    /// The request that held `sessions` is done: returns the requests that may run now.
    public mutating func finish(sessions: [UInt64]) -> [Request] {
        var candidates: [Int] = []
        for session in sessions {
            busy.remove(session)
            queues[session]?.removeFirst()
            if let next = queues[session]?.first {
                if !candidates.contains(next) { candidates.append(next) }
            } else {
                queues[session] = nil
            }
        }
        return candidates.compactMap { release($0) }
    }

    /// Every held request, in no particular order, for refusing them at shutdown.
    /// Whether no request is held behind another of its sessions.
    public var isEmpty: Bool { held.isEmpty }
    /// Requests held (waiting for their sessions).
    public var heldCount: Int { held.count }

    public mutating func drain() -> [Request] {
        let requests = held.values.map(\.request)
        held.removeAll()
        queues.removeAll()
        busy.removeAll()
        return requests
    }

    private mutating func release(_ ticket: Int) -> Request? {
        guard let (sessions, request) = held[ticket],
              sessions.allSatisfy({ !busy.contains($0) && queues[$0]?.first == ticket }) else { return nil }
        held[ticket] = nil
        busy.formUnion(sessions)
        return request
    }
}
