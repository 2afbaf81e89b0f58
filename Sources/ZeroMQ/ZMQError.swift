import CZeroMQ

/// A libzmq failure: the errno it reported, libzmq's own message for it, and the call that failed.
public struct ZMQError: Error, CustomStringConvertible, Equatable, Sendable {
    public let code: Int32
    public let message: String
    public let operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.message = String(cString: zmq_strerror(code))
        self.operation = operation
    }

    /// The error libzmq just reported through errno for `operation`.
    static func last(_ operation: String) -> ZMQError {
        ZMQError(code: zmq_errno(), operation: operation)
    }

    /// A send or receive timed out (or would block with `.dontWait`).
    public var isTimeout: Bool { code == czmq_eagain() }
    /// The context was shut down while the call was blocked: the socket should be closed.
    public var isContextTerminated: Bool { code == czmq_eterm() }
    /// A signal interrupted the call; retrying is safe.
    public var isInterrupted: Bool { code == czmq_eintr() }
    /// A ROUTER with `routerMandatory` could not route to the given peer.
    public var isHostUnreachable: Bool { code == czmq_ehostunreach() }

    public var description: String { "\(operation): \(message) (errno \(code))" }
}

/// Runs a libzmq call that returns -1 on failure, retrying when a signal interrupts it.
@discardableResult
func check(_ operation: @autoclosure () -> String, _ call: () -> Int32) throws(ZMQError) -> Int32 {
    while true {
        let rc = call()
        if rc != -1 { return rc }
        let error = ZMQError.last(operation())
        if !error.isInterrupted { throw error }
    }
}
