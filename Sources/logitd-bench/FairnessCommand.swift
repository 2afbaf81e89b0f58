import ArgumentParser
import Decoding
import Foundation
import LogitdClient
import LogitdProtocol
import ZeroMQ

/// `logitd-bench fairness`: whether a client that floods the daemon starves another. Client B sends
/// one small DECODE at a time (one row) and times each reply; first alone, then while client A keeps
/// `inFlight` large DECODEs (`rows` rows each) outstanding on its own connection. The daemon takes
/// requests from its connections in turn (libzmq's fair queueing on the ROUTER, one request per
/// ready worker), so B waits behind at most the A requests already taken.
struct FairnessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fairness", abstract: "A small client's latency alone and beside a flooding one.")

    @Option(help: "Vocabulary size of every row.")
    var vocab = 32_000

    @Option(help: "Rows in each of the flooding client's requests.")
    var rows = 64

    @Option(help: "Requests the flooding client keeps in flight.")
    var inFlight = 16

    @Option(help: "Timed requests of the small client per measurement.")
    var samples = 400

    @Option(help: "Daemon worker threads.")
    var workers = 1

    func run() throws {
        // Inline answers off, so that every request goes through the workers, as large ones do.
        let daemon = try BenchDaemon(workers: workers, config: "[server]\ninline_max_bytes = 0\n")
        defer { daemon.stop() }
        let small = try daemon.client(timeout: .seconds(60))
        defer { small.close() }
        let endpoint = daemon.endpoint
        let row = (0..<vocab).map { Float(($0 * 7919) % 1000) / 100 }

        func latencies() throws -> [Double] {
            try (0..<samples).map { _ in
                let start = ContinuousClock.now
                _ = try small.decode(row, vocab: vocab)
                let elapsed = ContinuousClock.now - start
                return Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12
            }
        }
        func p(_ values: [Double], _ quantile: Double) -> Double { values.sorted()[min(values.count - 1, Int(Double(values.count) * quantile))] }

        _ = try latencies()                     // warm-up: the daemon's first requests pay for page faults
        let alone = try latencies()
        let flood = Flood(endpoint: endpoint, vocab: vocab, rows: rows, inFlight: inFlight)
        let thread = Thread { flood.run() }
        thread.start()
        while flood.answered < inFlight { usleep(1000) }
        let beside = try latencies()
        flood.stop()
        while !flood.finished { usleep(1000) }
        print("fairness: V = \(vocab); client A keeps \(inFlight) DECODEs of \(rows) rows in flight; client B sends one row at a time; \(workers) worker(s); kernels: \(Kernels.active)")
        print(String(format: "B alone:   p50 %8.0f µs   p99 %8.0f µs", p(alone, 0.5), p(alone, 0.99)))
        print(String(format: "B beside A: p50 %8.0f µs   p99 %8.0f µs   (A answered %d requests meanwhile)", p(beside, 0.5), p(beside, 0.99), flood.answered))
        print(String(format: "p99 beside A ÷ p99 alone: %.2f (target ≤ 3)", p(beside, 0.99) / p(alone, 0.99)))
    }
}

/// The flooding client: `inFlight` DECODEs outstanding on one DEALER, another sent per reply.
final class Flood: @unchecked Sendable {
    let endpoint: String, vocab: Int, rows: Int, inFlight: Int
    private let lock = NSLock()
    private var stopping = false
    private var count = 0
    private var done = false

    init(endpoint: String, vocab: Int, rows: Int, inFlight: Int) {
        self.endpoint = endpoint
        self.vocab = vocab
        self.rows = rows
        self.inFlight = inFlight
    }

    var answered: Int { lock.withLock { count } }
    var finished: Bool { lock.withLock { done } }
    func stop() { lock.withLock { stopping = true } }

    func run() {
        defer { lock.withLock { done = true } }
        guard let context = try? Context(), let socket = try? context.socket(.dealer) else { return }
        defer { socket.close() }
        try? socket.setLinger(.zero)
        try? socket.setReceiveTimeout(.seconds(30))
        guard (try? socket.connect(endpoint)) != nil else { return }
        let payload = (0..<(rows * vocab)).map { Float($0 % 977) / 97 }.withUnsafeBytes { Array($0) }
        let descriptor = RowsDescriptor(dtype: .float32, rows: rows, vocab: vocab).encoded
        var id: UInt64 = 0
        func send() -> Bool {
            id += 1
            guard let frames = try? [Message(Header(type: .decode, requestID: id).encoded), Message(descriptor), Message(), Message(payload)] else { return false }
            return (try? socket.send(multipart: frames)) != nil
        }
        for _ in 0..<inFlight where !send() { return }
        var outstanding = inFlight
        while outstanding > 0 {
            guard (try? socket.receiveMultipart()) != nil else { return }
            outstanding -= 1
            let keepGoing = lock.withLock { () -> Bool in
                count += 1
                return !stopping
            }
            if keepGoing && send() { outstanding += 1 }
        }
    }
}
