import Decoding
import Logging
import LogitdProtocol
import ZeroMQ

/// One decoding thread. It announces itself to the broker with READY, then answers each request the
/// broker hands it: [client envelope…, request frames…] in, [client envelope…, reply frames…] out.
/// An empty message from the broker tells it to stop.
struct Worker: Sendable {
    static let ready: [UInt8] = Array("READY".utf8)

    let index: Int
    let context: Context
    let backendEndpoint: String
    /// Where to push token-tap events, or nil when the tap is off.
    let tapEndpoint: String?
    let handler: RequestHandler
    let logger: Logger

    func run() {
        do {
            let socket = try context.socket(.dealer)
            defer { socket.close() }
            try socket.setLinger(.zero)
            try socket.connect(backendEndpoint)
            try socket.send(Self.ready)
            let tap = try tapEndpoint.map { (endpoint) throws(ZMQError) -> Socket in
                let push = try context.socket(.push)
                try push.setLinger(.zero)
                try push.connect(endpoint)
                return push
            }
            defer { tap?.close() }
            let workspace = Workspace()
            while true {
                let frames = try socket.receiveMultipart()
                if frames.count == 1 && frames[0].count == 0 { return }
                try Self.answer(frames, handler: handler, workspace: workspace, logger: logger, to: socket, tap: tap)
            }
        } catch {
            if !error.isContextTerminated {
                logger.critical("worker \(index) stopped: \(error)")
            }
        }
    }

    /// Decodes [client envelope…, request frames…, client identity] and sends [client envelope…,
    /// reply frames…] on `socket`, publishing its steps on `tap`; refused requests are logged. The
    /// broker answers small requests with it too.
    static func answer(_ frames: [Message], handler: RequestHandler, workspace: Workspace, logger: Logger,
                       to socket: Socket, tap: Socket?) throws(ZMQError) {
        let envelope = envelopeLength(frames)
        let identity = frames[frames.count - 1].string
        let start = ContinuousClock.now
        defer { handler.metrics?.busy(.now - start) }
        let reply = Array(frames[envelope..<(frames.count - 1)]).withUnsafeBytes { handler.handle($0, identity: identity, workspace: workspace) }
        if let error = reply.error {
            handler.refusals.record(error, client: hex(frames[0]), requestID: reply.requestID, logger: logger)
        }
        for frame in frames[..<envelope] {
            try socket.send(frame, flags: .more)
        }
        try socket.send(multipart: try reply.frames.map { (bytes) throws(ZMQError) in try Message(bytes) })
        if let tap { publish(reply.frames, to: tap) }
    }

    /// Token tap: for every session step in a reply, [session id (8 bytes), step summary, records].
    /// Never blocks; events the broker cannot take are dropped.
    static func publish(_ frames: [[UInt8]], to tap: Socket) {
        guard let first = frames.first, first.count == Header.size,
              let type = MessageType(rawValue: first[5]), [.stepTokens, .done, .batchTokens].contains(type) else { return }
        for entry in stride(from: 1, to: frames.count - 3, by: 4) where frames[entry].count == StepSummary.size {
            let summary = frames[entry]
            try? tap.send(multipart: [try Message(summary.prefix(8)), try Message(summary), try Message(frames[entry + 1])], flags: .dontWait)
        }
    }

    /// The routing frames in front of the request: the client's id, plus the empty delimiter that
    /// a REQ client puts before its first frame (a DEALER client sends none).
    static func envelopeLength(_ frames: [Message]) -> Int {
        frames.count > 1 && frames[1].count == 0 ? 2 : 1
    }
}

/// A routing id as hex, for logs (libzmq's generated ids are binary).
func hex(_ frame: Message) -> String {
    let digits = Array("0123456789abcdef")
    return frame.withUnsafeBytes { bytes in String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }) }
}
