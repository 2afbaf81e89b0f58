import Foundation
import TestSupport
import Testing
import ZeroMQ

@Suite("ZeroMQ sockets over real endpoints")
struct SocketTests {
    let context: Context

    init() throws {
        context = try Context()
    }

    /// A bound socket and a connected one, receiving with a timeout so no test can hang.
    func pair(_ serverType: SocketType, _ clientType: SocketType, on transport: TestEndpoint) throws -> (Socket, Socket) {
        let endpoint = transport.make()
        let server = try context.socket(serverType)
        let client = try context.socket(clientType)
        for socket in [server, client] {
            try socket.setLinger(.zero)
            try socket.setReceiveTimeout(.seconds(5))
        }
        try server.bind(endpoint)
        try client.connect(endpoint)
        return (server, client)
    }

    @Test("every socket type can be created", arguments: SocketType.allCases)
    func create(type: SocketType) throws {
        let socket = try context.socket(type)
        #expect(socket.type == type)
        socket.close()
    }

    @Test("REQ/REP round trip", arguments: [TestEndpoint.inproc, .ipc, .tcp])
    func requestReply(transport: TestEndpoint) throws {
        let (reply, request) = try pair(.reply, .request, on: transport)
        try request.send(string: "ping")
        #expect(try reply.receive().string == "ping")
        try reply.send(string: "pong")
        #expect(try request.receive().string == "pong")
    }

    @Test("ROUTER routes each reply to the DEALER that asked", arguments: [TestEndpoint.inproc, .ipc, .tcp])
    func routerDealer(transport: TestEndpoint) throws {
        let endpoint = transport.make()
        let router = try context.socket(.router)
        try router.setLinger(.zero)
        try router.setReceiveTimeout(.seconds(5))
        try router.bind(endpoint)
        var dealers: [Socket] = []
        for name in ["alpha", "beta", "gamma"] {
            let dealer = try context.socket(.dealer)
            try dealer.setLinger(.zero)
            try dealer.setReceiveTimeout(.seconds(5))
            try dealer.setRoutingID(Array(name.utf8))
            #expect(try dealer.routingID() == Array(name.utf8))
            try dealer.connect(endpoint)
            try dealer.send(multipart: [try Message(string: "from"), try Message(string: name)])
            dealers.append(dealer)
        }
        var seen: Set<String> = []
        for _ in dealers {
            let frames = try router.receiveMultipart()
            #expect(frames.count == 3)
            #expect(frames[0].string == frames[2].string)
            seen.insert(frames[0].string)
            try router.send(multipart: [try Message(string: frames[0].string), try Message(string: "to \(frames[2].string)")])
        }
        #expect(seen == ["alpha", "beta", "gamma"])
        for (dealer, name) in zip(dealers, ["alpha", "beta", "gamma"]) {
            #expect(try dealer.receive().string == "to \(name)")
        }
    }

    @Test("PUB/SUB delivers only subscribed prefixes", arguments: [TestEndpoint.inproc, .ipc, .tcp])
    func publishSubscribe(transport: TestEndpoint) throws {
        let (publisher, subscriber) = try pair(.publisher, .subscriber, on: transport)
        try subscriber.subscribe(Array("tokens.".utf8))
        try subscriber.setReceiveTimeout(.milliseconds(20))
        // A subscription reaches the publisher asynchronously: publish until the first one arrives.
        var first: Message?
        for _ in 0..<250 where first == nil {
            try publisher.send(string: "other.x")
            try publisher.send(string: "tokens.1")
            first = try? subscriber.receive()
        }
        #expect(first?.string == "tokens.1")
        try subscriber.setReceiveTimeout(.milliseconds(200))
        while let next = try? subscriber.receive() {
            #expect(next.string.hasPrefix("tokens."))
        }
        try subscriber.unsubscribe(Array("tokens.".utf8))
    }

