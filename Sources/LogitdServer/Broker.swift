import Decoding
import Logging
import LogitdProtocol
import ZeroMQ

#if os(Linux)
/// glibc's `int malloc_trim(size_t pad)`, which the Glibc module does not export (it lives in
/// <malloc.h>).
@_silgen_name("malloc_trim")
private func mallocTrim(_ pad: Int) -> Int32

/// Hands memory freed by closed sessions back to the system: glibc's allocator otherwise keeps it,
/// and the daemon's resident size would stay at its high-water mark.
private func releaseFreedMemory() { _ = mallocTrim(0) }
#else
private func releaseFreedMemory() {}
#endif

/// The load-balancing broker of the zguide: clients' requests arrive on a ROUTER frontend and go to
/// the least recently ready worker over an inproc ROUTER backend; each reply goes back to exactly the
/// client that sent the request. The broker moves frames (zero-copy) and workers decode, except that
/// the broker answers small requests itself (`DaemonConfig.inlineMaxBytes`): a sparse row of a
/// thousand candidates decodes in a few microseconds, less than the two thread hand-offs to a worker
/// and back would cost.
///
/// Session requests (STEP, CLOSE) are kept in order per session: while one of a session's requests
/// is with a worker, later ones wait in that session's queue in the broker, so step k + 1 is never
/// decoded before step k, while other sessions go on being served by every worker.
final class Broker {
    enum State: Equatable {
        case running
        /// Stop was requested: requests that arrive from now on are refused with SHUTTING_DOWN;
        /// those taken before — in flight, or waiting for a worker or for their session — are
        /// answered. Ends `drainQuietPeriod` after the stop at the earliest, once nothing is in
        /// flight or waiting; or at the deadline, when what still waits is refused.
        case draining(deadline: ContinuousClock.Instant, stoppedAt: ContinuousClock.Instant)
    }

    static let drainQuietPeriod: Duration = .milliseconds(100)

    static let backendEndpoint = "inproc://logitd-workers"
    static let controlEndpoint = "inproc://logitd-control"
    static let tapEndpoint = "inproc://logitd-tap"
    static let stop: [UInt8] = Array("STOP".utf8)

    private let config: DaemonConfig
    private let logger: Logger
    private let frontend: Socket
    private let backend: Socket
    private let control: Socket
    /// Token tap: workers push events here, the broker publishes them.
    private let tapIn: Socket?
    private let tapOut: Socket?
    private var readyWorkers: [[UInt8]] = []
    private var busyWorkers: Set<[UInt8]> = []
    private var state = State.running
    private let sessions: SessionStore
    private let handler: RequestHandler
    /// Scratch memory for the requests the broker answers itself.
    private let workspace = Workspace()
    /// The sessions whose request each busy worker holds.
    private var workerSessions: [[UInt8]: [UInt64]] = [:]
    private var order = SessionOrder<[Message]>()
    /// Session requests released by `order` that wait for a ready worker.
    private var runnable: [(frames: [Message], sessions: [UInt64])] = []
    static let maxQueuedPerSession = 1024
    private var lastSweep = ContinuousClock.now

    /// The endpoints actually bound, wildcard ports resolved.
    let boundEndpoints: [String]

    init(context: Context, config: DaemonConfig, handler: RequestHandler, logger: Logger) throws(ZMQError) {
        self.config = config
        self.handler = handler
        self.sessions = handler.sessions
        self.logger = logger
        frontend = try context.socket(.router)
        try frontend.setSendHighWaterMark(config.sendHighWaterMark)
        try frontend.setReceiveHighWaterMark(config.receiveHighWaterMark)
        // Replies still queued when the daemon stops get this long to leave.
        try frontend.setLinger(.seconds(1))
        // A frame far past the message limit would only be refused after it was read into memory;
        // libzmq drops such a peer's connection instead. Between the two, the client gets MESSAGE_TOO_LARGE.
        try frontend.setMaxMessageSize(max(2 * config.limits.maxMessageBytes, config.limits.maxMessageBytes + (1 << 20)))
        if let security = config.security {
            // Encrypted, and every handshake checked by the ZAP handler (bound before this socket).
            try frontend.makeCurveServer(secretKey: security.secretKey)
            try frontend.setZAPDomain(ZAPHandler.domain)
        }
        var bound: [String] = []
        for endpoint in config.binds {
            try frontend.bind(endpoint)
            bound.append(try frontend.lastEndpoint())
        }
        boundEndpoints = bound
        backend = try context.socket(.router)
        try backend.setLinger(.zero)
        try backend.bind(Self.backendEndpoint)
        control = try context.socket(.pull)
        try control.setLinger(.zero)
        try control.bind(Self.controlEndpoint)
        if let tap = config.tokenTap {
            let publisher = try context.socket(.publisher)
            try publisher.setLinger(.zero)
            try publisher.bind(tap)
            let events = try context.socket(.pull)
            try events.setLinger(.zero)
            try events.bind(Self.tapEndpoint)
            tapOut = publisher
            tapIn = events
        } else {
            tapOut = nil
            tapIn = nil
        }
    }

