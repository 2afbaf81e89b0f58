import ArgumentParser
import Decoding
import Foundation
import LogitdProtocol
import ZeroMQ

/// `logitd-bench e2e`: the real daemon against a raw libzmq echo, driven by the same load
/// generator with the same frames in one run, so the ratio shows what the daemon costs beyond the
/// transport.
struct E2ECommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "e2e", abstract: "The daemon beside a raw ZeroMQ echo, frames per second and latency.")

    @Flag(help: "One JSON object per case instead of a table.")
    var json = false

    @Flag(help: "A representative subset that finishes well within two minutes.")
    var quick = false

    @Option(help: "Daemon worker threads (this machine class has 2 cores; the load generator takes one).")
    var workers = 1

    @Option(help: "Seconds measured per case and target.")
    var seconds: Double?

    @Option(help: "Only cases whose name contains this text.")
    var filter: String?

    func run() throws {
        let duration = seconds ?? (quick ? 0.9 : 1.5)
        let cases = (quick ? E2ECase.quick : E2ECase.full).filter { filter == nil || $0.name.contains(filter!) }
        let directory = NSTemporaryDirectory() + "logitd-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let context = try Context()
        let endpoints = [
            "ipc": (daemon: "ipc://\(directory)/daemon.sock", echo: "ipc://\(directory)/echo.sock"),
            "tcp": (daemon: try freeTCPEndpoint(context), echo: try freeTCPEndpoint(context)),
        ]
        let executable = URL(fileURLWithPath: CommandLine.arguments[0])
        let daemonBinary = executable.deletingLastPathComponent().appendingPathComponent("logitd").path
        let echo = try ChildProcess(executable.path, ["echo-server", "--bind", endpoints["ipc"]!.echo, "--bind", endpoints["tcp"]!.echo])
        let daemon = try ChildProcess(daemonBinary, ["serve", "--bind", endpoints["ipc"]!.daemon, "--bind", endpoints["tcp"]!.daemon,
                                                     "--workers", "\(workers)", "--log-level", "warning"])
        defer {
            daemon.stop()
            echo.stop()
        }
        // The daemon inherits this environment, so it runs the same variant as this process.
        let kernels = try Kernels.checkEnvironment()
        if !json {
            print("daemon: \(workers) worker(s); \(ProcessInfo.processInfo.activeProcessorCount) cores; kernels: \(kernels); \(duration) s per measurement")
            print("case                                frames/s   echo f/s  ratio    rows/s   p50 us   p99 us  echo p50  cpu us/f  rss MB")
        }
        for (index, benchCase) in cases.enumerated() {
            FileHandle.standardError.write("\r[\(index + 1)/\(cases.count)] \(benchCase.name)\u{1B}[K".data(using: .utf8)!)
            let pair = endpoints[benchCase.transport]!
            // Echo and daemon alternate, three rounds each; the median round of each is reported,
            // so a burst of noise on this shared machine hits both sides or neither.
            var echoRounds: [E2EStats] = []
            var daemonRounds: [E2EStats] = []
            var cpuPerFrame: [Double] = []
            for _ in 0..<3 {
                echoRounds.append(try LoadGenerator(context: context, endpoint: pair.echo, benchCase: benchCase, openSessions: false).run(for: duration / 3))
                let cpuBefore = daemon.cpuSeconds()
                let round = try LoadGenerator(context: context, endpoint: pair.daemon, benchCase: benchCase, openSessions: true).run(for: duration / 3)
                cpuPerFrame.append((daemon.cpuSeconds() - cpuBefore) / Double(max(round.frames, 1)))
                daemonRounds.append(round)
            }
            func median(_ rounds: [E2EStats]) -> E2EStats { rounds.sorted { $0.framesPerSecond < $1.framesPerSecond }[1] }
            let echoStats = median(echoRounds)
            let stats = median(daemonRounds)
            let cpu = cpuPerFrame.sorted()[1]
            let result = E2EResult(benchCase: benchCase, kernels: kernels, stats: stats, echo: echoStats, cpuPerFrame: cpu, rssMB: daemon.residentMB(), peakMB: daemon.peakResidentMB())
            print(json ? result.json : result.line)
        }
        FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8)!)
    }

    /// A tcp endpoint that is free right now: libzmq picks the port of a wildcard bind.
    private func freeTCPEndpoint(_ context: Context) throws -> String {
        let probe = try context.socket(.router)
        defer { probe.close() }
        try probe.bind("tcp://127.0.0.1:*")
        return try probe.lastEndpoint()
    }
}

/// One end-to-end configuration.
struct E2ECase: Sendable {
    enum Kind: Sendable, Equatable {
        case greedy, chain, beam4
        /// BATCH STEP of this many sessions, one row each.
        case batch(Int)
        /// Sparse rows of this many (token, logit) candidates.
        case sparse(Int)
    }

    var kind: Kind
    var vocab: Int
    var dtype: LogitDType
    var transport: String
    var clients: Int
    /// Frames in flight per client.
    var window = 4

    var name: String {
        let strategy = switch kind {
        case .greedy: "greedy"
        case .chain: "chain"
        case .beam4: "beam4"
        case .batch(let rows): "batch\(rows)"
        case .sparse(let candidates): "sparse\(candidates)"
        }
        return "\(strategy)-\(dtype.name)-\(vocab)-\(transport)-c\(clients)"
    }

