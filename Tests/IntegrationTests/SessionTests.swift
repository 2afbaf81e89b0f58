import Decoding
import Foundation
import LogitdClient
import LogitdProtocol
import TestSupport
import Testing

/// A toy model: logits that depend on the whole prefix (and grow fond of EOS over time).
func toyLogits(_ prefix: [Int], vocab: Int) -> [Float] {
    var state: UInt64 = 0x1234_5678
    for token in prefix { state = (state ^ UInt64(token + 1)) &* 0x9E37_79B9_7F4A_7C15 }
    var logits = [Float](repeating: 0, count: vocab)
    for index in 0..<vocab {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        logits[index] = Float(Int64(bitPattern: state >> 11) % 4000) / 1000
    }
    logits[0] += Float(prefix.count) * 0.4 - 2
    return logits
}

/// The rows a session's next step needs from the toy model.
func rows(for session: LogitdSession, vocab: Int) -> [Float] {
    if session.parameters.strategy == .beam {
        return session.livePrefixes.flatMap { toyLogits($0, vocab: vocab) }
    }
    return session.liveSequences.flatMap { toyLogits(session.sequences[$0], vocab: vocab) }
}

@Suite("Decoding sessions against the engine run in-process", .serialized)
struct SessionTests {
    static let vocab = 300

    func parameters(_ strategy: Strategy, _ configure: (inout SessionParameters) -> Void = { _ in }) -> SessionParameters {
        var parameters = SessionParameters(strategy: strategy, vocabSize: Self.vocab)
        parameters.maxNewTokens = 12
        parameters.processors.eosTokens = [0]
        configure(&parameters)
        return parameters
    }

    /// The same decoding with the library, no daemon: every sequence's tokens and log-probabilities.
    func inProcess(_ parameters: SessionParameters, seed: UInt64) throws -> [[TokenChoice]] {
        let selector = TokenSelector(settings: parameters.processors, seed: parameters.strategy == .sample ? seed : nil)
        let workspace = Workspace()
        var outputs: [[TokenChoice]] = Array(repeating: [], count: parameters.n)
        for sequence in 0..<parameters.n {
            var history = TokenHistory(prompt: parameters.promptTokenIDs)
            var step = 0
            while true {
                let logits = toyLogits(history.generated, vocab: Self.vocab)
                let choice = try logits.withUnsafeBytes { try selector.choose(from: LogitRow(bytes: $0, dtype: .float32), history: history, sequence: sequence, step: step, workspace: workspace) }
                history.generated.append(choice.token)
                outputs[sequence].append(choice)
                step += 1
                if parameters.stopConditions.finishReason(history.generated) != nil { break }
            }
        }
        return outputs
    }

    @Test("greedy and sampling sessions give exactly the in-process tokens and log-probabilities", arguments: [Strategy.greedy, .sample])
    func sequences(strategy: Strategy) throws {
        let daemon = try DaemonProcess()
        let client = try LogitdClient(endpoint: daemon.endpoint)
        // 2^64 − 1: a seed is exact end to end (a Double would round it to 2^64).
        let seed = UInt64.max
        let parameters = parameters(strategy) {
            $0.n = strategy == .sample ? 3 : 1
            $0.seed = seed
            $0.processors.temperature = 0.9
            $0.processors.topP = 0.9
            $0.processors.repetitionPenalty = 1.2
            $0.promptTokenIDs = [5, 6, 7]
        }
        let session = try client.open(parameters)
        #expect(session.seed == seed)
        var streamed: [[TokenChoice]] = Array(repeating: [], count: parameters.n)
        for event in try session.run(model: { rows(for: $0, vocab: Self.vocab) }) {
            for token in event.tokens { streamed[token.sequence].append(TokenChoice(token: token.token, logprob: token.logprob)) }
        }
        let expected = try inProcess(parameters, seed: seed)
        #expect(streamed == expected)
        let result = try #require(session.result)
        #expect(result.sequences.map(\.tokens) == expected.map { $0.map(\.token) })
    }

