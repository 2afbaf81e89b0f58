import CZeroMQ

extension Socket {
    // MARK: Raw option access

    func setOption(_ name: Int32, int value: Int32) throws(ZMQError) {
        var value = value
        try check("zmq_setsockopt(\(name))") { zmq_setsockopt(handle, name, &value, MemoryLayout<Int32>.size) }
    }

    func setOption(_ name: Int32, int64 value: Int64) throws(ZMQError) {
        var value = value
        try check("zmq_setsockopt(\(name))") { zmq_setsockopt(handle, name, &value, MemoryLayout<Int64>.size) }
    }

    func setOption(_ name: Int32, bytes: [UInt8]) throws(ZMQError) {
        try check("zmq_setsockopt(\(name))") {
            bytes.withUnsafeBytes { zmq_setsockopt(handle, name, $0.baseAddress, $0.count) }
        }
    }

    func intOption(_ name: Int32) throws(ZMQError) -> Int32 {
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        try check("zmq_getsockopt(\(name))") { zmq_getsockopt(handle, name, &value, &size) }
        return value
    }

    func int64Option(_ name: Int32) throws(ZMQError) -> Int64 {
        var value: Int64 = 0
        var size = MemoryLayout<Int64>.size
        try check("zmq_getsockopt(\(name))") { zmq_getsockopt(handle, name, &value, &size) }
        return value
    }

    func bytesOption(_ name: Int32, capacity: Int = 256) throws(ZMQError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: capacity)
        var size = capacity
        try check("zmq_getsockopt(\(name))") { zmq_getsockopt(handle, name, &buffer, &size) }
        return Array(buffer.prefix(size))
    }

    /// Milliseconds as libzmq wants them: -1 for "forever".
    private static func milliseconds(_ duration: Duration?) -> Int32 {
        guard let duration else { return -1 }
        let (seconds, attoseconds) = duration.components
        return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }

    private static func duration(_ milliseconds: Int32) -> Duration? {
        milliseconds < 0 ? nil : .milliseconds(milliseconds)
    }

    // MARK: Options a daemon needs

    /// How long unsent messages are kept after close; nil keeps them forever (libzmq's default).
    public func setLinger(_ linger: Duration?) throws(ZMQError) { try setOption(ZMQ_LINGER, int: Self.milliseconds(linger)) }
    public func linger() throws(ZMQError) -> Duration? { Self.duration(try intOption(ZMQ_LINGER)) }

    /// The most messages queued for sending per peer before send blocks or drops (0: no limit).
    public func setSendHighWaterMark(_ messages: Int) throws(ZMQError) { try setOption(ZMQ_SNDHWM, int: Int32(clamping: messages)) }
    public func sendHighWaterMark() throws(ZMQError) -> Int { Int(try intOption(ZMQ_SNDHWM)) }

    /// The most messages queued on receipt per peer (0: no limit).
    public func setReceiveHighWaterMark(_ messages: Int) throws(ZMQError) { try setOption(ZMQ_RCVHWM, int: Int32(clamping: messages)) }
    public func receiveHighWaterMark() throws(ZMQError) -> Int { Int(try intOption(ZMQ_RCVHWM)) }

    /// How long a send may block before it fails with `isTimeout`; nil blocks forever.
    public func setSendTimeout(_ timeout: Duration?) throws(ZMQError) { try setOption(ZMQ_SNDTIMEO, int: Self.milliseconds(timeout)) }
    public func sendTimeout() throws(ZMQError) -> Duration? { Self.duration(try intOption(ZMQ_SNDTIMEO)) }

    /// How long a receive may block before it fails with `isTimeout`; nil blocks forever.
    public func setReceiveTimeout(_ timeout: Duration?) throws(ZMQError) { try setOption(ZMQ_RCVTIMEO, int: Self.milliseconds(timeout)) }
    public func receiveTimeout() throws(ZMQError) -> Duration? { Self.duration(try intOption(ZMQ_RCVTIMEO)) }

    /// The largest single frame a peer may send; a peer that sends a larger one is disconnected. nil: no limit.
    public func setMaxMessageSize(_ bytes: Int?) throws(ZMQError) { try setOption(ZMQ_MAXMSGSIZE, int64: Int64(bytes ?? -1)) }
    public func maxMessageSize() throws(ZMQError) -> Int? { let value = try int64Option(ZMQ_MAXMSGSIZE); return value < 0 ? nil : Int(value) }

    /// The identity this socket presents to a ROUTER peer (set before connect).
    public func setRoutingID(_ id: [UInt8]) throws(ZMQError) { try setOption(ZMQ_ROUTING_ID, bytes: id) }
    public func routingID() throws(ZMQError) -> [UInt8] { try bytesOption(ZMQ_ROUTING_ID) }

    /// ROUTER only: fail with `isHostUnreachable` instead of silently dropping a message to an unknown peer.
    public func setRouterMandatory(_ on: Bool) throws(ZMQError) { try setOption(ZMQ_ROUTER_MANDATORY, int: on ? 1 : 0) }

    /// Queue messages only for completed connections.
    public func setImmediate(_ on: Bool) throws(ZMQError) { try setOption(ZMQ_IMMEDIATE, int: on ? 1 : 0) }
    public func immediate() throws(ZMQError) -> Bool { try intOption(ZMQ_IMMEDIATE) == 1 }

    /// TCP keepalive: nil leaves the OS default; otherwise on/off with optional idle time and interval.
    public func setTCPKeepalive(_ on: Bool, idle: Duration? = nil, interval: Duration? = nil) throws(ZMQError) {
        try setOption(ZMQ_TCP_KEEPALIVE, int: on ? 1 : 0)
        if let idle { try setOption(ZMQ_TCP_KEEPALIVE_IDLE, int: Int32(idle.components.seconds)) }
        if let interval { try setOption(ZMQ_TCP_KEEPALIVE_INTVL, int: Int32(interval.components.seconds)) }
    }
    public func tcpKeepalive() throws(ZMQError) -> Bool { try intOption(ZMQ_TCP_KEEPALIVE) == 1 }

    /// SUB only: receive messages starting with `prefix` (empty: everything).
    public func subscribe(_ prefix: [UInt8] = []) throws(ZMQError) { try setOption(ZMQ_SUBSCRIBE, bytes: prefix) }
    public func unsubscribe(_ prefix: [UInt8] = []) throws(ZMQError) { try setOption(ZMQ_UNSUBSCRIBE, bytes: prefix) }

    /// The endpoint last bound, with a wildcard port resolved (`tcp://127.0.0.1:*` → the real port).
    public func lastEndpoint() throws(ZMQError) -> String {
        let bytes = try bytesOption(ZMQ_LAST_ENDPOINT)
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    // MARK: CURVE security

    /// Makes this socket a CURVE server holding `secretKey` (Z85); clients must know its public key.
    public func makeCurveServer(secretKey: String) throws(ZMQError) {
        try setOption(ZMQ_CURVE_SERVER, int: 1)
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: Array(secretKey.utf8) + [0])
    }

    /// The ZAP domain of this (server) socket's handshakes: with a ZAP handler bound at
    /// `inproc://zeromq.zap.01`, every handshake is authenticated by it (ZeroMQ RFC 27).
    public func setZAPDomain(_ domain: String) throws(ZMQError) { try setOption(ZMQ_ZAP_DOMAIN, bytes: Array(domain.utf8)) }

    /// Makes this socket a CURVE client of the server whose public key is `serverKey` (all keys Z85).
    public func makeCurveClient(serverKey: String, keyPair: CurveKeyPair) throws(ZMQError) {
        try setOption(ZMQ_CURVE_SERVERKEY, bytes: Array(serverKey.utf8) + [0])
        try setOption(ZMQ_CURVE_PUBLICKEY, bytes: Array(keyPair.publicKey.utf8) + [0])
        try setOption(ZMQ_CURVE_SECRETKEY, bytes: Array(keyPair.secretKey.utf8) + [0])
    }
}

