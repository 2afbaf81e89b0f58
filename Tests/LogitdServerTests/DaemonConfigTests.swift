import Foundation
import Logging
import Testing
import LogitdServer

/// The repository root, found from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite("Daemon configuration")
struct DaemonConfigTests {
    @Test("Config/logitd.toml states exactly the built-in defaults")
    func documentedDefaults() throws {
        let path = repositoryRoot.appendingPathComponent("Config/logitd.toml").path
        #expect(try DaemonConfig.load(path: path) == DaemonConfig())
    }

    @Test("values are read from every table")
    func readsValues() throws {
        let config = try DaemonConfig.parse(toml: """
            [server]
            bind = ["ipc:///tmp/a.sock", "tcp://127.0.0.1:7000"]
            workers = 3
            log_level = "debug"
            shutdown_grace_ms = 250
            inline_max_bytes = 0
            [limits]
            max_vocab = 50000
            max_rows = 16
            max_message_bytes = 4096
            [zmq]
            io_threads = 2
            send_high_water_mark = 10
            receive_high_water_mark = 20
            """)
        #expect(config.binds == ["ipc:///tmp/a.sock", "tcp://127.0.0.1:7000"])
        #expect(config.workers == 3 && config.resolvedWorkers == 3)
        #expect(config.logLevel == .debug)
        #expect(config.shutdownGrace == .milliseconds(250))
        #expect(config.inlineMaxBytes == 0)
        #expect(config.limits.maxVocab == 50000 && config.limits.maxRows == 16 && config.limits.maxMessageBytes == 4096)
        #expect(config.ioThreads == 2 && config.sendHighWaterMark == 10 && config.receiveHighWaterMark == 20)
    }

    @Test("0 workers means one per core")
    func workersPerCore() {
        #expect(DaemonConfig().resolvedWorkers == ProcessInfo.processInfo.activeProcessorCount)
    }

    /// (TOML, words the error must contain)
    static let rejected: [(String, String)] = [
        ("[server]\nbindd = [\"tcp://127.0.0.1:1\"]", "unknown key \"server.bindd\""),
        ("[servr]\nworkers = 1", "unknown table \"servr\""),
        ("workers = 1", "unknown key \"workers\""),
        ("server = 1", "\"server\" must be a table"),
        ("[server]\nworkers = \"two\"", "server.workers must be an integer"),
        ("[server]\nworkers = -1", "server.workers is -1"),
        ("[server]\nlog_level = \"loud\"", "server.log_level must be one of"),
        ("[server]\nbind = \"tcp://127.0.0.1:1\"", "server.bind must be an array of strings"),
        ("[server]\nbind = []", "at least one endpoint"),
        ("[server]\nbind = [\"http://x\"]", "\"http://x\" is not a tcp://"),
        ("[limits]\nmax_rows = 0", "limits.max_rows is 0"),
        ("[limits]\nmax_vocab = 1.5", "limits.max_vocab must be an integer"),
        ("[zmq]\nio_threads = 0", "zmq.io_threads is 0"),
        ("[server\nworkers = 1", "invalid TOML at line 1"),
    ]

    @Test("unknown keys and bad values are refused, naming the key", arguments: rejected)
    func rejects(toml: String, mentions: String) {
        let error = #expect(throws: ConfigError.self) { try DaemonConfig.parse(toml: toml) }
        #expect(error?.message.contains(mentions) == true, "\(error?.message ?? "no error")")
    }

    @Test("a missing file is refused with its path")
    func missingFile() {
        let error = #expect(throws: ConfigError.self) { try DaemonConfig.load(path: "/nonexistent/logitd.toml") }
        #expect(error?.message.contains("/nonexistent/logitd.toml") == true)
    }
}
