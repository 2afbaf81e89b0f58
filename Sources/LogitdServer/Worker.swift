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
    let handler: RequestHandler
    let logger: Logger

    func run() {
        do {
            let socket = try context.socket(.dealer)
            defer { socket.close() }
            try socket.setLinger(.zero)
            try socket.connect(backendEndpoint)
            try socket.send(Self.ready)
            let workspace = Workspace()
            while true {
                let frames = try socket.receiveMultipart()
                if frames.count == 1 && frames[0].count == 0 { return }
                let envelope = Self.envelopeLength(frames)
                let reply = Array(frames[envelope...]).withUnsafeBytes { handler.handle($0, workspace: workspace) }
                if let error = reply.error {
                    logger.warning("refused request", metadata: [
                        "client": "\(hex(frames[0]))", "request": "\(reply.requestID)", "error": "\(error)",
                    ])
                }
                for frame in frames[..<envelope] {
                    try socket.send(frame, flags: .more)
                }
                try socket.send(multipart: try reply.frames.map { (bytes) throws(ZMQError) in try Message(bytes) })
            }
        } catch {
            if !error.isContextTerminated {
                logger.critical("worker \(index) stopped: \(error)")
            }
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