    /// Moves frames until a stop request has been drained, then tells every worker to stop.
    func run() throws(ZMQError) {
        let poller = Poller()
        let frontendIndex = poller.register(frontend)
        let backendIndex = poller.register(backend)
        let controlIndex = poller.register(control)
        let tapIndex = tapIn.map { poller.register($0) }
        while true {
            // Expired sessions are swept once a second, so their memory goes even when no client comes.
            var timeout: Duration? = .seconds(1)
            if ContinuousClock.now - lastSweep >= .seconds(1) {
                sessions.sweep()
                handler.refusals.flush(logger: logger)
                handler.metrics?.set(waiting: runnable.count + order.heldCount)
                if sessions.shouldReleaseMemory() { releaseFreedMemory() }
                lastSweep = .now
            }
            if case .draining(let deadline, let stoppedAt) = state {
                let now = ContinuousClock.now
                // Requests that arrive after the stop are refused; they do not keep the daemon up.
                refuseArrivedRequests()
                let quietUntil = stoppedAt + Self.drainQuietPeriod
                let idle = busyWorkers.isEmpty && runnable.isEmpty && order.isEmpty
                if idle && now >= quietUntil { break }
                if now >= deadline {
                    logger.warning("shutdown grace period over with \(busyWorkers.count) request(s) in flight and \(runnable.count) waiting")
                    refuseWaitingRequests()
                    break
                }
                timeout = now.duration(to: idle ? min(quietUntil, deadline) : deadline)
            }
            // Take requests only when a worker can have one (ZeroMQ queues the rest, and its
            // high-water mark pushes back on clients). Requests taken before a stop are still
            // answered while draining; only those arriving after it are refused.
            while !runnable.isEmpty && (!readyWorkers.isEmpty || isSmall(runnable[0].frames)) {
                let next = runnable.removeFirst()
                try dispatch(next.frames, sessions: next.sessions)
            }
            let readFrontend = state == .running ? !readyWorkers.isEmpty : true
            poller.setEvents(readFrontend ? .readable : [], at: frontendIndex)
            try poller.poll(timeout: timeout)
            if poller.events(at: backendIndex).contains(.readable) {
                try forwardReply()
            }
            if state == .running && poller.events(at: frontendIndex).contains(.readable) {
                try dispatchRequest()
            }
            if let tapIndex, let tapIn, let tapOut, poller.events(at: tapIndex).contains(.readable) {
                // Publishing never blocks: a subscriber that falls behind loses events.
                while let event = try? tapIn.receiveMultipart(flags: .dontWait) {
                    try? tapOut.send(multipart: event, flags: .dontWait)
                }
            }
            if poller.events(at: controlIndex).contains(.readable) {
                _ = try control.receiveMultipart()
                if state == .running {
                    logger.info("stopping: \(busyWorkers.count) request(s) in flight")
                    state = .draining(deadline: .now + config.shutdownGrace, stoppedAt: .now)
                }
            }
        }
        for worker in readyWorkers + busyWorkers {
            try backend.send(worker, flags: .more)
            try backend.send([])
        }
    }

    /// Closes the broker's sockets; replies still queued on the frontend linger for up to a second.
    func close() {
        frontend.close()
        backend.close()
        control.close()
        tapIn?.close()
        tapOut?.close()
    }

    /// A worker answered: pass its reply to the client and mark the worker ready again; if the
    /// request was a session's, hand that session's next waiting request to a worker.
    /// Backend messages are [worker id, READY] or [worker id, client envelope…, reply frames…].
    private func forwardReply() throws(ZMQError) {
        var frames = try backend.receiveMultipart()
        let worker = frames.removeFirst().bytes
        readyWorkers.append(worker)
        if frames.count == 1 && frames[0].bytes == Worker.ready { return }
        busyWorkers.remove(worker)
        try frontend.send(multipart: frames)
        guard let finished = workerSessions.removeValue(forKey: worker) else { return }
        for frames in order.finish(sessions: finished) {
            runnable.append((frames, Self.sessionsOrdered(frames)))
        }
    }

