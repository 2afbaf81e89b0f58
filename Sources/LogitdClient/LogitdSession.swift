import Decoding
import LogitdProtocol
import ZeroMQ

/// What one STEP returned.
public struct StepEvent: Sendable {
    public let summary: StepSummary
    /// Greedy/sampling: the token chosen for each row.
    public let tokens: [SequenceToken]
    /// Beam search: the new live beams (parent row, token, cumulative score), in the order the next
    /// step's rows must follow.
    public let beams: [BeamRecord]
    /// Per record, the most likely tokens of the distribution it was chosen from.
    public let alternatives: [[TokenChoice]]
    /// Beam search: hypotheses kept this step.
    public let finished: [FinishedSequence]
    /// Once the session is done: every sequence, or the n best hypotheses.
    public let result: SessionResult?
    /// Per record, what the session asked for with `returnRank`, `logprobTokenIDs` or `returnSupport`.
    public var details: [StepDetails] = []

    public var isDone: Bool { summary.isDone }
}

/// What a VERIFY returned: how many draft tokens were accepted, and the tokens emitted (the
/// accepted ones and the correction or bonus token) as a step's event.
public struct VerifyEvent: Sendable {
    public let accepted: Int
    public let sequence: Int
    public let step: StepEvent

    public var tokens: [SequenceToken] { step.tokens }
    public var isDone: Bool { step.isDone }
}

/// A decoding session on a logitd daemon. Call `step` once per model step until `isDone`.
///
/// Rows: for greedy and sampling, one per unfinished sequence, in ascending sequence number
/// (`liveSequences`); for beam search, one per live beam, in the order of the last step's beams
/// (`livePrefixes` holds each beam's tokens).
public final class LogitdSession {
    public private(set) var id: UInt64
    public let seed: UInt64
    public let parameters: SessionParameters
    private let client: LogitdClient
    public private(set) var nextStep = 0
    public private(set) var isDone = false
    public private(set) var result: SessionResult?
    /// Greedy/sampling: the tokens of every sequence so far, and why each finished.
    public private(set) var sequences: [[Int]]
    public private(set) var finishReasons: [FinishReason?]
    public private(set) var logprobSums: [Double]
    /// Mirostat sessions: every sequence's μ after the last step (recovery sends it back).
    public private(set) var mirostatMu: [Float]?
    /// Beam search: the tokens and scores of each live beam, and the kept hypotheses, best first.
    public private(set) var livePrefixes: [[Int]] = [[]]
    public private(set) var liveScores: [Double] = [0]
    public private(set) var kept: [FinishedSequence] = []

    init(client: LogitdClient, id: UInt64, seed: UInt64, parameters: SessionParameters, step: Int) {
        self.client = client
        self.id = id
        self.seed = seed
        self.parameters = parameters
        nextStep = step
        let count = parameters.strategy == .beam ? 1 : parameters.n
        sequences = Array(repeating: [], count: count)
        finishReasons = Array(repeating: nil, count: count)
        logprobSums = Array(repeating: 0, count: count)
        switch parameters.history {
        case .sequences(let tokens, let sums, let mu)?:
            sequences = tokens
            logprobSums = sums
            mirostatMu = mu
            finishReasons = tokens.map { $0.isEmpty ? nil : parameters.stopConditions.finishReason($0) }
        case .beam(let beams, let finished)?:
            livePrefixes = beams.map(\.tokens)
            liveScores = beams.map(\.score)
            kept = finished.map { FinishedSequence(tokens: $0.tokens, finishReason: $0.finishReason, logprobSum: $0.logprobSum, score: $0.score) }
        case nil:
            break
        }
    }

    /// Where the session stands, as OPEN's `history` takes it.
    public var history: SessionHistory {
        if parameters.strategy == .beam {
            let beams = zip(livePrefixes, liveScores).map { Beam(tokens: $0, score: $1) }
            let finished = kept.map {
                Hypothesis(tokens: $0.tokens, score: $0.score ?? 0, logprobSum: $0.logprobSum, finishReason: $0.finishReason.flatMap(FinishReason.init(rawValue:)) ?? .eos)
            }
            return .beam(beams: beams, finished: finished)
        }
        return .sequences(tokens: sequences, logprobSums: logprobSums, mirostatMu: mirostatMu)
    }

    /// Re-opens this session on the daemon from its history (same seed and parameters), after a
    /// restart or on another daemon: the following steps give the tokens the original would have.
    public func recover() throws(LogitdClientError) {
        var parameters = self.parameters
        parameters.history = history
        let (id, _, step) = try client.openRaw(parameters)
        guard step == nextStep else { throw .unexpectedReply("the recovered session continues at step \(step), not \(nextStep)") }
        self.id = id
    }

