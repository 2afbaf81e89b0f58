import CZeroMQ
import Foundation

/// A libzmq context: owns the I/O threads and every socket made from it.
///
/// Thread-safe, as libzmq's context is. Sockets are not: create each socket on the thread that uses it.
public final class Context: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    private let lock = NSLock()
    private var isTerminated = false

    public init(ioThreads: Int = 1) throws(ZMQError) {
        guard let handle = zmq_ctx_new() else { throw ZMQError.last("zmq_ctx_new") }
        self.handle = handle
        if ioThreads != 1 {
            try check("zmq_ctx_set(ZMQ_IO_THREADS)") { zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(ioThreads)) }
        }
    }

    public func socket(_ type: SocketType) throws(ZMQError) -> Socket {
        try Socket(context: self, type: type)
    }

    /// Makes every blocking call on this context's sockets return `isContextTerminated`, and every
    /// later one fail the same way, so that threads blocked in receive can wind down and close.
    public func shutdown() {
        _ = zmq_ctx_shutdown(handle)
    }

    /// Waits until every socket made from this context is closed and their lingering messages are
    /// sent (or their linger periods end), then frees the context. Idempotent; `deinit` calls it too.
    /// Call it explicitly where the process is about to exit: that is what flushes the last replies.
    public func terminate() {
        lock.withLock {
            guard !isTerminated else { return }
            isTerminated = true
            while zmq_ctx_term(handle) == -1 && zmq_errno() == czmq_eintr() {}
        }
    }

    deinit {
        terminate()
    }
}

/// The version of the libzmq library linked at run time.
public var libzmqVersion: (major: Int, minor: Int, patch: Int) {
    var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
    zmq_version(&major, &minor, &patch)
    return (Int(major), Int(minor), Int(patch))
}

/// Whether libzmq was built with a capability such as "curve" or "ipc".
public func libzmqHas(_ capability: String) -> Bool {
    zmq_has(capability) == 1
}