    /// Rows in one frame once the session is running (a beam search starts from one row).
    var rowsPerFrame: Int {
        switch kind {
        case .greedy, .chain, .sparse: 1
        case .beam4: 4
        case .batch(let rows): rows
        }
    }

    static let full: [E2ECase] = {
        var cases: [E2ECase] = []
        for kind in [Kind.greedy, .chain, .beam4] {
            for vocab in [32_000, 128_256, 262_144] {
                for dtype in [LogitDType.float32, .bfloat16] {
                    for transport in ["ipc", "tcp"] {
                        for clients in [1, 4, 16] {
                            cases.append(E2ECase(kind: kind, vocab: vocab, dtype: dtype, transport: transport, clients: clients))
                        }
                    }
                }
            }
        }
        for rows in [8, 64] {
            for transport in ["ipc", "tcp"] {
                cases.append(E2ECase(kind: .batch(rows), vocab: 32_000, dtype: .float32, transport: transport, clients: 1))
            }
        }
        for transport in ["ipc", "tcp"] {
            cases.append(E2ECase(kind: .sparse(1000), vocab: 128_256, dtype: .float32, transport: transport, clients: 1))
        }
        return cases
    }()

    static let quick: [E2ECase] = [
        E2ECase(kind: .greedy, vocab: 128_256, dtype: .float32, transport: "ipc", clients: 4),
        E2ECase(kind: .greedy, vocab: 128_256, dtype: .float32, transport: "ipc", clients: 1),
        E2ECase(kind: .greedy, vocab: 128_256, dtype: .bfloat16, transport: "ipc", clients: 4),
        E2ECase(kind: .greedy, vocab: 32_000, dtype: .float32, transport: "tcp", clients: 4),
        E2ECase(kind: .chain, vocab: 128_256, dtype: .float32, transport: "ipc", clients: 4),
        E2ECase(kind: .beam4, vocab: 128_256, dtype: .float32, transport: "ipc", clients: 4),
        E2ECase(kind: .greedy, vocab: 262_144, dtype: .float32, transport: "ipc", clients: 16),
        E2ECase(kind: .batch(8), vocab: 32_000, dtype: .float32, transport: "ipc", clients: 1),
        E2ECase(kind: .batch(64), vocab: 32_000, dtype: .float32, transport: "ipc", clients: 1),
        E2ECase(kind: .sparse(1000), vocab: 128_256, dtype: .float32, transport: "ipc", clients: 1),
    ]
}

struct E2EStats {
    var frames = 0
    var rows = 0
    var seconds = 0.0
    var latencies: [Double] = []

    var framesPerSecond: Double { Double(frames) / seconds }
    var rowsPerSecond: Double { Double(rows) / seconds }

    func percentile(_ p: Double) -> Double {
        guard !latencies.isEmpty else { return .nan }
        let sorted = latencies.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    mutating func merge(_ other: E2EStats) {
        frames += other.frames
        rows += other.rows
        latencies += other.latencies
    }
}

struct E2EResult {
    let benchCase: E2ECase
    let kernels: KernelVariant
    let stats: E2EStats
    let echo: E2EStats
    let cpuPerFrame: Double
    let rssMB: Double
    let peakMB: Double

    var ratio: Double { stats.framesPerSecond / echo.framesPerSecond }

    var json: String {
        func number(_ value: Double) -> String { value.isFinite ? String(format: "%.3f", value) : "null" }
        return "{\"case\":\"\(benchCase.name)\",\"kernels\":\"\(kernels)\",\"frames_per_s\":\(number(stats.framesPerSecond)),\"echo_frames_per_s\":\(number(echo.framesPerSecond)),"
            + "\"ratio\":\(number(ratio)),\"rows_per_s\":\(number(stats.rowsPerSecond)),\"echo_rows_per_s\":\(number(echo.rowsPerSecond)),"
            + "\"p50_us\":\(number(stats.percentile(0.5))),\"p99_us\":\(number(stats.percentile(0.99))),"
            + "\"echo_p50_us\":\(number(echo.percentile(0.5))),\"echo_p99_us\":\(number(echo.percentile(0.99))),"
            + "\"cpu_us_per_frame\":\(number(cpuPerFrame * 1e6)),\"rss_mb\":\(number(rssMB)),\"peak_rss_mb\":\(number(peakMB)),"
            + "\"frame_bytes\":\(benchCase.frameBytes)}"
    }

    var line: String {
        let name = benchCase.name.padding(toLength: 34, withPad: " ", startingAt: 0)
        return name + String(format: " %9.0f  %9.0f  %5.2f  %8.0f  %7.0f  %7.0f  %8.0f  %8.1f  %6.1f",
                             stats.framesPerSecond, echo.framesPerSecond, ratio, stats.rowsPerSecond,
                             stats.percentile(0.5), stats.percentile(0.99), echo.percentile(0.5), cpuPerFrame * 1e6, rssMB)
    }
}

extension E2ECase {
    /// Bytes of logits in one frame once running.
    var frameBytes: Int {
        if case .sparse(let candidates) = kind { return candidates * 8 }
        return rowsPerFrame * vocab * dtype.byteWidth
    }
}
