import Foundation
import LogitdClient

/// The daemon a benchmark runs against: the `logitd` beside this binary, on an ipc endpoint in a
/// fresh directory, with an optional config text; removed again by `stop`.
final class BenchDaemon {
    let endpoint: String
    private let directory: String
    private let process: ChildProcess

    init(workers: Int, config: String? = nil) throws {
        directory = NSTemporaryDirectory() + "logitd-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        endpoint = "ipc://\(directory)/daemon.sock"
        var arguments = ["serve", "--bind", endpoint, "--workers", "\(workers)", "--log-level", "warning"]
        if let config {
            try config.write(toFile: directory + "/logitd.toml", atomically: true, encoding: .utf8)
            arguments += ["--config", directory + "/logitd.toml"]
        }
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("logitd").path
        process = try ChildProcess(binary, arguments)
    }

    /// A client, once the daemon answers HELLO.
    func client(timeout: Duration) throws -> LogitdClient {
        let client = try LogitdClient(endpoint: endpoint, timeout: timeout)
        for _ in 0..<100 where (try? client.hello()) == nil { usleep(20_000) }
        return client
    }

    func stop() {
        process.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
