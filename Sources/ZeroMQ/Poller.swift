import CZeroMQ

/// Which readiness a poller waits for, and which it found.
public struct PollEvents: OptionSet, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    public static let readable = PollEvents(rawValue: Int16(ZMQ_POLLIN))
    public static let writable = PollEvents(rawValue: Int16(ZMQ_POLLOUT))
}

/// Waits on several sockets at once (`zmq_poll`). Each registered socket gets an index; after a poll,
/// `events(at:)` says what that socket is ready for.
public final class Poller {
    private var sockets: [Socket] = []
    private var items: [zmq_pollitem_t] = []

    public init() {}

    /// Registers a socket and returns its index.
    @discardableResult
    public func register(_ socket: Socket, for events: PollEvents = .readable) -> Int {
        sockets.append(socket)
        items.append(zmq_pollitem_t(socket: socket.handle, fd: -1, events: events.rawValue, revents: 0))
        return items.count - 1
    }

    /// Changes what the socket at `index` is polled for; an empty set leaves it out of the next polls.
    public func setEvents(_ events: PollEvents, at index: Int) {
        items[index].events = events.rawValue
    }

    /// Waits until a registered socket is ready or `timeout` passes (nil: forever; zero: just look).
    /// Returns how many sockets are ready.
    @discardableResult
    public func poll(timeout: Duration? = nil) throws(ZMQError) -> Int {
        let milliseconds: Int = timeout.map { Int($0.components.seconds) * 1000 + Int($0.components.attoseconds / 1_000_000_000_000_000) } ?? -1
        let count = items.count
        return Int(try items.withUnsafeMutableBufferPointer { (buffer) throws(ZMQError) -> Int32 in
            try check("zmq_poll") { zmq_poll(buffer.baseAddress, Int32(count), milliseconds) }
        })
    }

    /// What the socket at `index` was found ready for by the last poll.
    public func events(at index: Int) -> PollEvents {
        PollEvents(rawValue: items[index].revents)
    }
}
