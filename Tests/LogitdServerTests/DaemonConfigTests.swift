import Foundation
import Logging
import Testing
import ZeroMQ
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

    @Test("[security]: keys read relative to the config file; both needed; bad keys named; no keys means loopback only")
    func security() throws {
        let directory = NSTemporaryDirectory() + "logitd-security-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory + "/clients", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try CurveKeyPair.generate(), client = try CurveKeyPair.generate()
        try "# comment\n\(server.secretKey)\n".write(toFile: directory + "/server.key", atomically: true, encoding: .utf8)
        try "\(client.publicKey)\n".write(toFile: directory + "/clients/a.pub", atomically: true, encoding: .utf8)
        try "not a key\n".write(toFile: directory + "/bad.key", atomically: true, encoding: .utf8)
        let path = directory + "/logitd.toml"
        func load(_ toml: String) throws(ConfigError) -> DaemonConfig {
            try? toml.write(toFile: path, atomically: true, encoding: .utf8)
            return try DaemonConfig.load(path: path)
        }
        let config = try load("[server]\nbind = [\"tcp://0.0.0.0:5555\"]\n[security]\nsecret_key_file = \"server.key\"\nauthorized_keys = \"clients\"\n")
        #expect(config.security?.authorizedKeys == [client.publicKey] && config.security?.publicKey == server.publicKey)
        let cases: [(String, String)] = [
            ("[security]\nsecret_key_file = \"server.key\"\n", "needs both secret_key_file and authorized_keys"),
            ("[security]\nsecret_key_file = \"bad.key\"\nauthorized_keys = \"clients\"\n", "is not a 40-character Z85 CURVE key"),
            ("[security]\nsecret_key_file = \"missing.key\"\nauthorized_keys = \"clients\"\n", "cannot read key file"),
            ("[server]\nbind = [\"tcp://10.1.2.3:5555\"]\n", "reachable from other hosts"),
            ("[security]\nallow_insecure = 1\n", "security.allow_insecure must be true or false"),
        ]
        for (toml, message) in cases {
            let error = #expect(throws: ConfigError.self) { try load(toml) }
            #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
        }
        #expect(try load("[server]\nbind = [\"tcp://10.1.2.3:5555\"]\n[security]\nallow_insecure = true\n").allowInsecure)
        #expect(try load("[server]\nbind = [\"tcp://127.0.0.1:1\", \"tcp://localhost:2\", \"tcp://[::1]:3\", \"ipc:///tmp/x\"]\n").security == nil)
    }
}
