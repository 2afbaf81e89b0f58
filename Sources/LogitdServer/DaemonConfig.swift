import Foundation
import LogitdProtocol
import Logging
import TOMLKit

/// Everything the daemon can be configured with. The defaults here are the documented defaults of
/// `Config/logitd.toml`; a test keeps the two equal.
public struct DaemonConfig: Equatable, Sendable {
    /// Endpoints the client-facing ROUTER binds (tcp:// or ipc://).
    public var binds: [String] = ["tcp://127.0.0.1:5555"]
    /// Decoding worker threads; 0 means one per CPU core.
    public var workers: Int = 0
    /// Where every chosen token is published (a ZeroMQ PUB socket), or nil for no token tap.
    public var tokenTap: String?
    public var logLevel: Logger.Level = .info
    /// Requests of at most this many bytes (a sparse row, a small vocabulary, OPEN, CLOSE) are
    /// answered by the broker thread itself, saving the hand-offs to a worker and back; 0: none.
    public var inlineMaxBytes: Int = 16384
    /// How long requests in flight may take to finish after SIGINT/SIGTERM.
    public var shutdownGrace: Duration = .milliseconds(5000)
    public var limits = ProtocolLimits(maxVocab: 1_048_576, maxRows: 4096, maxMessageBytes: 268_435_456)
    /// libzmq I/O threads.
    public var ioThreads: Int = 1
    /// Messages queued per client before ZeroMQ pushes back.
    public var sendHighWaterMark: Int = 1000
    public var receiveHighWaterMark: Int = 1000
    /// Sessions idle longer than this are dropped.
    public var sessionTTL: Duration = .milliseconds(600_000)
    /// Most sessions open at once.
    public var maxSessions: Int = 10_000
    /// Most sessions one identity (a CURVE key) holds at once; 0: only `maxSessions` applies.
    public var maxSessionsPerIdentity: Int = 0
    /// CURVE keys (`[security]`); nil: no encryption, every client one identity.
    public var security: SecurityConfig?
    /// Allows binding a non-loopback tcp endpoint without CURVE.
    public var allowInsecure = false
    /// Where Prometheus metrics are served over HTTP (`[metrics] bind`, "host:port"); nil: off.
    public var metricsAddress: String?
    public var metricsBind: (host: String, port: Int)? { metricsAddress.flatMap(Self.hostAndPort) }

