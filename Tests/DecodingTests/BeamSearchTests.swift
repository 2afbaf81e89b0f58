import Decoding
import Foundation
import Testing

/// A toy model: logits as a function of the generated prefix.
typealias ToyModel = @Sendable ([Int]) -> [Float]

/// Drives the engine's beam search to the end; returns its n-best and the number of steps taken.
func runBeamSearch(_ model: ToyModel, settings: BeamSearchSettings, processors: ProcessorSettings = ProcessorSettings()) throws -> (best: [Hypothesis], steps: Int, trace: [BeamStep]) {
    var search = BeamSearch(settings: settings)
    let pipeline = LogitsPipeline(settings: processors)
    let workspace = Workspace()
    var trace: [BeamStep] = []
    while !search.isDone {
        let rows = search.beams.map { model($0.tokens) }
        let step = try rows.withContiguousRows { try search.advance(rows: $0, pipeline: pipeline, workspace: workspace) }
        trace.append(step)
    }
    return (search.best, trace.count, trace)
}

extension Array where Element == [Float] {
    /// The rows as LogitRows over one contiguous buffer, for the duration of `body`.
    func withContiguousRows<R>(_ body: ([LogitRow]) throws -> R) rethrows -> R {
        let flat = flatMap { $0 }
        let vocab = first?.count ?? 0
        return try flat.withUnsafeBytes { bytes in
            try body((0..<count).map { LogitRow(bytes: UnsafeRawBufferPointer(rebasing: bytes[($0 * vocab * 4)..<(($0 + 1) * vocab * 4)]), dtype: .float32) })
        }
    }
}

/// Hugging Face transformers' `_beam_search` written out literally for one batch element, in
/// Float64: `width` running beams with −1e9 for all but the first, the −1e9 masks, the merged
/// top-k of finished sequences and the `_beam_search_has_unfinished_sequences` rule.
func huggingFaceBeamSearch(_ model: ToyModel, width: Int, eos: [Int], maxNewTokens: Int, lengthPenalty: Double, earlyStopping: EarlyStopping, numReturn: Int) -> [(tokens: [Int], score: Double)] {
    let keep = max(2, 1 + eos.count) * width
    var running = [[Int]](repeating: [], count: width)
    var runningScores = [0.0] + [Double](repeating: -1e9, count: width - 1)
    var sequences = [[Int]](repeating: [], count: width)
    var scores = [Double](repeating: -1e9, count: width)
    var isFinished = [Bool](repeating: false, count: width)
    var length = 0
    while length < maxNewTokens {
        var accumulated: [(flat: Int, score: Double)] = []
        for beam in 0..<width {
            let logits = model(running[beam]).map(Double.init)
            let logProbabilities = Reference.logSoftmax(logits)
            for (token, value) in logProbabilities.enumerated() {
                accumulated.append((beam * logits.count + token, value + runningScores[beam]))
            }
        }
        let vocab = accumulated.count / width
        let top = accumulated.sorted { $0.score > $1.score || ($0.score == $1.score && $0.flat < $1.flat) }.prefix(keep)
        let candidates = top.map { (tokens: running[$0.flat / vocab] + [$0.flat % vocab], score: $0.score) }
        let hits = candidates.map { eos.contains($0.tokens.last!) || $0.tokens.count >= maxNewTokens }
        // Next running beams: finished candidates pushed down by 1e9.
        let masked: [Double] = candidates.indices.map { candidates[$0].score + (hits[$0] ? -1e9 : 0) }
        let next = candidates.indices.sorted { masked[$0] > masked[$1] || (masked[$0] == masked[$1] && $0 < $1) }.prefix(width)
        running = next.map { candidates[$0].tokens }
        runningScores = next.map { masked[$0] }
        // Finished update.
        let beamsFull = isFinished.allSatisfy { $0 } && earlyStopping == .whenFull
        var merged: [(tokens: [Int], score: Double, finished: Bool)] = (0..<width).map { (sequences[$0], scores[$0], isFinished[$0]) }
        for (rank, candidate) in candidates.enumerated() {
            let justFinished = hits[rank] && rank < width
            var score = candidate.score / pow(Double(length + 1), lengthPenalty)
            if beamsFull { score -= 1e9 }
            if !justFinished { score -= 1e9 }
            merged.append((candidate.tokens, score, justFinished))
        }
        let kept = merged.indices.sorted { merged[$0].score > merged[$1].score || (merged[$0].score == merged[$1].score && $0 < $1) }.prefix(width)
        sequences = kept.map { merged[$0].tokens }
        scores = kept.map { merged[$0].score }
        isFinished = kept.map { merged[$0].finished }
        length += 1
        let hypotheticalLength = earlyStopping == .never && lengthPenalty > 0 ? maxNewTokens : length
        let bestRunning = runningScores[0] / pow(Double(hypotheticalLength), lengthPenalty)
        let worst = scores.min()!
        let improvementPossible = isFinished.contains { !$0 } ? bestRunning > -1e9 : bestRunning > worst
        let existsOpenBeam = !(isFinished.allSatisfy { $0 } && earlyStopping == .whenFull)
        let validContinuations = !hits.allSatisfy { $0 }
        if !(improvementPossible && existsOpenBeam && validContinuations) { break }
    }
    return (0..<numReturn).map { (sequences[$0], scores[$0]) }
}

