import Decoding
import Foundation
import LogitdProtocol
import ZeroMQ

/// Model processes, simulated: `clients` threads, each with its own DEALER socket and `window`
/// frames in flight (one per session, since a session's steps run one at a time), sending the same
/// prebuilt logits again and again (zero-copy: each send shares one ZeroMQ message).
struct LoadGenerator {
    let context: Context
    let endpoint: String
    let benchCase: E2ECase
    /// The daemon needs real sessions; the echo takes the same frames with made-up ids.
    let openSessions: Bool

    func run(for seconds: Double) throws -> E2EStats {
        let collector = Collector()
        let group = DispatchGroup()
        for client in 0..<benchCase.clients {
            group.enter()
            let job = ClientJob(context: context, endpoint: endpoint, benchCase: benchCase, openSessions: openSessions, client: client, seconds: seconds)
            Thread {
                defer { group.leave() }
                collector.add(Result { try job.run() })
            }.start()
        }
        group.wait()
        return try collector.total(seconds: seconds)
    }
}

private final class Collector: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result<E2EStats, Error>] = []

    func add(_ result: Result<E2EStats, Error>) { lock.withLock { results.append(result) } }

    func total(seconds: Double) throws -> E2EStats {
        var total = E2EStats()
        for result in lock.withLock({ results }) { total.merge(try result.get()) }
        total.seconds = seconds
        return total
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
}

private struct ClientJob: Sendable {
    let context: Context
    let endpoint: String
    let benchCase: E2ECase
    let openSessions: Bool
    let client: Int
    let seconds: Double

    /// One slot of the window: its sessions (several for a batch) and their step index.
    struct Slot {
        var sessions: [UInt64]
        var step = 0
    }

    func run() throws -> E2EStats {
        let socket = try context.socket(.dealer)
        defer { socket.close() }
        try socket.setLinger(.zero)
        try socket.setReceiveTimeout(.seconds(30))
        try socket.setSendHighWaterMark(0)
        try socket.setReceiveHighWaterMark(0)
        try socket.connect(endpoint)
        var requestID: UInt64 = UInt64(client) << 40

        func exchange(_ type: MessageType, _ body: [UInt8]) throws -> [Message] {
            requestID += 1
            try socket.send(multipart: [try Message(Header(type: type, requestID: requestID).encoded), try Message(body)])
            return try socket.receiveMultipart()
        }

        let sessionsPerSlot: Int
        if case .batch(let rows) = benchCase.kind { sessionsPerSlot = rows } else { sessionsPerSlot = 1 }
        var slots: [Slot] = []
        for slot in 0..<benchCase.window {
            var ids: [UInt64] = []
            for index in 0..<sessionsPerSlot {
                if openSessions {
                    let reply = try exchange(.open, Array(openParameters.utf8))
                    guard reply.count == 2, let opened = try? reply[1].withUnsafeBytes(OpenedReply.parse) else {
                        throw BenchError(description: "OPEN failed: \(reply.last?.string ?? "")")
                    }
                    ids.append(opened.session)
                } else {
                    ids.append(UInt64(client) << 32 | UInt64(slot) << 16 | UInt64(index))
                }
            }
            slots.append(Slot(sessions: ids))
        }

        let running = try payload(rows: benchCase.rowsPerFrame)
        let first = benchCase.kind == .beam4 ? try payload(rows: 1) : running
        var stats = E2EStats()
        var inFlight: [UInt64: (slot: Int, sent: ContinuousClock.Instant, rows: Int)] = [:]
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int(seconds * 1000))
        // The first round trip of every slot warms connections and sessions up; it is not counted.
        var warm = Set<Int>()

        func send(_ index: Int) throws {
            requestID += 1
            let slot = slots[index]
            let rows = slot.step == 0 && benchCase.kind == .beam4 ? 1 : benchCase.rowsPerFrame
            let logits = try (slot.step == 0 ? first : running).copy()
            let frames: [Message]
            switch benchCase.kind {
            case .batch:
                let entries = slot.sessions.map { BatchTable.Entry(session: $0, step: slot.step, rows: 1) }
                frames = [try Message(Header(type: .batchStep, requestID: requestID).encoded),
                          try Message(BatchTable.encode(dtype: benchCase.dtype, vocab: benchCase.vocab, entries: entries)), logits]
            case .sparse(let candidates):
                let descriptor = StepDescriptor(session: slot.sessions[0], step: slot.step, dtype: .float32, rows: 1, vocab: candidates, sparse: true)
                frames = [try Message(Header(type: .step, requestID: requestID).encoded), try Message(descriptor.encoded), logits]
            default:
                let descriptor = StepDescriptor(session: slot.sessions[0], step: slot.step, dtype: benchCase.dtype, rows: rows, vocab: benchCase.vocab)
                frames = [try Message(Header(type: .step, requestID: requestID).encoded), try Message(descriptor.encoded), logits]
            }
            inFlight[requestID] = (index, .now, rows)
            try socket.send(multipart: frames)
        }

