import Foundation
import LogitdClient
import ZeroMQ
import TestSupport

/// The real `logitd` binary, started on an endpoint of its own and stopped with a signal.
final class DaemonProcess {
    let endpoint: String
    private let process = Process()
    private let stderrFile: URL

    /// LOGITD_BIN, or the `logitd` built beside this test bundle.
    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["LOGITD_BIN"] { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("logitd")
    }

    /// Starts the daemon and waits until it answers HELLO.
    /// `environment` is added to this process's own; `launcher` (a program and its arguments, such
    /// as an emulator) runs the binary when given.
    /// `curve`: the server key and a key pair the start-up probe connects with (a daemon with [security]).
    init(transport: TestEndpoint = .ipc, workers: Int = 2, extraArguments: [String] = [], endpoint: String? = nil,
         environment: [String: String] = [:], launcher: [String] = [], curve: (serverKey: String, keyPair: CurveKeyPair)? = nil) throws {
        self.endpoint = endpoint ?? transport.make()
        stderrFile = FileManager.default.temporaryDirectory.appendingPathComponent("logitd-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        let arguments = ["serve", "--bind", self.endpoint, "--workers", "\(workers)", "--log-level", "info"] + extraArguments
        if let program = launcher.first {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = Array(launcher.dropFirst()) + [Self.binary.path] + arguments
        } else {
            process.executableURL = Self.binary
            process.arguments = arguments
        }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardError = try FileHandle(forWritingTo: stderrFile)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        try waitUntilServing(curve)
    }

    private func waitUntilServing(_ curve: (serverKey: String, keyPair: CurveKeyPair)?) throws {
        let client = try LogitdClient(endpoint: endpoint, timeout: .milliseconds(200), serverKey: curve?.serverKey, keyPair: curve?.keyPair)
        defer { client.close() }
        for _ in 0..<50 {
            if (try? client.hello()) != nil { return }
            guard process.isRunning else { break }
        }
        throw DaemonError.didNotStart(stderr)
    }

    /// Sends `signal` and waits (bounded) for the process to exit; returns its exit status.
    @discardableResult
    func stop(signal: Int32 = SIGTERM, within limit: Duration = .seconds(10)) -> Int32? {
        if process.isRunning { kill(process.processIdentifier, signal) }
        let deadline = ContinuousClock.now + limit
        while process.isRunning && ContinuousClock.now < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationStatus
    }

    var isRunning: Bool { process.isRunning }

    var pid: Int32 { process.processIdentifier }

    var stderr: String { (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? "" }

    deinit {
        stop(signal: SIGKILL, within: .seconds(5))
        try? FileManager.default.removeItem(at: stderrFile)
        if endpoint.hasPrefix("ipc://") { try? FileManager.default.removeItem(atPath: String(endpoint.dropFirst(6))) }
    }
}

enum DaemonError: Error, CustomStringConvertible {
    case didNotStart(String)
    var description: String {
        switch self { case .didNotStart(let log): "logitd did not answer HELLO; its stderr:\n\(log)" }
    }
}

/// Runs the binary to completion (for start-up failures) and returns its status and stderr.
func runDaemonExpectingExit(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stderr: String) {
    let result = try runDaemonToCompletion(arguments, environment: environment)
    return (result.status, result.stderr)
}

/// Runs the binary to completion and returns its status, stdout and stderr.
func runDaemonToCompletion(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = DaemonProcess.binary
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let errors = Pipe(), output = Pipe()
    process.standardError = errors
    process.standardOutput = output
    try process.run()
    let printed = output.fileHandleForReading.readDataToEndOfFile()
    let complaints = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: printed, as: UTF8.self), String(decoding: complaints, as: UTF8.self))
}

