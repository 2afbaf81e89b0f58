import Foundation
import Logging
import ZeroMQ

/// The daemon's ZAP handler (ZeroMQ RFC 27, "ZMQ Authentication Protocol"): libzmq asks it, on
/// `inproc://zeromq.zap.01`, whether each CURVE handshake may proceed. It admits the authorized
/// public keys, naming the client by its key (the frames' "User-Id", which sessions are owned by),
/// and refuses the rest — logged at most once a second per key, with a count.
final class ZAPHandler: @unchecked Sendable {
    static let endpoint = "inproc://zeromq.zap.01"
    static let domain = "logitd"

    private let socket: Socket
    private let authorized: Set<String>
    private let logger: Logger
    private let metrics: DaemonMetrics?
    private let lock = NSLock()
    private var refusedCount = 0
    private var lastLogged: [String: ContinuousClock.Instant] = [:]

    /// Binds the handler; call before the server socket binds, so no handshake goes unchecked.
    init(context: Context, authorized: Set<String>, logger: Logger, metrics: DaemonMetrics? = nil) throws(ZMQError) {
        self.metrics = metrics
        socket = try context.socket(.reply)
        try socket.setLinger(.zero)
        try socket.bind(Self.endpoint)
        self.authorized = authorized
        self.logger = logger
    }

    /// Handshakes refused so far.
    var refused: Int { lock.withLock { refusedCount } }

    /// Answers handshakes until the context is shut down.
    func run() {
        while true {
            let request: [Message]
            do { request = try socket.receiveMultipart() } catch { return }
            // version, request id, domain, address, identity, mechanism, credentials…
            guard request.count >= 6 else { continue }
            let version = request[0].bytes, requestID = request[1].bytes
            let address = request[3].string, mechanism = request[5].string
            var key: String?
            if mechanism == "CURVE", request.count >= 7 { key = CurveKeyPair.z85(request[6].bytes) }
            let admitted = version == Array("1.0".utf8) && key.map(authorized.contains) == true
            if !admitted { noteRefusal(key: key ?? mechanism, address: address) }
            let reply: [[UInt8]] = [version, requestID, Array((admitted ? "200" : "400").utf8),
                                    Array((admitted ? "OK" : "client key not authorized").utf8), Array((admitted ? key! : "").utf8), []]
            try? socket.send(multipart: reply.map { (bytes) throws(ZMQError) in try Message(bytes) })
        }
    }

    private func noteRefusal(key: String, address: String) {
        metrics?.handshakeRefused()
        let now = ContinuousClock.now
        let (count, log) = lock.withLock { () -> (Int, Bool) in
            refusedCount += 1
            let log = lastLogged[key].map { now - $0 >= .seconds(1) } ?? true
            if log { lastLogged[key] = now }
            if lastLogged.count > 10_000 { lastLogged.removeAll() }
            return (refusedCount, log)
        }
        if log {
            logger.warning("refused a CURVE handshake", metadata: ["client_key": "\(key)", "address": "\(address)", "refused_total": "\(count)"])
        }
    }

    func close() { socket.close() }
}
