import Prometheus

/// What the daemon counts for Prometheus (`[metrics]` in the config), in swift-prometheus's
/// registry: requests by type and outcome, step latency by strategy, rows and bytes decoded,
/// sessions open, requests waiting, worker busy time, refused handshakes, build and kernel variant.
public final class DaemonMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let sessionsOpen: Gauge
    private let waiting: Gauge
    private let rows: Counter
    private let bytes: Counter
    private let busy: Counter
    private let refusedHandshakes: Counter

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "logitd", metricName: metric, unitName: unit, helpText: help)
    }

    private static var requests: MetricNameDescriptor { name("requests", "total", "Requests answered, by message type and outcome (ok or the error code's name).") }
    private static var steps: MetricNameDescriptor { name("step", "seconds", "Time to decode one STEP (or BATCH STEP entry, or VERIFY), by strategy.") }
    private static let stepBuckets: [Duration] = [50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 100_000].map { .microseconds($0) }

    public init(version: String, kernels: String) {
        sessionsOpen = registry.makeGauge(descriptor: Self.name("sessions_open", "", "Sessions open now."))
        waiting = registry.makeGauge(descriptor: Self.name("requests_waiting", "", "Requests taken by the broker and waiting for a worker or for their session."))
        rows = registry.makeCounter(descriptor: Self.name("rows_decoded", "total", "Rows of logits decoded (dense or sparse)."))
        bytes = registry.makeCounter(descriptor: Self.name("logit_bytes", "total", "Bytes of logits decoded."))
        busy = registry.makeCounter(descriptor: Self.name("worker_busy", "seconds_total", "Time workers (and the broker, for small requests) spent answering requests."))
        refusedHandshakes = registry.makeCounter(descriptor: Self.name("handshakes_refused", "total", "CURVE handshakes the ZAP handler refused."))
        registry.makeGauge(descriptor: Self.name("build", "info", "The daemon's version and kernel variant; always 1."),
                           labels: [("version", version), ("kernels", kernels)]).set(to: 1.0)
    }

    func request(type: String, outcome: String) {
        registry.makeCounter(descriptor: Self.requests, labels: [("type", type), ("outcome", outcome)]).increment()
    }

    func step(strategy: String, duration: Duration) {
        registry.makeDurationHistogram(descriptor: Self.steps, labels: [("strategy", strategy)], buckets: Self.stepBuckets).record(duration)
    }

    func decoded(rows count: Int, bytes size: Int) {
        rows.increment(by: Int64(count))
        bytes.increment(by: Int64(size))
    }

    func busy(_ duration: Duration) {
        busy.increment(by: Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18)
    }

    func handshakeRefused() { refusedHandshakes.increment() }

    func set(sessionsOpen count: Int) { sessionsOpen.set(Double(count)) }
    func set(waiting count: Int) { waiting.set(Double(count)) }

    /// The text exposition format.
    public func text() -> [UInt8] { registry.emitToBuffer() }
}