    /// A client sent a request: hand it, envelope and all, to the least recently ready worker, or
    /// hold it behind its sessions' requests in flight.
    private func dispatchRequest() throws(ZMQError) {
        var frames = try frontend.receiveMultipart()
        // The client's identity travels as a last frame: its CURVE public key, as the ZAP handler
        // named it (frames from the peer carry it; the routing id the ROUTER adds does not).
        let identity = frames.count > 1 ? frames[1].property("User-Id") ?? "" : ""
        frames.append(try Message(Array(identity.utf8)))
        let sessions = Self.sessionsOrdered(frames)
        guard !sessions.isEmpty else { return try dispatch(frames, sessions: []) }
        if let crowded = sessions.first(where: { order.waiting(for: $0) >= Self.maxQueuedPerSession }) {
            return refuse(frames, ProtocolError(.wrongStep, "more than \(Self.maxQueuedPerSession) requests of session \(crowded) are waiting"))
        }
        if let admitted = order.admit(frames, sessions: sessions) {
            try dispatch(admitted, sessions: sessions)
        }
    }

    /// Whether a request is small enough for the broker to answer itself.
    private func isSmall(_ frames: [Message]) -> Bool {
        var bytes = 0
        for frame in frames[Worker.envelopeLength(frames)..<(frames.count - 1)] { bytes += frame.count }
        return bytes <= config.inlineMaxBytes
    }

    /// Answers a small request on the broker's thread, any other through a ready worker.
    private func dispatch(_ frames: [Message], sessions: [UInt64]) throws(ZMQError) {
        guard isSmall(frames) else { return try send(frames, sessions: sessions) }
        try Worker.answer(frames, handler: handler, workspace: workspace, logger: logger, to: frontend, tap: tapOut)
        for frames in order.finish(sessions: sessions) {
            runnable.append((frames, Self.sessionsOrdered(frames)))
        }
    }

    private func send(_ frames: [Message], sessions: [UInt64]) throws(ZMQError) {
        let worker = readyWorkers.removeFirst()
        busyWorkers.insert(worker)
        if !sessions.isEmpty { workerSessions[worker] = sessions }
        try backend.send(worker, flags: .more)
        try backend.send(multipart: frames)
    }

    /// The sessions a request must be ordered with: the session of a STEP, VERIFY or CLOSE (the
    /// first 8 bytes after the header), every session of a BATCH STEP's or BATCH VERIFY's table;
    /// none for other requests.
    /// Anything malformed is left to the worker, which answers it with an ERROR.
    static func sessionsOrdered(_ frames: [Message]) -> [UInt64] {
        let envelope = Worker.envelopeLength(frames)
        guard frames.count > envelope + 1 else { return [] }
        let type = frames[envelope].withUnsafeBytes { bytes -> UInt8? in
            bytes.count == Header.size && bytes.prefix(4).elementsEqual(Header.magic) ? bytes[5] : nil
        }
        switch type {
        case MessageType.step.rawValue?, MessageType.close.rawValue?, MessageType.verify.rawValue?:
            return frames[envelope + 1].withUnsafeBytes(StepDescriptor.sessionID).map { [$0] } ?? []
        case MessageType.batchStep.rawValue?:
            return frames[envelope + 1].withUnsafeBytes(BatchTable.sessionIDs)
        case MessageType.batchVerify.rawValue?:
            return frames[envelope + 1].withUnsafeBytes(VerifyTable.sessionIDs)
        default:
            return []
        }
    }

    /// Answers a request with an ERROR without passing it to a worker.
    private func refuse(_ frames: [Message], _ error: ProtocolError) {
        let type = Worker.envelopeLength(frames) < frames.count
            ? frames[Worker.envelopeLength(frames)].withUnsafeBytes { (try? Header.parse($0))?.type.metricLabel } ?? "unknown" : "unknown"
        handler.metrics?.request(type: type, outcome: error.code.name)
        let envelope = Worker.envelopeLength(frames)
        let requestID = frames.count > envelope ? frames[envelope].withUnsafeBytes(Header.bestEffortRequestID) : 0
        let reply = RequestHandler.errorReply(error, requestID: requestID)
        do {
            for frame in frames[..<envelope] { try frontend.send(frame, flags: .more) }
            try frontend.send(multipart: reply.frames.map { (bytes) throws(ZMQError) in try Message(bytes) })
        } catch {
            logger.warning("could not send an error reply: \(error)")
        }
    }

    /// While draining, session requests still waiting get SHUTTING_DOWN.
    private func refuseWaitingRequests() {
        for frames in order.drain() + runnable.map(\.frames) {
            refuse(frames, ProtocolError(.shuttingDown, "the daemon is shutting down"))
        }
        runnable.removeAll()
    }

    /// While draining, requests that arrive get SHUTTING_DOWN instead of silence.
    private func refuseArrivedRequests() {
        while let frames = try? frontend.receiveMultipart(flags: .dontWait) {
            refuse(frames, ProtocolError(.shuttingDown, "the daemon is shutting down"))
        }
    }
}