    /// The sequence numbers the next step's rows stand for (greedy/sampling).
    public var liveSequences: [Int] { finishReasons.indices.filter { finishReasons[$0] == nil } }

    /// One step with float32 rows, row-major.
    @discardableResult
    public func step(_ logits: [Float], mask: [UInt32]? = nil) throws(LogitdClientError) -> StepEvent {
        try logits.withUnsafeBytes { bytes in
            Result { () throws(LogitdClientError) in try step(bytes: bytes, dtype: .float32, mask: mask) }
        }.get()
    }

    /// One step with rows of `dtype`, little-endian, row-major; with `mask` (ceil(vocab_size / 32)
    /// words per row, or one row of them for all), each row's token among those its mask allows.
    @discardableResult
    public func step(bytes: UnsafeRawBufferPointer, dtype: LogitDType, mask: [UInt32]? = nil) throws(LogitdClientError) -> StepEvent {
        let rowBytes = parameters.vocabSize * dtype.byteWidth
        precondition(bytes.count % rowBytes == 0, "logits must hold whole rows of vocab_size elements")
        let descriptor = StepDescriptor(session: id, step: nextStep, dtype: dtype, rows: bytes.count / rowBytes, vocab: parameters.vocabSize)
        let logits: Message
        do { logits = try Message(copying: bytes) } catch { throw .transport(error) }
        var maskFrames: [Message] = []
        if let mask { maskFrames.append(try client.message(LogitdClient.maskBytes(mask))) }
        let (type, body) = try client.exchange(.step, frames: [try client.message(descriptor.encoded), logits] + maskFrames, expecting: [.stepTokens, .done], masked: mask != nil)
        guard body.count == (parameters.hasDetails ? 5 : 4) else { throw .unexpectedReply("\(type) with \(body.count) body frames") }
        return try apply(body)
    }

    /// One step with rows given as candidates: per row, `candidates[row]` (token, logit) pairs,
    /// every other token -inf (a model's top K). With `logNormalisers` (each full row's log Σ exp,
    /// STEP layout 2), raw log-probabilities are exact instead of renormalised over the candidates.
    @discardableResult
    public func stepSparse(_ candidates: [[Candidate]], logNormalisers: [Float]? = nil, mask: [UInt32]? = nil) throws(LogitdClientError) -> StepEvent {
        let k = candidates.first?.count ?? 0
        precondition(candidates.allSatisfy { $0.count == k }, "every row carries the same number of candidates")
        precondition(logNormalisers == nil || logNormalisers!.count == candidates.count, "one log-sum-exp per row")
        var payload: [UInt8] = []
        payload.reserveCapacity(candidates.count * (8 * k + 4))
        for (row, pairs) in candidates.enumerated() {
            if let logNormalisers { withUnsafeBytes(of: logNormalisers[row].bitPattern.littleEndian) { payload += $0 } }
            for pair in pairs {
                withUnsafeBytes(of: UInt32(pair.token).littleEndian) { payload += $0 }
                withUnsafeBytes(of: pair.logit.bitPattern.littleEndian) { payload += $0 }
            }
        }
        let descriptor = StepDescriptor(session: id, step: nextStep, dtype: .float32, rows: candidates.count, vocab: k, sparse: true, logNormaliser: logNormalisers != nil)
        var frames = [try client.message(descriptor.encoded), try client.message(payload)]
        if let mask { frames.append(try client.message(LogitdClient.maskBytes(mask))) }
        let (type, body) = try client.exchange(.step, frames: frames, expecting: [.stepTokens, .done], masked: mask != nil)
        guard body.count == (parameters.hasDetails ? 5 : 4) else { throw .unexpectedReply("\(type) with \(body.count) body frames") }
        return try apply(body)
    }

