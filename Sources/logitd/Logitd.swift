import ArgumentParser
import Decoding
import Foundation
import Logging
import LogitdServer

@main
struct Logitd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logitd",
        abstract: "A decoding daemon: model processes send logits over ZeroMQ, logitd sends tokens back.",
        version: "\(Daemon.version) (kernels: \(Kernels.active))",
        subcommands: [Serve.self, KernelsCommand.self, KeygenCommand.self],
        defaultSubcommand: Serve.self
    )
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the daemon until SIGINT or SIGTERM.")

    @Option(help: "TOML configuration file (default: built-in defaults, the same as Config/logitd.toml).")
    var config: String?

    @Option(help: "Endpoint to bind, tcp:// or ipc://; repeat for several. Replaces the file's server.bind.")
    var bind: [String] = []

    @Option(help: "Decoding worker threads (0: one per core). Overrides server.workers.")
    var workers: Int?

    @Option(help: "trace, debug, info, notice, warning, error or critical. Overrides server.log_level.")
    var logLevel: String?

    @Option(help: "PUB endpoint publishing every chosen token under its session id. Overrides server.token_tap.")
    var tokenTap: String?

    func run() throws {
        do {
            try Kernels.checkEnvironment()
        } catch {
            FileHandle.standardError.write(Data("logitd: \(error)\n".utf8))
            throw ExitCode.failure
        }
        var settings = DaemonConfig()
        do {
            if let config { settings = try DaemonConfig.load(path: config) }
            if !bind.isEmpty { settings.binds = bind }
            if let workers { settings.workers = workers }
            if let tokenTap { settings.tokenTap = tokenTap }
            if let logLevel {
                guard let level = Logger.Level(rawValue: logLevel) else {
                    throw ConfigError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                settings.logLevel = level
            }
            try settings.validate()
        } catch let error as ConfigError {
            throw ValidationError(error.message)
        }
        let level = settings.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "logitd")

        // Signals are taken synchronously by one thread, so they must be blocked in every thread,
        // including libzmq's I/O threads: block them before the context creates any.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        let daemon = try Daemon(config: settings, logger: logger)
        let signalSet = signals
        let signalThread = Thread {
            var received: Int32 = 0
            var waitSet = signalSet
            sigwait(&waitSet, &received)
            logger.info("received \(received == SIGINT ? "SIGINT" : "SIGTERM")")
            daemon.requestStop()
        }
        signalThread.name = "logitd-signals"
        signalThread.start()
        do {
            try daemon.run()
        } catch {
            logger.critical("cannot serve: \(error)")
            throw ExitCode.failure
        }
    }
}

/// `logitd kernels`: the kernel variants this binary carries, which this CPU runs, which is in use.
struct KernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "List the decoding kernel variants: supported by this CPU, and the one in use (LOGITD_KERNELS forces a lower one)."
    )

    @Flag(help: "Print only the supported variants' names, widest first, one per line.")
    var supported = false

    func run() throws {
        if supported {
            Kernels.supported.forEach { print($0) }
            return
        }
        for variant in KernelVariant.allCases {
            let state = variant == Kernels.active ? "in use" : variant.isSupported ? "supported" : "not supported here"
            print("\(variant.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(state)")
        }
    }
}
