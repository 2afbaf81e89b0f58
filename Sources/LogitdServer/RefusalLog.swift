import Foundation
import Logging
import LogitdProtocol

/// Refused requests, logged at most `perSecond` times a second per cause (error code), the rest
/// counted and summarised once a second: a flood of malformed messages writes a few lines, not one
/// per message. Shared by the broker and every worker.
final class RefusalLog: @unchecked Sendable {
    private let perSecond: Int
    private let lock = NSLock()
    private struct Cause {
        var windowStart: ContinuousClock.Instant
        var logged = 0
        var suppressed = 0
    }
    private var causes: [String: Cause] = [:]

    init(perSecond: Int = 5) {
        self.perSecond = perSecond
    }

    /// Logs a refusal unless its cause already had `perSecond` lines in the current second.
    func record(_ error: ProtocolError, client: String, requestID: UInt64, logger: Logger, now: ContinuousClock.Instant = .now) {
        let cause = error.code.name
        let log: Bool = lock.withLock {
            var entry = causes[cause] ?? Cause(windowStart: now)
            if now - entry.windowStart >= .seconds(1) {
                entry.windowStart = now
                entry.logged = 0
            }
            let log = entry.logged < perSecond
            if log { entry.logged += 1 } else { entry.suppressed += 1 }
            causes[cause] = entry
            return log
        }
        if log {
            logger.warning("refused request", metadata: ["client": "\(client)", "request": "\(requestID)", "error": "\(error)"])
        }
    }

    /// Writes one summary line per cause whose refusals were not all logged since the last call.
    func flush(logger: Logger) {
        let summary: [(String, Int)] = lock.withLock {
            let suppressed = causes.compactMap { $0.value.suppressed > 0 ? ($0.key, $0.value.suppressed) : nil }.sorted { $0.0 < $1.0 }
            for key in causes.keys { causes[key]?.suppressed = 0 }
            return suppressed
        }
        for (cause, count) in summary {
            logger.warning("refused requests not logged one by one", metadata: ["error": "\(cause)", "count": "\(count)"])
        }
    }
}