/// A CURVE key pair, each key 40 characters of Z85.
public struct CurveKeyPair: Sendable, Equatable {
    public let publicKey: String
    public let secretKey: String

    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// The public key of a Z85 secret key, or nil when `secretKey` is not a 40-character Z85 key.
    public static func publicKey(ofSecret secretKey: String) -> String? {
        guard secretKey.utf8.count == 40 else { return nil }
        var publicKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicKey, secretKey) == 0 else { return nil }
        return String(decoding: publicKey.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// 32 key bytes as Z85 text (40 characters).
    public static func z85(_ key: [UInt8]) -> String? {
        guard key.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: 41)
        guard zmq_z85_encode(&text, key, 32) != nil else { return nil }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether `text` is a 40-character Z85 key.
    public static func isKey(_ text: String) -> Bool {
        guard text.utf8.count == 40 else { return false }
        var bytes = [UInt8](repeating: 0, count: 32)
        return zmq_z85_decode(&bytes, text) != nil
    }

    /// A fresh key pair (needs a libzmq built with CURVE, see `libzmqHas("curve")`).
    public static func generate() throws(ZMQError) -> CurveKeyPair {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        try check("zmq_curve_keypair") { zmq_curve_keypair(&publicKey, &secretKey) }
        func string(_ chars: [CChar]) -> String {
            String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return CurveKeyPair(publicKey: string(publicKey), secretKey: string(secretKey))
    }
}
