import Decoding
import Foundation
import LogitdClient
import LogitdProtocol
import TestSupport
import Testing
import ZeroMQ

/// Rows whose greedy answer is known: row r has its maximum at `token(r)`.
func rows(count: Int, vocab: Int, seed: Int) -> [Float] {
    var logits = [Float](repeating: 0, count: count * vocab)
    for row in 0..<count {
        for column in 0..<vocab {
            logits[row * vocab + column] = Float((row * 7919 + column * 104_729 + seed) % 1000) / 100
        }
        logits[row * vocab + token(row: row, seed: seed, vocab: vocab)] = 50
    }
    return logits
}

func token(row: Int, seed: Int, vocab: Int) -> Int { (row * 31 + seed * 17) % vocab }

/// The same rows decoded in this process by the Decoding library.
func expectedChoices(_ logits: [Float], vocab: Int, dtype: LogitDType = .float32) throws -> [TokenChoice] {
    try stride(from: 0, to: logits.count, by: vocab).map { start in
        let row = Array(logits[start..<(start + vocab)])
        let bytes = encode(row, dtype)
        return try bytes.withUnsafeBytes { try Greedy.choose(from: LogitRow(bytes: $0, dtype: dtype)) }
    }
}

func encode(_ logits: [Float], _ dtype: LogitDType) -> [UInt8] {
    switch dtype {
    case .float32: logits.withUnsafeBytes { Array($0) }
    case .float16: logits.map(Float16.init).withUnsafeBytes { Array($0) }
    case .bfloat16: logits.map(BFloat16.init).flatMap { [UInt8(truncatingIfNeeded: $0.bitPattern), UInt8($0.bitPattern >> 8)] }
    }
}

@Suite("The logitd binary over real sockets", .serialized)
struct DaemonTests {
    @Test("HELLO tells the protocol, dtypes, strategies, workers and limits", arguments: [TestEndpoint.tcp, .ipc])
    func hello(transport: TestEndpoint) throws {
        let daemon = try DaemonProcess(transport: transport, workers: 3)
        let client = try LogitdClient(endpoint: daemon.endpoint)
        let welcome = try client.hello()
        #expect(welcome.protocolVersion == 1)
        #expect(welcome.dtypes == ["f32", "f16", "bf16"])
        #expect(welcome.strategies == ["greedy", "sample", "beam"])
        #expect(welcome.workers == 3)
        #expect(welcome.limits == ProtocolLimits(maxVocab: 1_048_576, maxRows: 4096, maxMessageBytes: 268_435_456))
        #expect(try client.ping(payload: [1, 2, 3]) == [1, 2, 3])
        #expect(daemon.stop() == 0)
        #expect(daemon.stderr.contains("logitd 0.1.0 serving"))
        #expect(daemon.stderr.contains(daemon.endpoint))
    }

    @Test("DECODE returns exactly what the Decoding library computes in-process", arguments: LogitDType.allCases)
    func decodeMatchesLibrary(dtype: LogitDType) throws {
        let daemon = try DaemonProcess()
        let client = try LogitdClient(endpoint: daemon.endpoint)
        let vocab = 50_000
        let logits = rows(count: 6, vocab: vocab, seed: 3)
        let bytes = encode(logits, dtype)
        let choices = try bytes.withUnsafeBytes { try client.decode(bytes: $0, dtype: dtype, vocab: vocab) }
        #expect(choices == (try expectedChoices(logits, vocab: vocab, dtype: dtype)))
        #expect(choices.map(\.token) == (0..<6).map { token(row: $0, seed: 3, vocab: vocab) })
    }

    @Test("a V = 262,144 row with -inf masks decodes over tcp")
    func largeVocabulary() throws {
        let daemon = try DaemonProcess(transport: .tcp)
        let client = try LogitdClient(endpoint: daemon.endpoint)
        var logits = rows(count: 2, vocab: 262_144, seed: 5)
        for index in stride(from: 0, to: logits.count, by: 3) where logits[index] < 50 { logits[index] = -.infinity }
        let choices = try client.decode(logits, vocab: 262_144)
        #expect(choices == (try expectedChoices(logits, vocab: 262_144)))
    }

    @Test("a REQ socket works too: its empty delimiter frame comes back")
    func requestSocket() throws {
        let daemon = try DaemonProcess()
        let context = try Context()
        let socket = try context.socket(.request)
        try socket.setLinger(.zero)
        try socket.setReceiveTimeout(.seconds(10))
        try socket.connect(daemon.endpoint)
        try socket.send(Header(type: .hello, requestID: 44).encoded)
        let reply = try socket.receiveMultipart()
        #expect(reply.count == 2)
        let header = try reply[0].withUnsafeBytes(Header.parse)
        #expect(header.type == .welcome && header.requestID == 44)
    }

    @Test("32 clients with requests interleaved each get exactly their own tokens")
    func interleavedClients() throws {
        let daemon = try DaemonProcess(workers: 2)
        let failures = Failures()
        let endpoint = daemon.endpoint
        let group = DispatchGroup()
        for clientIndex in 0..<32 {
            group.enter()
            Thread {
                defer { group.leave() }
                do {
                    let client = try LogitdClient(endpoint: endpoint)
                    for request in 0..<20 {
                        let seed = clientIndex * 100 + request
                        let choices = try client.decode(rows(count: 3, vocab: 997, seed: seed), vocab: 997)
                        let tokens = choices.map(\.token)
                        let expected = (0..<3).map { token(row: $0, seed: seed, vocab: 997) }
                        if tokens != expected { failures.add("client \(clientIndex) request \(request): \(tokens) != \(expected)") }
                    }
                } catch {
                    failures.add("client \(clientIndex): \(error)")
                }
            }.start()
        }
        #expect(group.wait(timeout: .now() + 120) == .success)
        #expect(failures.all.isEmpty, "\(failures.all.prefix(5))")
    }