    @Test("PUSH/PULL and PAIR carry messages in order", arguments: [TestEndpoint.inproc, .ipc, .tcp])
    func pushPullAndPair(transport: TestEndpoint) throws {
        let (pull, push) = try pair(.pull, .push, on: transport)
        for index in 0..<10 { try push.send(string: "\(index)") }
        for index in 0..<10 { #expect(try pull.receive().string == "\(index)") }
        let (left, right) = try pair(.pair, .pair, on: transport)
        try right.send(string: "left?")
        #expect(try left.receive().string == "left?")
        try left.send(string: "right!")
        #expect(try right.receive().string == "right!")
    }

    @Test("multipart messages keep their frames, empty ones included")
    func multipart() throws {
        let (pull, push) = try pair(.pull, .push, on: .inproc)
        let sent: [[UInt8]] = [[1, 2, 3], [], Array(repeating: 7, count: 100_000), [9]]
        try push.send(multipart: try sent.map { try Message($0) })
        let received = try pull.receiveMultipart()
        #expect(received.map(\.bytes) == sent)
        #expect(received.map(\.hasMore) == [true, true, true, false])
    }

    @Test("a receive timeout surfaces as isTimeout, and dontWait never blocks")
    func receiveTimeout() throws {
        let (pull, _) = try pair(.pull, .push, on: .inproc)
        try pull.setReceiveTimeout(.milliseconds(30))
        #expect(try pull.receiveTimeout() == .milliseconds(30))
        let error = #expect(throws: ZMQError.self) { try pull.receive() }
        #expect(error?.isTimeout == true)
        let immediate = #expect(throws: ZMQError.self) { try pull.receive(flags: .dontWait) }
        #expect(immediate?.isTimeout == true)
    }

    @Test("options read back what was set")
    func optionsRoundTrip() throws {
        let socket = try context.socket(.dealer)
        try socket.setLinger(.milliseconds(250))
        #expect(try socket.linger() == .milliseconds(250))
        try socket.setLinger(nil)
        #expect(try socket.linger() == nil)
        try socket.setSendHighWaterMark(17)
        #expect(try socket.sendHighWaterMark() == 17)
        try socket.setReceiveHighWaterMark(19)
        #expect(try socket.receiveHighWaterMark() == 19)
        try socket.setSendTimeout(.milliseconds(40))
        #expect(try socket.sendTimeout() == .milliseconds(40))
        try socket.setReceiveTimeout(nil)
        #expect(try socket.receiveTimeout() == nil)
        try socket.setMaxMessageSize(4096)
        #expect(try socket.maxMessageSize() == 4096)
        try socket.setMaxMessageSize(nil)
        #expect(try socket.maxMessageSize() == nil)
        try socket.setImmediate(true)
        #expect(try socket.immediate())
        try socket.setTCPKeepalive(true, idle: .seconds(30), interval: .seconds(5))
        #expect(try socket.tcpKeepalive())
        socket.close()
    }

    @Test("a wildcard tcp bind reports the port it got, and unbind frees the endpoint")
    func bindUnbind() throws {
        let socket = try context.socket(.router)
        try socket.setLinger(.zero)
        try socket.bind("tcp://127.0.0.1:*")
        let endpoint = try socket.lastEndpoint()
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:"))
        #expect(!endpoint.hasSuffix(":*"))
        try socket.unbind(endpoint)
        let other = try context.socket(.router)
        try other.setLinger(.zero)
        // libzmq's I/O thread closes the listener after unbind returns: allow it a moment.
        var rebound = false
        for _ in 0..<200 where !rebound {
            do { try other.bind(endpoint); rebound = true } catch { Thread.sleep(forTimeInterval: 0.01) }
        }
        #expect(rebound)
        let client = try context.socket(.dealer)
        try client.setLinger(.zero)
        try client.connect(endpoint)
        try client.disconnect(endpoint)
        let missing = #expect(throws: ZMQError.self) { try client.disconnect(endpoint) }
        #expect(missing?.operation.contains("zmq_disconnect") == true)
    }

    @Test("errors carry errno, libzmq's message and the call")
    func errorsAreDescriptive() throws {
        let socket = try context.socket(.router)
        let error = #expect(throws: ZMQError.self) { try socket.bind("bogus://nowhere") }
        #expect(error?.operation == "zmq_bind(bogus://nowhere)")
        #expect(error?.message == String(cString: strerror(EPROTONOSUPPORT)))
        #expect(error?.code == EPROTONOSUPPORT)
        let taken = try context.socket(.router)
        try taken.setLinger(.zero)
        try taken.bind("tcp://127.0.0.1:*")
        let inUse = #expect(throws: ZMQError.self) { try socket.bind(try taken.lastEndpoint()) }
        #expect(inUse?.code == EADDRINUSE)
    }

    @Test("router-mandatory turns a send to an unknown peer into an error")
    func routerMandatory() throws {
        let router = try context.socket(.router)
        try router.setLinger(.zero)
        try router.setRouterMandatory(true)
        try router.bind(TestEndpoint.inproc.make())
        let error = #expect(throws: ZMQError.self) {
            try router.send(Array("nobody".utf8), flags: .more)
        }
        #expect(error?.isHostUnreachable == true)
    }

    @Test("a peer sending a frame over the max message size is cut off")
    func maxMessageSize() throws {
        let endpoint = TestEndpoint.tcp.make()
        let pull = try context.socket(.pull)
        try pull.setLinger(.zero)
        try pull.setMaxMessageSize(1024)
        try pull.setReceiveTimeout(.milliseconds(500))
        try pull.bind(endpoint)
        let push = try context.socket(.push)
        try push.setLinger(.zero)
        try push.connect(endpoint)
        try push.send([UInt8](repeating: 1, count: 100))
        #expect(try pull.receive().count == 100)
        try push.send([UInt8](repeating: 2, count: 2048))
        let error = #expect(throws: ZMQError.self) { try pull.receive() }
        #expect(error?.isTimeout == true)
    }