/// Pseudo-random logits that depend on the whole prefix: a different distribution after each one.
func hashedModel(vocab: Int, seed: UInt64, sigma: Double = 2) -> ToyModel {
    { prefix in
        var state = seed
        for token in prefix { state = (state ^ UInt64(token + 1)) &* 0x9E37_79B9_7F4A_7C15 }
        var generator = SplitMix64(state: state)
        return (0..<vocab).map { _ in Float(generator.normal(sigma: sigma)) }
    }
}

/// Every finished sequence up to `maxNewTokens`, scored as beam search scores them, best first.
func exhaustiveSearch(_ model: ToyModel, vocab: Int, eos: Set<Int>, maxNewTokens: Int, lengthPenalty: Double) -> [(tokens: [Int], score: Double)] {
    var complete: [(tokens: [Int], score: Double)] = []
    func extend(_ prefix: [Int], _ sum: Double) {
        let logProbabilities = Reference.logSoftmax(model(prefix).map(Double.init))
        for token in 0..<vocab {
            let tokens = prefix + [token]
            let total = sum + logProbabilities[token]
            if eos.contains(token) || tokens.count == maxNewTokens {
                complete.append((tokens, total / pow(Double(tokens.count), lengthPenalty)))
            } else {
                extend(tokens, total)
            }
        }
    }
    extend([], 0)
    return complete.sorted { $0.score > $1.score }
}

struct BeamCase: CustomTestStringConvertible, Sendable {
    let seed: UInt64
    let vocab: Int
    let width: Int
    let eos: [Int]
    let maxNewTokens: Int
    let lengthPenalty: Double
    let earlyStopping: EarlyStopping
    var testDescription: String { "V=\(vocab) width \(width) eos \(eos) max \(maxNewTokens) lp \(lengthPenalty) early \(earlyStopping.rawValue) seed \(seed)" }
}

let beamCases: [BeamCase] = {
    var cases: [BeamCase] = []
    var seed: UInt64 = 1
    for early in EarlyStopping.allCases {
        for lengthPenalty in [0.0, 1.0, 2.0, -0.5] {
            for (width, eos) in [(1, [0]), (2, [0]), (3, [0, 1]), (4, [2])] {
                cases.append(BeamCase(seed: seed, vocab: max(8, 3 * width + 1) + Int(seed % 3), width: width, eos: eos, maxNewTokens: 3 + Int(seed % 5), lengthPenalty: lengthPenalty, earlyStopping: early))
                seed += 1
            }
        }
    }
    return cases
}()

