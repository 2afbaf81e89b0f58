import CZeroMQ

/// One ZeroMQ message frame, backed by a `zmq_msg_t`.
///
/// Receiving into a `Message` copies nothing: `withUnsafeBytes` reads libzmq's own buffer. Sending a
/// `Message` hands its content to libzmq, which leaves the message empty, so a received frame can be
/// forwarded to another socket without a copy.
public final class Message {
    let pointer: UnsafeMutablePointer<zmq_msg_t>

    /// An empty frame.
    public init() {
        pointer = .allocate(capacity: 1)
        zmq_msg_init(pointer)
    }

    /// A frame of `count` uninitialised bytes, to be filled through `withUnsafeMutableBytes`.
    public init(count: Int) throws(ZMQError) {
        pointer = .allocate(capacity: 1)
        guard zmq_msg_init_size(pointer, count) == 0 else {
            let error = ZMQError.last("zmq_msg_init_size")
            pointer.deallocate()
            throw error
        }
    }

    /// A frame holding a copy of `bytes`.
    public convenience init(copying bytes: UnsafeRawBufferPointer) throws(ZMQError) {
        try self.init(count: bytes.count)
        if let base = bytes.baseAddress, bytes.count > 0 {
            zmq_msg_data(pointer).copyMemory(from: base, byteCount: bytes.count)
        }
    }

    /// A frame holding a copy of `bytes`.
    public convenience init(_ bytes: some Sequence<UInt8>) throws(ZMQError) {
        let array = Array(bytes)
        try self.init(count: array.count)
        array.withUnsafeBytes { source in
            if let base = source.baseAddress, source.count > 0 {
                zmq_msg_data(pointer).copyMemory(from: base, byteCount: source.count)
            }
        }
    }

    /// A frame holding the UTF-8 bytes of `string`.
    public convenience init(string: String) throws(ZMQError) {
        try self.init(Array(string.utf8))
    }

    /// A frame that sends `buffer` in place, without copying it. libzmq calls `deallocate` once it is
    /// done with the buffer, possibly later and on one of its I/O threads.
    public init(noCopy buffer: UnsafeMutableRawBufferPointer, deallocate: @escaping @Sendable () -> Void) throws(ZMQError) {
        pointer = .allocate(capacity: 1)
        let box = Unmanaged.passRetained(DeallocatorBox(deallocate))
        let rc = zmq_msg_init_data(pointer, buffer.baseAddress, buffer.count, { _, hint in
            guard let hint else { return }
            let box = Unmanaged<DeallocatorBox>.fromOpaque(hint).takeRetainedValue()
            box.deallocate()
        }, box.toOpaque())
        guard rc == 0 else {
            let error = ZMQError.last("zmq_msg_init_data")
            box.release()
            pointer.deallocate()
            throw error
        }
    }

    /// A frame that owns `buffer` (allocated with `UnsafeMutableRawBufferPointer.allocate`) and frees it
    /// when libzmq no longer needs it: a zero-copy send of a buffer the caller filled.
    public convenience init(owning buffer: UnsafeMutableRawBufferPointer) throws(ZMQError) {
        nonisolated(unsafe) let owned = buffer
        try self.init(noCopy: buffer) { owned.deallocate() }
    }

    deinit {
        zmq_msg_close(pointer)
        pointer.deallocate()
    }

    /// The number of bytes in the frame.
    public var count: Int { zmq_msg_size(pointer) }

    /// Whether more frames of the same multipart message follow this one (valid after a receive).
    public var hasMore: Bool { zmq_msg_more(pointer) == 1 }

    /// Reads the frame's bytes in place.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: zmq_msg_data(pointer), count: count))
    }

    /// Writes the frame's bytes in place (before it is sent).
    public func withUnsafeMutableBytes<R, E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeMutableRawBufferPointer(start: zmq_msg_data(pointer), count: count))
    }

    /// A metadata property of a received frame (libzmq's `zmq_msg_gets`), e.g. "User-Id" (what the
    /// ZAP handler named the peer) or "Peer-Address"; nil when the frame has none.
    public func property(_ name: String) -> String? {
        zmq_msg_gets(pointer, name).map { String(cString: $0) }
    }

    /// A copy of the frame's bytes.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// The frame's bytes decoded as UTF-8 (invalid sequences repaired).
    public var string: String { withUnsafeBytes { String(decoding: $0, as: UTF8.self) } }

    /// A new frame sharing this one's content (reference-counted by libzmq, not copied).
    public func copy() throws(ZMQError) -> Message {
        let other = Message()
        try check("zmq_msg_copy") { zmq_msg_copy(other.pointer, pointer) }
        return other
    }
}

private final class DeallocatorBox {
    let deallocate: @Sendable () -> Void
    init(_ deallocate: @escaping @Sendable () -> Void) { self.deallocate = deallocate }
}

extension Array where Element == Message {
    /// Reads every frame of a multipart message in place at once.
    public func withUnsafeBytes<R, E: Error>(_ body: ([UnsafeRawBufferPointer]) throws(E) -> R) throws(E) -> R {
        // Each frame's data stays put while its Message is alive, and this array keeps them alive.
        let buffers = map { UnsafeRawBufferPointer(start: zmq_msg_data($0.pointer), count: $0.count) }
        defer { withExtendedLifetime(self) {} }
        return try body(buffers)
    }
}