    @Test("a beam session gives exactly the in-process beams, hypotheses and scores")
    func beam() throws {
        let daemon = try DaemonProcess()
        let client = try LogitdClient(endpoint: daemon.endpoint)
        let parameters = parameters(.beam) {
            $0.beamWidth = 4
            $0.numReturn = 3
            $0.lengthPenalty = 0.8
            $0.earlyStopping = .never
        }
        let session = try client.open(parameters)
        let events = try session.run(model: { rows(for: $0, vocab: Self.vocab) })

        var search = BeamSearch(settings: parameters.beamSettings)
        let pipeline = LogitsPipeline(settings: parameters.processors)
        let workspace = Workspace()
        var steps: [BeamStep] = []
        while !search.isDone {
            let flat = search.beams.flatMap { toyLogits($0.tokens, vocab: Self.vocab) }
            let rowBytes = Self.vocab * 4
            let count = search.beams.count
            steps.append(try flat.withUnsafeBytes { bytes in
                try search.advance(rows: (0..<count).map { LogitRow(bytes: UnsafeRawBufferPointer(rebasing: bytes[($0 * rowBytes)..<(($0 + 1) * rowBytes)]), dtype: .float32) }, pipeline: pipeline, workspace: workspace)
            })
        }
        #expect(events.count == steps.count)
        for (event, step) in zip(events, steps) {
            #expect(event.beams.map { [$0.parent, $0.token] } == step.beams.map { [$0.parent, $0.token] })
            #expect(event.beams.map(\.score) == step.beams.map(\.score))
            #expect(event.summary.stablePrefixLength == step.stablePrefixLength)
        }
        let result = try #require(session.result)
        #expect(result.sequences.map(\.tokens) == search.best.map(\.tokens))
        #expect(result.sequences.map(\.score) == search.best.map { Optional($0.score) })
    }

    @Test("a session recovered on a new daemon after a crash gives exactly the uninterrupted tokens", arguments: [Strategy.sample, .beam])
    func recovery(strategy: Strategy) throws {
        let parameters = parameters(strategy) {
            $0.n = strategy == .sample ? 2 : 1
            $0.seed = 2026
            $0.processors.topK = 20
            $0.beamWidth = 3
            $0.numReturn = 2
        }
        let reference = try DaemonProcess()
        let uninterrupted = try LogitdClient(endpoint: reference.endpoint).open(parameters)
        _ = try uninterrupted.run(model: { rows(for: $0, vocab: Self.vocab) })

        let first = try DaemonProcess()
        let endpoint = first.endpoint
        let client = try LogitdClient(endpoint: endpoint)
        let session = try client.open(parameters)
        for _ in 0..<3 { try session.step(rows(for: session, vocab: Self.vocab)) }
        #expect(first.stop(signal: SIGKILL) != 0)
        let second = try DaemonProcess(endpoint: endpoint)
        let unknown = #expect(throws: LogitdClientError.self) { try session.step(rows(for: session, vocab: Self.vocab)) }
        guard case .server(let refusal) = unknown, refusal.code == .unknownSession else {
            Issue.record("the new daemon must not know the session: \(String(describing: unknown))")
            return
        }
        try session.recover()
        _ = try session.run(model: { rows(for: $0, vocab: Self.vocab) })
        #expect(session.result == uninterrupted.result.map { SessionResult(session: session.id, steps: $0.steps, sequences: $0.sequences) })
        _ = second
    }