@Suite("Beam search")
struct BeamSearchTests {
    @Test("the same hypotheses and scores as Hugging Face's _beam_search, literally ported", arguments: beamCases)
    func matchesHuggingFace(beam: BeamCase) throws {
        // Several seeds per configuration: EOS must sometimes finish early and sometimes be dropped.
        for offset in 0..<6 as Range<UInt64> {
            let model = hashedModel(vocab: beam.vocab, seed: beam.seed * 1000 + offset, sigma: 1.5)
            var settings = BeamSearchSettings(width: beam.width, stop: StopConditions(eosTokens: beam.eos, maxNewTokens: beam.maxNewTokens))
            settings.lengthPenalty = beam.lengthPenalty
            settings.earlyStopping = beam.earlyStopping
            settings.numReturn = beam.width
            let ours = try runBeamSearch(model, settings: settings).best
            let theirs = huggingFaceBeamSearch(model, width: beam.width, eos: beam.eos, maxNewTokens: beam.maxNewTokens, lengthPenalty: beam.lengthPenalty, earlyStopping: beam.earlyStopping, numReturn: beam.width)
            #expect(ours.map(\.tokens) == theirs.map(\.tokens), "seed offset \(offset)")
            for (a, b) in zip(ours, theirs) { #expect(abs(a.score - b.score) <= 1e-6 * max(1, abs(b.score))) }
        }
    }

    @Test("with a beam as wide as every candidate, the n-best is the exhaustive n-best", arguments: [(0.0, EarlyStopping.never), (1.0, .never), (2.0, .never), (0.0, .heuristic)])
    func exhaustive(lengthPenalty: Double, earlyStopping: EarlyStopping) throws {
        for seed in 1...8 as ClosedRange<UInt64> {
            let vocab = 4
            let model = hashedModel(vocab: vocab, seed: seed)
            // Live sequences never exceed 3^2 = 9 before the last step, so 36 candidates per step at most.
            var settings = BeamSearchSettings(width: 36, stop: StopConditions(eosTokens: [3], maxNewTokens: 3))
            settings.lengthPenalty = lengthPenalty
            settings.earlyStopping = earlyStopping
            settings.numReturn = 5
            let ours = try runBeamSearch(model, settings: settings).best
            let truth = exhaustiveSearch(model, vocab: vocab, eos: [3], maxNewTokens: 3, lengthPenalty: lengthPenalty).prefix(5)
            #expect(ours.map(\.tokens) == truth.map(\.tokens), "seed \(seed)")
            // The engine works in float32 per token, the references in Float64.
            for (a, b) in zip(ours, truth) { #expect(abs(a.score - b.score) <= 1e-6 * max(1, abs(b.score))) }
        }
    }

    /// Tokens a, b, c and EOS (3); the model's probabilities per prefix are chosen so that every rule
    /// shows. Worked through by hand in docs/DECODING.md ("A worked example").
    static let scripted: ToyModel = { prefix in
        let p: [Double]
        switch prefix {
        case []: p = [0.5, 0.3, 0.1, 0.1]
        case [0]: p = [0.1, 0.1, 0.2, 0.6]
        case [1]: p = [0.7, 0.1, 0.1, 0.1]
        case [0, 2]: p = [0.05, 0.03, 0.02, 0.9]
        case [1, 0]: p = [0.1, 0.05, 0.05, 0.8]
        default: p = [0.25, 0.25, 0.25, 0.25]
        }
        return p.map { Float(log($0)) }
    }

    func scriptedSettings(lengthPenalty: Double, earlyStopping: EarlyStopping, maxNewTokens: Int = 10) -> BeamSearchSettings {
        var settings = BeamSearchSettings(width: 2, stop: StopConditions(eosTokens: [3], maxNewTokens: maxNewTokens))
        settings.lengthPenalty = lengthPenalty
        settings.earlyStopping = earlyStopping
        settings.numReturn = 2
        return settings
    }

    @Test("hand-computed: EOS outside the top width is dropped; finished scores are sum ÷ length^penalty")
    func handComputed() throws {
        let (best, steps, trace) = try runBeamSearch(Self.scripted, settings: scriptedSettings(lengthPenalty: 1, earlyStopping: .heuristic))
        // Step 1: a, b, c, EOS; EOS ranks 4th (tied with c, higher id) and is dropped.
        #expect(trace[0].beams.map(\.token) == [0, 1])
        #expect(trace[0].finished.isEmpty)
        // Step 2: "a EOS" ranks first and finishes with (ln .5 + ln .6) / 2; beams "b a" and "a c" go on.
        #expect(trace[1].finished.map(\.tokens) == [[0, 3]])
        #expect(abs(trace[1].finished[0].score - (log(0.5) + log(0.6)) / 2) < 1e-6)
        #expect(trace[1].beams.map { [$0.parent, $0.token] } == [[1, 0], [0, 2]])
        #expect(trace[1].stablePrefixLength == 0)
        // Step 3: "b a EOS" (−1.784 / 3) and "a c EOS" (−2.408 / 3) finish; the kept two are
        // "b a EOS" and "a EOS"; the best live beam, −3.864 / 3, cannot beat −0.602: done.
        #expect(steps == 3)
        #expect(best.map(\.tokens) == [[1, 0, 3], [0, 3]])
        #expect(abs(best[0].score - (log(0.3) + log(0.7) + log(0.8)) / 3) < 1e-6)
        #expect(abs(best[0].logprobSum - (log(0.3) + log(0.7) + log(0.8))) < 1e-6)
        #expect(best[0].finishReason == .eos)
        #expect(trace[2].stablePrefixLength == 3, "once done, the best hypothesis is final")
    }

    @Test("hand-computed: length penalty 0 prefers the short hypothesis")
    func lengthPenaltyZero() throws {
        let (best, _, _) = try runBeamSearch(Self.scripted, settings: scriptedSettings(lengthPenalty: 0, earlyStopping: .heuristic))
        #expect(best.map(\.tokens) == [[0, 3], [1, 0, 3]])
        #expect(abs(best[0].score - (log(0.5) + log(0.6))) < 1e-6)
    }

    @Test("hand-computed: \"never\" with a positive penalty bounds by the maximum length and searches on")
    func neverSearchesOn() throws {
        let heuristic = try runBeamSearch(Self.scripted, settings: scriptedSettings(lengthPenalty: 1, earlyStopping: .heuristic))
        let never = try runBeamSearch(Self.scripted, settings: scriptedSettings(lengthPenalty: 1, earlyStopping: .never))
        // After step 3 the best live beam scores −3.864; ÷ 10 (max length) = −0.386 beats −0.602, so
        // "never" goes on until −6.636 / 10 no longer does, two steps later.
        #expect(heuristic.steps == 3)
        #expect(never.steps == 5)
        #expect(never.best.map(\.tokens) == heuristic.best.map(\.tokens))
    }

    @Test("hand-computed: early stopping true stops as soon as width hypotheses are kept")
    func whenFull() throws {
        // Width 1: the first hypothesis to finish ends the search, even though the live beam might
        // still find a better one under "never".
        var settings = scriptedSettings(lengthPenalty: 1, earlyStopping: .whenFull)
        settings.width = 1
        settings.numReturn = 1
        let full = try runBeamSearch(Self.scripted, settings: settings)
        #expect(full.best.map(\.tokens) == [[0, 3]])
        #expect(full.steps == 2)
        settings.earlyStopping = .never
        let never = try runBeamSearch(Self.scripted, settings: settings)
        #expect(never.steps > 2)
    }

    @Test("at the maximum length the top width candidates all finish, with reason max_tokens")
    func maxLength() throws {
        var settings = BeamSearchSettings(width: 3, stop: StopConditions(eosTokens: [], maxNewTokens: 2))
        settings.numReturn = 3
        let model = hashedModel(vocab: 10, seed: 77)
        let (best, steps, trace) = try runBeamSearch(model, settings: settings)
        #expect(steps == 2)
        #expect(trace[1].finished.count == 3)
        #expect(best.allSatisfy { $0.tokens.count == 2 && $0.finishReason == .maxTokens })
        #expect(trace[1].beams.isEmpty)
    }

    @Test("a stop sequence finishes a beam like EOS does")
    func stopSequence() throws {
        var settings = BeamSearchSettings(width: 2, stop: StopConditions(eosTokens: [3], stopSequences: [[1, 0]], maxNewTokens: 10))
        settings.numReturn = 2
        let (best, _, _) = try runBeamSearch(Self.scripted, settings: settings)
        #expect(best.contains { $0.tokens == [1, 0] && $0.finishReason == .stopSequence })
    }

    @Test("processors run on the log-softmaxed rows: a banned token never appears")
    func processors() throws {
        var processors = ProcessorSettings()
        processors.bannedTokens = [0]
        let (best, _, trace) = try runBeamSearch(Self.scripted, settings: scriptedSettings(lengthPenalty: 1, earlyStopping: .heuristic), processors: processors)
        #expect(trace.allSatisfy { $0.beams.allSatisfy { $0.token != 0 } })
        #expect(best.allSatisfy { !$0.tokens.contains(0) })
        // Step 1 without token a: b (ln .3), then c and EOS tied (ln .1); c ranks before EOS, so
        // EOS is third, outside the top 2, and is dropped.
        #expect(trace[0].beams.map(\.token) == [1, 2])
        #expect(trace[0].finished.isEmpty)
    }

    @Test("the stable prefix grows once every live beam and kept hypothesis agrees")
    func stablePrefix() throws {
        // Two beams that both continue "b": the model makes everything after "b" near-certain.
        let model: ToyModel = { prefix in
            if prefix.isEmpty { return [0, 5, 0, -20].map(Float.init) }
            return [4, 3, -1, -20].map(Float.init)
        }
        var settings = BeamSearchSettings(width: 2, stop: StopConditions(eosTokens: [3], maxNewTokens: 4))
        settings.numReturn = 2
        let (_, _, trace) = try runBeamSearch(model, settings: settings)
        // Step 1 keeps b and (a or c): nothing is stable. From step 2 on, both beams start with b.
        #expect(trace[0].stablePrefixLength == 0)
        #expect(trace[1].stablePrefixLength == 1)
        #expect(trace.map(\.stablePrefixLength) == trace.map(\.stablePrefixLength).sorted(), "never shrinks")
    }

    @Test("misuse is refused: wrong row count, stepping after the end")
    func misuse() throws {
        var search = BeamSearch(settings: BeamSearchSettings(width: 2, stop: StopConditions(eosTokens: [3], maxNewTokens: 1)))
        let rows: [[Float]] = [[0, 1, 2, 3], [0, 1, 2, 3]]
        let wrong = #expect(throws: BeamSearchError.self) {
            try rows.withContiguousRows { try search.advance(rows: $0, pipeline: LogitsPipeline(settings: ProcessorSettings()), workspace: Workspace()) }
        }
        #expect(wrong == .wrongRowCount(expected: 1, got: 2))
        _ = try [rows[0]].withContiguousRows { try search.advance(rows: $0, pipeline: LogitsPipeline(settings: ProcessorSettings()), workspace: Workspace()) }
        #expect(search.isDone)
        let finished = #expect(throws: BeamSearchError.self) {
            try [rows[0]].withContiguousRows { try search.advance(rows: $0, pipeline: LogitsPipeline(settings: ProcessorSettings()), workspace: Workspace()) }
        }
        #expect(finished == .finished)
    }
}

@Suite("Stop conditions")
struct StopConditionTests {
    /// (generated tokens, expected reason) with EOS {2, 9}, stop sequences [4, 5] and [7], max 6.
    static let cases: [([Int], FinishReason?)] = [
        ([1], nil),
        ([1, 2], .eos),
        ([9], .eos),
        ([4, 5], .stopSequence),
        ([1, 4], nil),
        ([5, 4], nil),
        ([3, 7], .stopSequence),
        ([1, 1, 1, 1, 1, 1], .maxTokens),
        ([1, 1, 1, 1, 4, 5], .stopSequence),
        ([1, 1, 1, 1, 1, 2], .eos),
    ]

    @Test("EOS first, then stop sequences, then the token budget", arguments: cases)
    func reason(generated: [Int], expected: FinishReason?) {
        let stop = StopConditions(eosTokens: [2, 9], stopSequences: [[4, 5], [7]], maxNewTokens: 6)
        #expect(stop.finishReason(generated) == expected)
    }
}