    @Test("a zero-copy frame is sent in place and freed by libzmq afterwards")
    func zeroCopySend() throws {
        let (pull, push) = try pair(.pull, .push, on: .ipc)
        let freed = FreedFlag()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 64)
        for index in 0..<buffer.count { buffer[index] = UInt8(truncatingIfNeeded: index) }
        nonisolated(unsafe) let owned = buffer
        let message = try Message(noCopy: buffer) {
            owned.deallocate()
            freed.set()
        }
        try push.send(message)
        #expect(message.count == 0, "sending hands the content to libzmq")
        let received = try pull.receive()
        #expect(received.count == 64 * 1024)
        #expect(received.withUnsafeBytes { $0[1000] } == UInt8(truncatingIfNeeded: 1000))
        #expect(freed.wait(upTo: .seconds(5)))
    }

    @Test("copy() shares a frame's content; an owned buffer is freed with the last copy")
    func messageCopy() throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 16)
        buffer.initializeMemory(as: UInt8.self, repeating: 42)
        let original = try Message(owning: buffer)
        let copy = try original.copy()
        #expect(copy.count == 256)
        #expect(copy.withUnsafeBytes { $0.baseAddress } == original.withUnsafeBytes { $0.baseAddress })
        #expect(copy.bytes == [UInt8](repeating: 42, count: 256))
    }

    @Test("the poller reports only the sockets that are ready")
    func poller() throws {
        let (pullA, pushA) = try pair(.pull, .push, on: .inproc)
        let (pullB, _) = try pair(.pull, .push, on: .inproc)
        let poller = Poller()
        let a = poller.register(pullA)
        let b = poller.register(pullB)
        #expect(try poller.poll(timeout: .zero) == 0)
        try pushA.send(string: "ready")
        #expect(try poller.poll(timeout: .seconds(5)) == 1)
        #expect(poller.events(at: a).contains(.readable))
        #expect(poller.events(at: b).isEmpty)
        poller.setEvents([], at: a)
        #expect(try poller.poll(timeout: .milliseconds(10)) == 0)
        #expect(try pullA.receive().string == "ready")
    }

    @Test("shutting the context down unblocks a thread blocked in receive")
    func shutdownUnblocks() throws {
        let context = try Context()
        let outcome = Outcome()
        let endpoint = TestEndpoint.inproc.make()
        let started = DispatchSemaphore(value: 0)
        let thread = Thread {
            do {
                let socket = try context.socket(.pull)
                defer { socket.close() }
                try socket.bind(endpoint)
                started.signal()
                _ = try socket.receive()
                outcome.record("received")
            } catch let error as ZMQError {
                outcome.record(error.isContextTerminated ? "terminated" : "\(error)")
            } catch {
                outcome.record("\(error)")
            }
        }
        thread.start()
        started.wait()
        Thread.sleep(forTimeInterval: 0.05)
        context.shutdown()
        #expect(outcome.wait(upTo: .seconds(5)) == "terminated")
    }

    @Test("CURVE: an encrypted exchange with the right server key, nothing with a wrong one")
    func curve() throws {
        try #require(libzmqHas("curve"), "libzmq was built without CURVE")
        let serverKeys = try CurveKeyPair.generate()
        #expect(serverKeys.publicKey.count == 40 && serverKeys.secretKey.count == 40)
        let endpoint = TestEndpoint.tcp.make()
        let server = try context.socket(.reply)
        try server.setLinger(.zero)
        try server.setReceiveTimeout(.seconds(5))
        try server.makeCurveServer(secretKey: serverKeys.secretKey)
        try server.bind(endpoint)

        let client = try context.socket(.request)
        try client.setLinger(.zero)
        try client.setReceiveTimeout(.seconds(5))
        try client.makeCurveClient(serverKey: serverKeys.publicKey, keyPair: try CurveKeyPair.generate())
        try client.connect(endpoint)
        try client.send(string: "secret")
        #expect(try server.receive().string == "secret")
        try server.send(string: "ok")
        #expect(try client.receive().string == "ok")

        let impostor = try context.socket(.request)
        try impostor.setLinger(.zero)
        try impostor.makeCurveClient(serverKey: try CurveKeyPair.generate().publicKey, keyPair: try CurveKeyPair.generate())
        try impostor.connect(endpoint)
        try impostor.send(string: "let me in")
        try server.setReceiveTimeout(.milliseconds(300))
        let refused = #expect(throws: ZMQError.self) { try server.receive() }
        #expect(refused?.isTimeout == true)
    }

    @Test("libzmq is version 4")
    func version() {
        #expect(libzmqVersion.major == 4)
    }
}

/// A flag set from another thread, waited on with a bound.
final class FreedFlag: @unchecked Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    func set() { semaphore.signal() }
    func wait(upTo duration: Duration) -> Bool {
        semaphore.wait(timeout: .now() + .milliseconds(Int(duration.components.seconds * 1000))) == .success
    }
}

/// A string result produced by another thread.
final class Outcome: @unchecked Sendable {
    private let lock = NSLock()
    private let done = DispatchSemaphore(value: 0)
    private var value: String?
    func record(_ result: String) {
        lock.withLock { value = result }
        done.signal()
    }
    func wait(upTo duration: Duration) -> String? {
        guard done.wait(timeout: .now() + .milliseconds(Int(duration.components.seconds * 1000))) == .success else { return nil }
        return lock.withLock { value }
    }
}