    /// "host:port" (an IPv6 host in brackets) split, or nil.
    static func hostAndPort(_ address: String) -> (host: String, port: Int)? {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    public init() {}

    /// The worker count after resolving 0 to the number of cores.
    public var resolvedWorkers: Int {
        workers > 0 ? workers : max(1, ProcessInfo.processInfo.activeProcessorCount)
    }
}

/// A configuration file or flag the daemon refuses to start with; the message names the key.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension DaemonConfig {
    /// Reads a TOML configuration file over the defaults.
    public static func load(path: String) throws(ConfigError) -> DaemonConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError("cannot read config file \(path): \(error.localizedDescription)")
        }
        return try parse(toml: text, source: path)
    }

    /// Parses TOML over the defaults. Unknown tables or keys and values of the wrong type or range are
    /// refused, naming the key, so a typo never silently falls back to a default.
    public static func parse(toml: String, source: String = "config") throws(ConfigError) -> DaemonConfig {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: toml)
        } catch let error as TOMLParseError {
            throw ConfigError("\(source): invalid TOML at line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)")
        } catch {
            throw ConfigError("\(source): invalid TOML: \(error)")
        }
        var config = DaemonConfig()
        let reader = TableReader(source: source)
        // Key paths are relative to the config file.
        let directory = (source as NSString).deletingLastPathComponent
        func path(_ value: any TOMLValueConvertible, _ key: String) throws(ConfigError) -> String {
            guard let text = value.string, !text.isEmpty else { throw ConfigError("\(source): \(key) must be a path") }
            return text.hasPrefix("/") || directory.isEmpty ? text : (directory as NSString).appendingPathComponent(text)
        }
        var secretKey: String?
        var authorizedKeys: Set<String>?
        try reader.forEachSection(of: table) { (section, key, value) throws(ConfigError) in
            switch (section, key) {
            case ("server", "bind"): config.binds = try reader.strings(value, "server.bind")
            case ("server", "workers"): config.workers = try reader.integer(value, "server.workers", in: 0...1024)
            case ("server", "token_tap"):
                guard let endpoint = value.string else { throw ConfigError("\(source): server.token_tap must be a string") }
                config.tokenTap = endpoint.isEmpty ? nil : endpoint
            case ("server", "log_level"): config.logLevel = try reader.logLevel(value, "server.log_level")
            case ("server", "inline_max_bytes"):
                config.inlineMaxBytes = try reader.integer(value, "server.inline_max_bytes", in: 0...16_777_216)
            case ("server", "shutdown_grace_ms"):
                config.shutdownGrace = .milliseconds(try reader.integer(value, "server.shutdown_grace_ms", in: 0...3_600_000))
            case ("limits", "max_vocab"): config.limits.maxVocab = try reader.integer(value, "limits.max_vocab", in: 1...16_777_216)
            case ("limits", "max_rows"): config.limits.maxRows = try reader.integer(value, "limits.max_rows", in: 1...1_048_576)
            case ("limits", "max_message_bytes"):
                config.limits.maxMessageBytes = try reader.integer(value, "limits.max_message_bytes", in: 1024...(1 << 34))
            case ("sessions", "ttl_ms"):
                config.sessionTTL = .milliseconds(try reader.integer(value, "sessions.ttl_ms", in: 1...86_400_000))
            case ("sessions", "max_sessions"): config.maxSessions = try reader.integer(value, "sessions.max_sessions", in: 1...10_000_000)
            case ("sessions", "max_per_identity"):
                config.maxSessionsPerIdentity = try reader.integer(value, "sessions.max_per_identity", in: 0...10_000_000)
            case ("security", "secret_key_file"):
                let file = try path(value, "security.secret_key_file")
                let keys = try SecurityConfig.keys(inFile: file)
                guard keys.count == 1 else { throw ConfigError("\(file): a secret key file holds exactly one key") }
                secretKey = keys[0]
            case ("security", "authorized_keys"): authorizedKeys = try SecurityConfig.authorizedKeys(at: try path(value, "security.authorized_keys"))
            case ("security", "allow_insecure"):
                guard let flag = value.bool else { throw ConfigError("\(source): security.allow_insecure must be true or false") }
                config.allowInsecure = flag
            case ("metrics", "bind"):
                guard let address = value.string, hostAndPort(address) != nil else {
                    throw ConfigError("\(source): metrics.bind must be \"host:port\", e.g. \"127.0.0.1:9464\"")
                }
                config.metricsAddress = address
            case ("zmq", "io_threads"): config.ioThreads = try reader.integer(value, "zmq.io_threads", in: 1...64)
            case ("zmq", "send_high_water_mark"):
                config.sendHighWaterMark = try reader.integer(value, "zmq.send_high_water_mark", in: 0...10_000_000)
            case ("zmq", "receive_high_water_mark"):
                config.receiveHighWaterMark = try reader.integer(value, "zmq.receive_high_water_mark", in: 0...10_000_000)
            default:
                throw ConfigError("\(source): unknown key \"\(section).\(key)\"")
            }
        }
        switch (secretKey, authorizedKeys) {
        case (let secret?, let keys?): config.security = SecurityConfig(secretKey: secret, authorizedKeys: keys)
        case (nil, nil): break
        default: throw ConfigError("\(source): [security] needs both secret_key_file and authorized_keys")
        }
        try config.validate()
        return config
    }

    /// Checks what no single key can: called after flags are applied too.
    public func validate() throws(ConfigError) {
        if binds.isEmpty { throw ConfigError("server.bind: at least one endpoint is needed") }
        for endpoint in binds where !(endpoint.hasPrefix("tcp://") || endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://")) {
            throw ConfigError("server.bind: \"\(endpoint)\" is not a tcp://, ipc:// or inproc:// endpoint")
        }
        if workers < 0 { throw ConfigError("server.workers must be 0 (one per core) or more") }
        if security == nil && !allowInsecure, let open = binds.first(where: { !SecurityConfig.isLoopback($0) }) {
            throw ConfigError("server.bind: \(open) is reachable from other hosts and [security] has no CURVE keys, so anyone who reaches it could decode and use any session. Generate keys with `logitd keygen --out server` (and one pair per client), set security.secret_key_file and security.authorized_keys, or set security.allow_insecure = true to run without encryption")
        }
        if let tokenTap, !(tokenTap.hasPrefix("tcp://") || tokenTap.hasPrefix("ipc://") || tokenTap.hasPrefix("inproc://")) {
            throw ConfigError("server.token_tap: \"\(tokenTap)\" is not a tcp://, ipc:// or inproc:// endpoint")
        }
    }
}

/// Typed access to TOML values with errors that name the key.
private struct TableReader {
    let source: String
    static let sections: Set<String> = ["server", "limits", "sessions", "zmq", "security", "metrics"]

    func forEachSection(of table: TOMLTable, _ body: (String, String, any TOMLValueConvertible) throws(ConfigError) -> Void) throws(ConfigError) {
        for (section, value) in table {
            guard Self.sections.contains(section) else {
                throw ConfigError("\(source): unknown \(value.table == nil ? "key" : "table") \"\(section)\"; known tables: \(Self.sections.sorted().joined(separator: ", "))")
            }
            guard let entries = value.table else {
                throw ConfigError("\(source): \"\(section)\" must be a table ([\(section)])")
            }
            for (key, entry) in entries {
                try body(section, key, entry)
            }
        }
    }

    func integer(_ value: any TOMLValueConvertible, _ key: String, in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard value.type == .int, let number = value.int else {
            throw ConfigError("\(source): \(key) must be an integer")
        }
        guard range.contains(number) else {
            throw ConfigError("\(source): \(key) is \(number); it must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return number
    }

    func strings(_ value: any TOMLValueConvertible, _ key: String) throws(ConfigError) -> [String] {
        guard let array = value.array else { throw ConfigError("\(source): \(key) must be an array of strings") }
        var strings: [String] = []
        for element in array {
            guard let string = element.string else { throw ConfigError("\(source): \(key) must be an array of strings") }
            strings.append(string)
        }
        return strings
    }

    func logLevel(_ value: any TOMLValueConvertible, _ key: String) throws(ConfigError) -> Logger.Level {
        guard let name = value.string, let level = Logger.Level(rawValue: name) else {
            let known = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigError("\(source): \(key) must be one of \(known)")
        }
        return level
    }
}
