import Decoding
import Foundation
import LogitdProtocol
import RealModule

/// Turns the frames of one request into the frames of its reply. No sockets: the worker owns those.
public struct RequestHandler: Sendable {
    public let limits: ProtocolLimits
    private let welcomeBody: [UInt8]
    let sessions: SessionStore
    /// Refused requests, logged with a rate limit per cause.
    let refusals = RefusalLog()
    /// Prometheus counters, when the daemon serves them.
    let metrics: DaemonMetrics?

    /// `endedSessionMemory`: how many ended sessions keep their reason (closed, finished, expired);
    /// older ones still answer SESSION_CLOSED, as ended.
    public init(welcome: Welcome, sessionTTL: Duration = .seconds(600), maxSessions: Int = 10_000, maxSessionsPerIdentity: Int = 0,
                endedSessionMemory: Int = 65_536, metrics: DaemonMetrics? = nil) {
        self.metrics = metrics
        self.limits = welcome.limits
        self.welcomeBody = welcome.encoded
        self.sessions = SessionStore(ttl: sessionTTL, maxSessions: maxSessions, maxPerOwner: maxSessionsPerIdentity, endedMemory: endedSessionMemory)
    }

    /// Per-entry results written from parallel iterations.
    private final class ResultSlots: @unchecked Sendable {
        private let lock = NSLock()
        private var slots: [[[UInt8]]]
        init(count: Int) { slots = Array(repeating: [], count: count) }
        func set(_ index: Int, _ frames: [[UInt8]]) { lock.withLock { slots[index] = frames } }
        var frames: [[[UInt8]]] { lock.withLock { slots } }
    }

    /// A reply ready to send, and the error it carries when the request was refused (for the log).
    public struct Reply {
        public var frames: [[UInt8]]
        public var requestID: UInt64
        public var error: ProtocolError?
    }

    /// Handles one request; `workspace` is the calling worker's scratch memory.
    /// `identity` names the client (its CURVE public key; "" without CURVE, where every client is one
    /// identity): a session answers only the identity that opened it.
    public func handle(_ frames: [UnsafeRawBufferPointer], identity: String = "", workspace: Workspace) -> Reply {
        let requestID = frames.first.map(Header.bestEffortRequestID) ?? 0
        // The label only when metrics are on: no per-request string work otherwise.
        func type() -> String { frames.first.flatMap { try? Header.parse($0).type.metricLabel } ?? "unknown" }
        do throws(ProtocolError) {
            let (header, request) = try Request.parse(frames, limits: limits)
            let reply = Reply(frames: try respond(to: request, header: header, identity: identity, workspace: workspace), requestID: header.requestID, error: nil)
            if let metrics {
                metrics.request(type: header.type.metricLabel, outcome: "ok")
                let (rows, bytes) = request.decodedShape
                if rows > 0 { metrics.decoded(rows: rows, bytes: bytes) }
            }
            return reply
        } catch {
            metrics?.request(type: type(), outcome: error.code.name)
            return Self.errorReply(error, requestID: requestID)
        }
    }

    public static func errorReply(_ error: ProtocolError, requestID: UInt64) -> Reply {
        Reply(frames: [Header(type: .error, requestID: requestID).encoded, ErrorBody.encode(error)], requestID: requestID, error: error)
    }

    private func respond(to request: Request, header: Header, identity: String, workspace: Workspace) throws(ProtocolError) -> [[UInt8]] {
        switch request {
        case .hello:
            return [Header(type: .welcome, requestID: header.requestID).encoded, welcomeBody]
        case .ping(let payload):
            let pong = Header(type: .pong, requestID: header.requestID).encoded
            return payload.map { [pong, Array($0)] } ?? [pong]
        case .decode(let decode):
            return [Header(type: .tokens, requestID: header.requestID).encoded, TokensBody.encode(try choose(decode))]
        case .probs(let probs):
            return [Header(type: .probabilities, requestID: header.requestID).encoded] + (try probabilities(probs, workspace: workspace))
        case .open(let parameters):
            let session = try sessions.open(parameters, owner: identity)
            return [Header(type: .opened, requestID: header.requestID).encoded,
                    OpenedBody(session: session.id, parameters: session.parameters, seed: session.seed).encoded]
        case .step(let step):
            let (outcome, isDone) = try advance(step, identity: identity, workspace: workspace)
            return [Header(type: isDone ? .done : .stepTokens, requestID: header.requestID).encoded] + outcome
        case .batchStep(let steps):
            let frames = Self.inParallel(steps.count) { (index, workspace) throws(ProtocolError) in try advance(steps[index], identity: identity, workspace: workspace).frames }
            return [Header(type: .batchTokens, requestID: header.requestID).encoded] + frames
        case .verify(let verify):
            return [Header(type: .verified, requestID: header.requestID).encoded] + (try self.verify(verify, identity: identity, workspace: workspace))
        case .batchVerify(let verifications):
            let frames = Self.inParallel(verifications.count) { (index, workspace) throws(ProtocolError) in try self.verify(verifications[index], identity: identity, workspace: workspace) }
            return [Header(type: .batchVerified, requestID: header.requestID).encoded] + frames
        case .score(let score):
            return [Header(type: .scored, requestID: header.requestID).encoded, ScoredBody.encode(try self.score(score, workspace: workspace))]
        case .classify(let classify):
            return [Header(type: .classified, requestID: header.requestID).encoded] + (try self.classify(classify))
        case .close(let id):
            let session = try sessions.session(id, identity: identity)
            sessions.end(id, .closed)
            return [Header(type: .closed, requestID: header.requestID).encoded, session.result.encoded]
        }
    }

