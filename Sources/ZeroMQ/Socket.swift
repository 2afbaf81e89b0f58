import CZeroMQ

/// Flags for a single send or receive.
public struct TransferFlags: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// Fail with `isTimeout` instead of blocking.
    public static let dontWait = TransferFlags(rawValue: ZMQ_DONTWAIT)
    /// More frames of the same message follow (send only).
    public static let more = TransferFlags(rawValue: ZMQ_SNDMORE)
}

/// A ZeroMQ socket. Not thread-safe: create, use and close it on one thread.
public final class Socket {
    let handle: UnsafeMutableRawPointer
    public let type: SocketType
    // Keeps the context alive until every socket made from it is closed.
    private let context: Context
    private var isClosed = false

    init(context: Context, type: SocketType) throws(ZMQError) {
        guard let handle = zmq_socket(context.handle, type.rawValue) else {
            throw ZMQError.last("zmq_socket")
        }
        self.handle = handle
        self.type = type
        self.context = context
    }

    deinit { close() }

    /// Closes the socket; pending outgoing messages are kept for at most the linger period.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        zmq_close(handle)
    }

    public func bind(_ endpoint: String) throws(ZMQError) {
        try check("zmq_bind(\(endpoint))") { zmq_bind(handle, endpoint) }
    }

    public func unbind(_ endpoint: String) throws(ZMQError) {
        try check("zmq_unbind(\(endpoint))") { zmq_unbind(handle, endpoint) }
    }

    public func connect(_ endpoint: String) throws(ZMQError) {
        try check("zmq_connect(\(endpoint))") { zmq_connect(handle, endpoint) }
    }

    public func disconnect(_ endpoint: String) throws(ZMQError) {
        try check("zmq_disconnect(\(endpoint))") { zmq_disconnect(handle, endpoint) }
    }

    // MARK: Sending

    /// Sends one frame. libzmq takes the message's content, leaving `message` empty.
    public func send(_ message: Message, flags: TransferFlags = []) throws(ZMQError) {
        try check("zmq_msg_send") { zmq_msg_send(message.pointer, handle, flags.rawValue) }
    }

    /// Sends one frame holding a copy of `bytes`.
    public func send(bytes: UnsafeRawBufferPointer, flags: TransferFlags = []) throws(ZMQError) {
        try check("zmq_send") { zmq_send(handle, bytes.baseAddress, bytes.count, flags.rawValue) }
    }

    /// Sends one frame holding a copy of `bytes`.
    public func send(_ bytes: [UInt8], flags: TransferFlags = []) throws(ZMQError) {
        try check("zmq_send") { bytes.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags.rawValue) } }
    }

    /// Sends one frame holding the UTF-8 bytes of `string`.
    public func send(string: String, flags: TransferFlags = []) throws(ZMQError) {
        try send(Array(string.utf8), flags: flags)
    }

    /// Sends the frames as one multipart message.
    public func send(multipart frames: [Message], flags: TransferFlags = []) throws(ZMQError) {
        for (index, frame) in frames.enumerated() {
            let last = index == frames.count - 1
            try send(frame, flags: last ? flags : flags.union(.more))
        }
    }

    // MARK: Receiving

    /// Receives one frame. Throws an error with `isTimeout` when the receive timeout passes or,
    /// with `.dontWait`, when nothing is queued.
    public func receive(flags: TransferFlags = []) throws(ZMQError) -> Message {
        let message = Message()
        try check("zmq_msg_recv") { zmq_msg_recv(message.pointer, handle, flags.rawValue) }
        return message
    }

    /// Receives every frame of the next message. Once the first frame has arrived, the rest are
    /// already queued (libzmq delivers messages atomically), so only the first can time out.
    public func receiveMultipart(flags: TransferFlags = []) throws(ZMQError) -> [Message] {
        var frames = [try receive(flags: flags)]
        while frames[frames.count - 1].hasMore {
            frames.append(try receive())
        }
        return frames
    }
}