        for index in slots.indices { try send(index) }
        while !inFlight.isEmpty {
            let reply = try socket.receiveMultipart()
            let header = try reply[0].withUnsafeBytes(Header.parse)
            guard let sent = inFlight.removeValue(forKey: header.requestID) else { continue }
            if header.type == .error {
                throw BenchError(description: "\(benchCase.name): the daemon refused a step: \((try? reply[1].withUnsafeBytes(ErrorBody.parse))?.description ?? "?")")
            }
            let now = ContinuousClock.now
            if warm.contains(sent.slot) && now <= deadline {
                stats.frames += 1
                stats.rows += sent.rows
                let elapsed = now - sent.sent
                stats.latencies.append(Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12)
            }
            warm.insert(sent.slot)
            slots[sent.slot].step += 1
            if now < deadline { try send(sent.slot) }
        }
        if openSessions {
            for slot in slots {
                for session in slot.sessions {
                    _ = try exchange(.close, withUnsafeBytes(of: session.littleEndian) { Array($0) })
                }
            }
        }
        return stats
    }

    private var openParameters: String {
        switch benchCase.kind {
        case .chain:
            "{\"vocab_size\":\(benchCase.vocab),\"max_new_tokens\":1000000000,\"strategy\":\"sample\",\"seed\":1,\"temperature\":0.8,\"top_k\":40,\"top_p\":0.95,\"min_p\":0.05}"
        case .beam4:
            "{\"vocab_size\":\(benchCase.vocab),\"max_new_tokens\":1000000000,\"strategy\":\"beam\",\"beam_width\":4}"
        default:
            "{\"vocab_size\":\(benchCase.vocab),\"max_new_tokens\":1000000000}"
        }
    }

    /// One frame's logits: pseudo-random normal(0, 3)-like rows in the case's dtype, or sparse pairs.
    private func payload(rows: Int) throws -> Message {
        var state: UInt64 = 0x1234_5678_9ABC_DEF0 ^ UInt64(client)
        func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            // The sum of three uniforms: bell-shaped, σ ≈ 3 after scaling.
            let scale = 1 / Float(0x1F_FFFF)
            let sum = Float(state & 0x1F_FFFF) + Float((state >> 21) & 0x1F_FFFF) + Float((state >> 42) & 0x1F_FFFF)
            return (sum * scale - 1.5) * 6
        }
        var bytes: [UInt8] = []
        if case .sparse(let candidates) = benchCase.kind {
            for index in 0..<candidates {
                withUnsafeBytes(of: UInt32(index * (benchCase.vocab / candidates)).littleEndian) { bytes += $0 }
                withUnsafeBytes(of: next().bitPattern.littleEndian) { bytes += $0 }
            }
            return try Message(bytes)
        }
        let values = (0..<(rows * benchCase.vocab)).map { _ in next() }
        switch benchCase.dtype {
        case .float32: bytes = values.withUnsafeBytes { Array($0) }
        case .float16: bytes = values.map(Float16.init).withUnsafeBytes { Array($0) }
        case .bfloat16: bytes = values.map(BFloat16.init).flatMap { [UInt8(truncatingIfNeeded: $0.bitPattern), UInt8($0.bitPattern >> 8)] }
        }
        return try Message(bytes)
    }
}

/// A child process of the benchmark (the daemon, the echo), with its CPU time and memory.
final class ChildProcess {
    let process = Process()

    init(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    /// User + system CPU seconds so far (/proc/PID/stat).
    func cpuSeconds() -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return .nan }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command name: state is field 3, utime 14 and stime 15 (1-based, whole line).
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return .nan }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    func residentMB() -> Double { statusField("VmRSS:") }
    func peakResidentMB() -> Double { statusField("VmHWM:") }

    private func statusField(_ name: String) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name) }),
              let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) else { return .nan }
        return kilobytes / 1024
    }
}