    /// The four reply frames of each of `count` batch entries, in order. Each entry is a different
    /// session: they are decoded in parallel, one lane per core, each lane reusing one scratch
    /// Workspace for its entries — a fresh one per entry costs its allocation and first-touch page
    /// faults every time. A refused entry carries its ERROR body in place of its records.
    private static func inParallel(_ count: Int, _ entry: @escaping @Sendable (Int, Workspace) throws(ProtocolError) -> [[UInt8]]) -> [[UInt8]] {
        let results = ResultSlots(count: count)
        let lanes = min(count, ProcessInfo.processInfo.activeProcessorCount)
        DispatchQueue.concurrentPerform(iterations: lanes) { lane in
            let workspace = Workspace()
            for index in stride(from: lane, to: count, by: lanes) {
                do throws(ProtocolError) {
                    results.set(index, try entry(index, workspace))
                } catch {
                    results.set(index, [[], ErrorBody.encode(error), [], []])
                }
            }
        }
        return results.frames.flatMap { $0 }
    }

    /// One session step: its four reply frames (five with details), and whether it ended the session.
    private func advance(_ step: StepRequest, identity: String, workspace: Workspace) throws(ProtocolError) -> (frames: [[UInt8]], isDone: Bool) {
        let session = try sessions.session(step.descriptor.session, identity: identity)
        let start = ContinuousClock.now
        let outcome = try session.advance(step, workspace: workspace)
        metrics?.step(strategy: session.parameters.strategy.rawValue, duration: .now - start)
        if session.isDone { sessions.end(session.id, .finished) }
        return (outcome.frames, session.isDone)
    }

    /// One VERIFY: VERIFIED's four body frames.
    private func verify(_ request: VerifyRequest, identity: String, workspace: Workspace) throws(ProtocolError) -> [[UInt8]] {
        let session = try sessions.session(request.descriptor.session, identity: identity)
        let start = ContinuousClock.now
        let outcome = try session.verify(request, workspace: workspace)
        metrics?.step(strategy: session.parameters.strategy.rawValue, duration: .now - start)
        if session.isDone { sessions.end(session.id, .finished) }
        return outcome.frames
    }

    /// PROBABILITIES' frames: 8 bytes (u32 rows, u32 top_n), then rows × vocab f32 probabilities, or
    /// rows × top_n × (u32 token, f32 probability).
    private func probabilities(_ request: ProbsRequest, workspace: Workspace) throws(ProtocolError) -> [[UInt8]] {
        let descriptor = request.rows.descriptor
        let topN = request.parameters.topN
        let info = ProbabilitiesBody.info(rows: descriptor.rows, topN: topN)
        var body = [UInt8](repeating: 0, count: descriptor.rows * (topN == 0 ? descriptor.vocab * 4 : topN * 8))
        for index in 0..<descriptor.rows {
            let row = request.rows.row(index)
            do throws(LogitRowError) {
                if topN == 0 {
                    try body.withUnsafeMutableBytes { bytes in
                        Result { () throws(LogitRowError) in
                            let start = bytes.baseAddress!.advanced(by: index * descriptor.vocab * 4).assumingMemoryBound(to: Float.self)
                            try Softmax.probabilities(of: row, temperature: request.parameters.temperature, into: UnsafeMutableBufferPointer(start: start, count: descriptor.vocab))
                        }
                    }.get()
                } else {
                    _ = try row.validatedMaximum()
                    let top = Sampler.alternatives(topN, of: .dense(row, scale: 1 / request.parameters.temperature), workspace: workspace)
                    let records = TokensBody.encode(top.map { TokenChoice(token: $0.token, logprob: Float(Double.exp(Double($0.logprob)))) })
                    body.replaceSubrange((index * topN * 8)..<((index + 1) * topN * 8), with: records)
                }
            } catch {
                throw ProtocolError(row: index, error)
            }
        }
        return [info, body]
    }

    /// DECODE is greedy (the parameters' parser refuses every other strategy).
    private func choose(_ request: DecodeRequest) throws(ProtocolError) -> [TokenChoice] {
        var choices: [TokenChoice] = []
        choices.reserveCapacity(request.descriptor.rows)
        for index in 0..<request.descriptor.rows {
            do throws(LogitRowError) {
                choices.append(try Greedy.choose(from: request.row(index)))
            } catch {
                throw ProtocolError(row: index, error)
            }
        }
        return choices
    }
}
