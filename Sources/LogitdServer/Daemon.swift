import Decoding
import Dispatch
import Foundation
import Logging
import LogitdProtocol
import NIOCore
import ZeroMQ

/// The logitd daemon: a broker on the calling thread and a pool of decoding worker threads.
///
/// Lifecycle: `init` binds nothing; `run` binds, serves until `requestStop`, drains requests in
/// flight (bounded by the config's shutdown grace), stops the workers and returns.
public final class Daemon: Sendable {
    public static let version = "0.1.0"

    public let config: DaemonConfig
    private let context: Context
    private let logger: Logger

    public init(config: DaemonConfig, logger: Logger) throws(ZMQError) {
        self.config = config
        self.logger = logger
        context = try Context(ioThreads: config.ioThreads)
    }

    /// Serves until `requestStop` and the drain that follows. `onReady` gets the bound endpoints once
    /// clients can connect. Throws when an endpoint cannot be bound.
    public func run(onReady: ([String]) -> Void = { _ in }) throws(ZMQError) {
        let workerCount = config.resolvedWorkers
        var limits = config.limits
        limits.sessionTTLMilliseconds = Int(config.sessionTTL.components.seconds * 1000 + config.sessionTTL.components.attoseconds / 1_000_000_000_000_000)
        limits.maxSessions = config.maxSessions
        limits.maxSessionsPerIdentity = config.maxSessionsPerIdentity > 0 ? config.maxSessionsPerIdentity : config.maxSessions
        let welcome = Welcome(server: Self.version, workers: workerCount, limits: limits)
        let metrics = config.metricsBind.map { _ in DaemonMetrics(version: Self.version, kernels: welcome.kernels ?? "") }
        let handler = RequestHandler(welcome: welcome, sessionTTL: config.sessionTTL, maxSessions: config.maxSessions,
                                     maxSessionsPerIdentity: config.maxSessionsPerIdentity, metrics: metrics)
        let zap = try config.security.map { (security) throws(ZMQError) in
            try ZAPHandler(context: context, authorized: security.authorizedKeys, logger: logger, metrics: metrics)
        }
        let zapDone = DispatchGroup()
        if let zap { Self.start("logitd-zap", in: zapDone) { zap.run() } }
        let broker = try Broker(context: context, config: config, handler: handler, logger: logger)
        var metricsServer: MetricsServer?
        if let metrics, let (host, port) = config.metricsBind {
            do {
                metricsServer = try MetricsServer(host: host, port: port, metrics: metrics) { handler.sessions.count }
            } catch {
                // Reported as the binds are: the operation and the system's errno.
                throw ZMQError(code: (error as? IOError)?.errnoCode ?? 0, operation: "metrics.bind \(host):\(port)")
            }
        }
        let workersDone = DispatchGroup()
        for index in 0..<workerCount {
            let worker = Worker(index: index, context: context, backendEndpoint: Broker.backendEndpoint,
                                tapEndpoint: config.tokenTap == nil ? nil : Broker.tapEndpoint, handler: handler, logger: logger)
            Self.start("logitd-worker-\(index)", in: workersDone) { worker.run() }
        }
        logger.info("logitd \(Self.version) serving", metadata: [
            "endpoints": "\(broker.boundEndpoints.joined(separator: ", "))",
            "workers": "\(workerCount)",
            "protocol": "\(Header.currentVersion)",
            "kernels": "\(welcome.kernels ?? "")",
            "security": "\(config.security.map { "CURVE, \($0.authorizedKeys.count) client key(s), server key \($0.publicKey)" } ?? "none")",
            "metrics": "\(metricsServer.map { "http://\($0.address)/metrics" } ?? "off")",
        ])
        onReady(broker.boundEndpoints)
        defer {
            broker.close()
            // Unblocks any worker still busy past the grace period, so that its socket closes too.
            context.shutdown()
            if workersDone.wait(timeout: .now() + .seconds(5)) == .timedOut {
                logger.warning("a worker did not stop within 5 s of shutdown")
            }
            _ = zapDone.wait(timeout: .now() + .seconds(1))
            zap?.close()
            metricsServer?.close()
            // Flushes the replies still queued on the frontend before the process goes.
            context.terminate()
            logger.info("stopped")
        }
        try broker.run()
        if workersDone.wait(timeout: .now() + .seconds(1)) == .timedOut {
            logger.debug("workers did not acknowledge stop within 1 s; shutting the context down")
        }
    }

    /// Runs `body` on a new named thread, inside `group` until it returns.
    private static func start(_ name: String, in group: DispatchGroup, _ body: @escaping @Sendable () -> Void) {
        group.enter()
        let thread = Thread {
            body()
            group.leave()
        }
        thread.name = name
        thread.start()
    }

    /// Asks a running daemon to stop; safe from any thread, including a signal-handling one.
    public func requestStop() {
        do {
            let socket = try context.socket(.push)
            defer { socket.close() }
            try socket.setLinger(.seconds(1))
            try socket.connect(Broker.controlEndpoint)
            try socket.send(Broker.stop)
        } catch {
            logger.error("could not request stop: \(error)")
        }
    }
}