    /// Reads one step's four reply frames (five with details) and updates the session's state.
    func apply(_ body: [Message]) throws(LogitdClientError) -> StepEvent {
        var event: StepEvent
        do throws(ProtocolError) {
            let summary = try body[0].withUnsafeBytes(StepSummary.parse)
            // Frame 4 of a running greedy/sample step is empty, or a mirostat session's μ.
            let running = summary.kind == .sequences && !summary.isDone
            let json = body[3].count > 0 && !running ? try body[3].withUnsafeBytes(SessionResult.parse) : nil
            if running && body[3].count > 0 {
                mirostatMu = try body[3].withUnsafeBytes(MirostatState.parse).mu
            }
            switch summary.kind {
            case .sequences:
                event = StepEvent(summary: summary, tokens: try body[1].withUnsafeBytes(SequenceToken.parse), beams: [],
                                  alternatives: try body[2].withUnsafeBytes { (frame) throws(ProtocolError) in try AlternativesBody.parse(frame, perRecord: summary.alternatives) },
                                  finished: [], result: summary.isDone ? json : nil)
                if summary.hasDetails {
                    guard body.count == 5 else { throw ProtocolError(.internalError, "the summary announces a details frame that is missing") }
                    event.details = try body[4].withUnsafeBytes { (frame) throws(ProtocolError) in
                        try StepDetails.parse(frame, records: summary.records, layout: StepDetails.Layout(parameters))
                    }
                }
            case .beams:
                event = StepEvent(summary: summary, tokens: [], beams: try body[1].withUnsafeBytes(BeamRecord.parse), alternatives: [],
                                  finished: summary.isDone ? [] : json?.sequences ?? [], result: summary.isDone ? json : nil)
            }
        } catch {
            throw .unexpectedReply("\(error)")
        }
        for token in event.tokens {
            sequences[token.sequence].append(token.token)
            logprobSums[token.sequence] += Double(token.logprob)
            finishReasons[token.sequence] = token.finishReason
        }
        if event.summary.kind == .beams {
            livePrefixes = event.beams.map { livePrefixes[$0.parent] + [$0.token] }
            liveScores = event.beams.map(\.score)
            // The daemon keeps the best beam_width hypotheses, older first among equals.
            kept = (kept + event.finished).enumerated().sorted {
                ($0.element.score ?? 0) > ($1.element.score ?? 0) || (($0.element.score ?? 0) == ($1.element.score ?? 0) && $0.offset < $1.offset)
            }.prefix(parameters.beamWidth).map(\.element)
        }
        // Greedy/sample: the step index is the longest sequence's length (one more per STEP, the
        // tokens returned per VERIFY); beam: steps decoded.
        nextStep = event.summary.kind == .sequences ? sequences.map(\.count).max() ?? 0 : nextStep + 1
        if event.isDone {
            isDone = true
            result = event.result
        }
        return event
    }

    /// VERIFY (speculative decoding) for sequence `sequence`: the k draft tokens, the target's
    /// k + 1 float32 rows (row i scored after the first i draft tokens), and the draft's
    /// probabilities at each of the k positions (k × vocab_size), or nil for a point mass on each
    /// draft token. `mask`: k + 1 mask rows, or one for all. The event holds the accepted tokens
    /// and one more; the session advances by them.
    @discardableResult
    public func verify(draftTokens: [Int], targetRows: [Float], draftProbabilities: [Float]? = nil, sequence: Int = 0,
                       mask: [UInt32]? = nil) throws(LogitdClientError) -> VerifyEvent {
        let vocab = parameters.vocabSize
        precondition(!draftTokens.isEmpty && targetRows.count == (draftTokens.count + 1) * vocab, "k + 1 target rows of vocab_size")
        precondition(draftProbabilities == nil || draftProbabilities!.count == draftTokens.count * vocab, "k draft rows of vocab_size")
        let descriptor = VerifyDescriptor(session: id, step: nextStep, sequence: sequence, dtype: .float32, draftLayout: draftProbabilities == nil ? .none : .dense,
                                          draftTokens: draftTokens.count, vocab: vocab)
        let tokens = draftTokens.flatMap { token in (0..<4).map { UInt8(truncatingIfNeeded: UInt32(token) >> (8 * $0)) } }
        func copied(_ values: [Float]) throws(LogitdClientError) -> Message {
            let message = values.withUnsafeBytes { bytes in Result { () throws(ZMQError) in try Message(copying: bytes) } }
            do { return try message.get() } catch { throw .transport(error) }
        }
        var frames = [try client.message(descriptor.encoded), try client.message(tokens), try copied(targetRows), try copied(draftProbabilities ?? [])]
        if let mask { frames.append(try client.message(LogitdClient.maskBytes(mask))) }
        let (_, body) = try client.exchange(.verify, frames: frames, expecting: [.verified], masked: mask != nil)
        guard body.count == 4, let summary = try? body[0].withUnsafeBytes(VerifySummary.parse) else {
            throw .unexpectedReply("a VERIFIED without its four frames")
        }
        let step = try apply([try client.message(Array(summary.step.encoded)), body[1], body[2], body[3]])
        return VerifyEvent(accepted: summary.accepted, sequence: summary.sequence, step: step)
    }

    /// Steps until done, asking `model` for each step's float32 rows; returns every event.
    public func run(model: (LogitdSession) throws -> [Float]) throws -> [StepEvent] {
        var events: [StepEvent] = []
        while !isDone { events.append(try step(try model(self))) }
        return events
    }

    /// CLOSE: ends the session on the daemon and returns what it had decoded.
    @discardableResult
    public func close() throws(LogitdClientError) -> SessionResult {
        var idBytes: [UInt8] = []
        withUnsafeBytes(of: id.littleEndian) { idBytes.append(contentsOf: $0) }
        let (_, body) = try client.exchange(.close, frames: [try client.message(idBytes)], expecting: [.closed])
        guard body.count == 1, let closed = try? body[0].withUnsafeBytes(SessionResult.parse) else {
            throw .unexpectedReply("a CLOSED without its result")
        }
        isDone = true
        result = closed
        return closed
    }
}

