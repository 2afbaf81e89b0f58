import Foundation

/// Endpoints no other test uses: inproc names, ipc paths in the temporary directory, and tcp ports the
/// OS just handed out.
public enum TestEndpoint: String, Sendable, CaseIterable {
    case inproc, ipc, tcp

    public func make() -> String {
        switch self {
        case .inproc: return "inproc://test-\(UUID().uuidString)"
        case .ipc: return "ipc://\(NSTemporaryDirectory())logitd-test-\(UUID().uuidString.prefix(8)).sock"
        case .tcp: return "tcp://127.0.0.1:\(freeTCPPort())"
        }
    }
}

/// A port the kernel considers free right now (bind to port 0, read it back, release it).
public func freeTCPPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = bind(fd, $0, length) }
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}