    @Test("32 clients with interleaved sessions each get exactly their own tokens")
    func interleavedSessions() throws {
        let daemon = try DaemonProcess(workers: 2)
        let endpoint = daemon.endpoint
        let failures = Failures()
        let group = DispatchGroup()
        for index in 0..<32 {
            let parameters = parameters(index % 3 == 2 ? .greedy : .sample) {
                $0.seed = UInt64(1000 + index)
                $0.n = 1 + index % 2
                $0.processors.topK = 30
                $0.promptTokenIDs = [index % Self.vocab]
            }
            let expected = try inProcess(parameters, seed: UInt64(1000 + index)).map { $0.map(\.token) }
            group.enter()
            Thread {
                defer { group.leave() }
                do {
                    let session = try LogitdClient(endpoint: endpoint).open(parameters)
                    _ = try session.run(model: { rows(for: $0, vocab: Self.vocab) })
                    if session.sequences != expected { failures.add("client \(index): \(session.sequences) != \(expected)") }
                } catch {
                    failures.add("client \(index): \(error)")
                }
            }.start()
        }
        #expect(group.wait(timeout: .now() + 120) == .success)
        #expect(failures.all.isEmpty, "\(failures.all.prefix(3))")
    }

    @Test("a batched step of many sessions decodes what separate steps decode")
    func batched() throws {
        let daemon = try DaemonProcess(workers: 2)
        let client = try LogitdClient(endpoint: daemon.endpoint)
        let kinds = [
            parameters(.greedy),
            parameters(.sample) { $0.seed = 3; $0.n = 2; $0.processors.minP = 0.05 },
            parameters(.beam) { $0.beamWidth = 3; $0.numReturn = 2 },
        ]
        // More entries than cores, so that every lane decodes several sessions of different
        // kinds with the same scratch Workspace.
        let count = 2 * ProcessInfo.processInfo.activeProcessorCount + 1
        let setups = (0..<max(count, kinds.count)).map { kinds[$0 % kinds.count] }
        let single = try setups.map { try client.open($0) }
        for session in single { _ = try session.run(model: { rows(for: $0, vocab: Self.vocab) }) }
        let batched = try setups.map { try client.open($0) }
        while batched.contains(where: { !$0.isDone }) {
            let live = batched.filter { !$0.isDone }
            for result in try client.batchStep(live.map { ($0, rows(for: $0, vocab: Self.vocab)) }) {
                if case .failure(let error) = result { Issue.record("\(error)") }
            }
        }
        #expect(single.map { $0.result?.sequences } == batched.map { $0.result?.sequences })
    }

    @Test("for try await over a session's stream yields every step until DONE")
    func stream() async throws {
        let daemon = try DaemonProcess()
        let client = try LogitdClient(endpoint: daemon.endpoint)
        let session = try client.open(parameters(.sample) { $0.seed = 8 })
        var tokens: [Int] = []
        var sawDone = false
        for try await event in session.stream(model: { rows(for: $0, vocab: Self.vocab) }) {
            tokens += event.tokens.map(\.token)
            sawDone = event.isDone
        }
        #expect(sawDone)
        #expect(tokens == (try inProcess(session.parameters, seed: 8))[0].map(\.token))
    }

    @Test("bfloat16 and float16 steps decode what the engine decodes from the same bytes", arguments: [LogitDType.float16, .bfloat16])
    func halfPrecision(dtype: LogitDType) throws {
        let daemon = try DaemonProcess()
        let client = try LogitdClient(endpoint: daemon.endpoint)
        let session = try client.open(parameters(.greedy))
        let logits = toyLogits([], vocab: Self.vocab)
        let bytes = encode(logits, dtype)
        let event = try bytes.withUnsafeBytes { try session.step(bytes: $0, dtype: dtype) }
        let expected = try bytes.withUnsafeBytes { try Greedy.choose(from: LogitRow(bytes: $0, dtype: dtype)) }
        #expect(event.tokens.map { TokenChoice(token: $0.token, logprob: $0.logprob) } == [expected])
        let closed = try session.close()
        #expect(closed.sequences[0].tokens == [expected.token])
        let error = #expect(throws: LogitdClientError.self) { try session.step(logits) }
        guard case .server(let refusal) = error else { Issue.record("expected a server error"); return }
        #expect(refusal.code == .sessionClosed)
    }
}