extension LogitdClient {
    /// OPEN: a new session with `parameters`; the daemon fills in defaults and the seed.
    public func open(_ parameters: SessionParameters) throws(LogitdClientError) -> LogitdSession {
        let (id, seed, step) = try openRaw(parameters)
        var resolved = parameters
        resolved.seed = seed
        let session = LogitdSession(client: self, id: id, seed: seed, parameters: resolved, step: step)
        return session
    }

    /// BATCH STEP: one step of several sessions (all with the same vocab_size) in one message,
    /// decoded in parallel by the daemon. Per entry, in order: its event, or what refused it.
    /// `masks`, when given, holds one entry per step: its mask words (ceil(vocab_size / 32) per row,
    /// or one row of them for all its rows), or nil to allow every token.
    public func batchStep(_ steps: [(session: LogitdSession, logits: [Float])], masks: [[UInt32]?]? = nil) throws(LogitdClientError) -> [Result<StepEvent, LogitdClientError>] {
        guard let vocab = steps.first?.session.parameters.vocabSize else { return [] }
        precondition(masks == nil || masks!.count == steps.count, "one mask entry (or nil) per step")
        let entries = steps.map { BatchTable.Entry(session: $0.session.id, step: $0.session.nextStep, rows: $0.logits.count / vocab) }
        let payload = steps.flatMap(\.logits).withUnsafeBytes { Array($0) }
        var frames = [try message(BatchTable.encode(dtype: .float32, vocab: vocab, entries: entries)), try message(payload)]
        if let masks {
            let words = LogitRow.maskByteCount(count: vocab) / 4
            let rows = zip(entries, masks).flatMap { entry, mask in
                let mask = mask ?? [UInt32](repeating: .max, count: words)
                return mask.count == words ? Array([[UInt32]](repeating: mask, count: entry.rows).joined()) : mask
            }
            frames.append(try message(LogitdClient.maskBytes(rows)))
        }
        let (_, body) = try exchange(.batchStep, frames: frames, expecting: [.batchTokens], masked: masks != nil)
        // Four frames per entry, five when its summary announces details.
        var starts: [Int] = []
        var at = 0
        for _ in steps {
            starts.append(at)
            guard at < body.count else { throw .unexpectedReply("BATCH TOKENS with \(body.count) frames for \(steps.count) entries") }
            at += body[at].count == StepSummary.size && body[at].withUnsafeBytes { $0[21] & 2 == 2 } ? 5 : 4
        }
        guard at == body.count else { throw .unexpectedReply("BATCH TOKENS with \(body.count) frames for \(steps.count) entries") }
        return steps.indices.map { index in
            let frames = Array(body[starts[index]..<(index + 1 < starts.count ? starts[index + 1] : body.count)])
            guard frames[0].count > 0 else {
                guard let error = try? frames[1].withUnsafeBytes(ErrorBody.parse) else { return .failure(.unexpectedReply("a refused entry without its error")) }
                return .failure(.server(error))
            }
            return Result { () throws(LogitdClientError) in try steps[index].session.apply(frames) }
        }
    }

    func openRaw(_ parameters: SessionParameters) throws(LogitdClientError) -> (id: UInt64, seed: UInt64, step: Int) {
        let (_, body) = try exchange(.open, frames: [try message(parameters.resolvedJSON)], expecting: [.opened])
        guard body.count == 1, let opened = try? body[0].withUnsafeBytes(OpenedReply.parse) else {
            throw .unexpectedReply("an OPENED without its JSON")
        }
        return (opened.session, opened.seed, opened.step)
    }
}

/// A session's steps as an async sequence: `for try await event in session.stream(model: …)`.
/// Each iteration asks `model` for the next step's rows (float32, one per live sequence or beam),
/// sends them and yields the event; the sequence ends when the session is done.
public struct StepEvents: AsyncSequence {
    public typealias Element = StepEvent

    let session: LogitdSession
    let model: (LogitdSession) throws -> [Float]

    public struct AsyncIterator: AsyncIteratorProtocol {
        let session: LogitdSession
        let model: (LogitdSession) throws -> [Float]

        public mutating func next() async throws -> StepEvent? {
            guard !session.isDone else { return nil }
            return try session.step(try model(session))
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(session: session, model: model)
    }
}

extension LogitdSession {
    /// The session's steps as an async sequence; see `StepEvents`.
    public func stream(model: @escaping (LogitdSession) throws -> [Float]) -> StepEvents {
        StepEvents(session: self, model: model)
    }
}