    @Test("unknown config keys stop the daemon at start-up, naming the key")
    func badConfig() throws {
        let path = NSTemporaryDirectory() + "logitd-bad-\(UUID().uuidString).toml"
        try "[server]\nworkerz = 2\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let (status, stderr) = try runDaemonExpectingExit(["serve", "--config", path])
        #expect(status != 0)
        #expect(stderr.contains("unknown key \"server.workerz\""))
        let (flagStatus, flagStderr) = try runDaemonExpectingExit(["serve", "--log-level", "shouty"])
        #expect(flagStatus != 0)
        #expect(flagStderr.contains("--log-level must be one of"))
    }

    @Test("--bind replaces the config file's endpoints; the file's other settings stay")
    func bindOverridesFile() throws {
        let path = NSTemporaryDirectory() + "logitd-\(UUID().uuidString).toml"
        let unused = TestEndpoint.ipc.make()
        try "[server]\nbind = [\"\(unused)\"]\nworkers = 1\n[limits]\nmax_rows = 3\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let daemon = try DaemonProcess(workers: 2, extraArguments: ["--config", path])
        let welcome = try LogitdClient(endpoint: daemon.endpoint).hello()
        #expect(welcome.limits.maxRows == 3)
        #expect(welcome.workers == 2, "--workers overrides the file")
        #expect(!FileManager.default.fileExists(atPath: String(unused.dropFirst(6))))
    }

    @Test("SIGTERM: requests in flight are answered, queued ones refused, none lost; exit 0")
    func gracefulShutdown() throws {
        let daemon = try DaemonProcess(workers: 1)
        let context = try Context()
        let socket = try context.socket(.dealer)
        try socket.setLinger(.zero)
        try socket.setReceiveTimeout(.seconds(20))
        try socket.connect(daemon.endpoint)
        let vocab = 128_256
        let rowCount = 16
        let logits = rows(count: rowCount, vocab: vocab, seed: 1)
        let expected = (0..<rowCount).map { token(row: $0, seed: 1, vocab: vocab) }
        let requests = 20
        for id in 1...requests {
            try socket.send(multipart: [
                try Message(Header(type: .decode, requestID: UInt64(id)).encoded),
                try Message(RowsDescriptor(dtype: .float32, rows: rowCount, vocab: vocab).encoded),
                Message(),
                try logits.withUnsafeBytes { try Message(copying: $0) },
            ])
        }
        kill(daemon.pid, SIGTERM)
        var answered: [UInt64: MessageType] = [:]
        for _ in 1...requests {
            let reply = try socket.receiveMultipart()
            let header = try reply[0].withUnsafeBytes(Header.parse)
            answered[header.requestID] = header.type
            if header.type == .tokens {
                #expect(try reply[1].withUnsafeBytes(TokensBody.parse).map(\.token) == expected)
            } else {
                #expect(try reply[1].withUnsafeBytes(ErrorBody.parse).code == .shuttingDown)
            }
        }
        #expect(answered.count == requests, "every request gets exactly one reply")
        #expect(daemon.stop(within: .seconds(10)) == 0)
        #expect(daemon.stderr.contains("received SIGTERM"))
        #expect(daemon.stderr.contains("stopped"))
    }

    @Test("a client that keeps sending during shutdown gets SHUTTING_DOWN and does not keep the daemon up for the grace period")
    func refusedArrivalsDoNotExtendShutdown() throws {
        let path = NSTemporaryDirectory() + "logitd-grace-\(UUID().uuidString).toml"
        try "[server]\nshutdown_grace_ms = 30000\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let daemon = try DaemonProcess(workers: 1, extraArguments: ["--config", path])
        let context = try Context()
        let socket = try context.socket(.dealer)
        try socket.setLinger(.zero)
        try socket.setReceiveTimeout(.milliseconds(50))
        try socket.connect(daemon.endpoint)
        kill(daemon.pid, SIGTERM)
        var refused = 0
        let start = ContinuousClock.now
        // A PING every few milliseconds: before the fix each refusal restarted a quiet period, so
        // the daemon stayed up for the whole 30-second grace period.
        var id: UInt64 = 0
        while daemon.isRunning && ContinuousClock.now - start < .seconds(20) {
            id += 1
            try? socket.send(multipart: [try Message(Header(type: .ping, requestID: id).encoded)])
            if let reply = try? socket.receiveMultipart(), let header = try? reply[0].withUnsafeBytes(Header.parse), header.type == .error {
                refused += 1
            }
        }
        #expect(daemon.stop(within: .seconds(5)) == 0)
        #expect(ContinuousClock.now - start < .seconds(20), "the daemon stayed up while a client kept sending")
        #expect(refused > 0, "requests sent while stopping get SHUTTING_DOWN")
    }

    @Test("SIGINT stops an idle daemon with status 0")
    func interrupt() throws {
        let daemon = try DaemonProcess()
        #expect(daemon.stop(signal: SIGINT) == 0)
    }
}

/// Messages collected from several threads.
final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []
    func add(_ message: String) { lock.withLock { messages.append(message) } }
    var all: [String] { lock.withLock { messages } }
}
