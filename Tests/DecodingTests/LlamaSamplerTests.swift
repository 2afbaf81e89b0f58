import Decoding
import Foundation
import Testing

/// top-n-σ, XTC, mirostat 2.0 and dynamic temperature against literal Float64 ports of
/// llama.cpp's loops (ReferenceChain), on dense rows of every dtype and on candidate lists, and by
/// chi-square where they sample.
@Suite struct LlamaSamplerTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let logits: [Float]
        let settings: ProcessorSettings
        let state: StageState
        var testDescription: String { name }

        init(_ name: String, _ logits: [Float], state: StageState = StageState(), _ configure: (inout ProcessorSettings) -> Void) {
            self.name = name
            self.logits = logits
            var settings = ProcessorSettings()
            configure(&settings)
            self.settings = settings
            self.state = state
        }
    }

    static let fired = StageState(xtcCoin: 0.05)
    static let cases: [Case] = [
        Case("top-n-σ 1, V=1000", normal1000) { $0.topNSigma = 1 },
        Case("top-n-σ 2.5 at temperature 0.5 (temperature-invariant), V=32,000", normal32k) { $0.topNSigma = 2.5; $0.temperature = 0.5 },
        Case("top-n-σ ignores masked logits", small) { $0.topNSigma = 0.5 },
        Case("top-k then top-n-σ (sparse)", normal1000) { $0.topK = 40; $0.topNSigma = 1 },
        Case("XTC fired, threshold 0.1", small, state: fired) { $0.xtcProbability = 0.5; $0.xtcThreshold = 0.1 },
        Case("XTC fired, threshold 0.01 at temperature 0.3, V=1000", normal1000, state: fired) { $0.xtcProbability = 0.5; $0.xtcThreshold = 0.01; $0.temperature = 0.3 },
        Case("XTC fired but min_tokens_to_keep blocks it", small, state: fired) { $0.xtcProbability = 0.5; $0.xtcThreshold = 0.01; $0.minTokensToKeep = 9 },
        Case("XTC's coin above the probability changes nothing", small, state: StageState(xtcCoin: 0.7)) { $0.xtcProbability = 0.5; $0.xtcThreshold = 0.01 },
        Case("top-k then XTC (sparse)", normal1000, state: fired) { $0.topK = 30; $0.xtcProbability = 1; $0.xtcThreshold = 0.05; $0.temperature = 0.5 },
        Case("mirostat μ 3 bits, V=1000", normal1000, state: StageState(mirostatMu: 3)) { $0.mirostatTau = 1.5 },
        Case("mirostat μ 9 bits at temperature 1.5, V=32,000", normal32k, state: StageState(mirostatMu: 9)) { $0.mirostatTau = 4; $0.temperature = 1.5 },
        Case("mirostat μ below every surprise keeps one", small, state: StageState(mirostatMu: 0.01)) { $0.mirostatTau = 1 },
        Case("top-k then mirostat (sparse)", normal1000, state: StageState(mirostatMu: 2)) { $0.topK = 50; $0.mirostatTau = 1 },
        Case("dynamic temperature 1 ± 0.5, V=1000", normal1000) { $0.dynatempRange = 0.5 },
        Case("dynamic temperature 0.7 ± 0.7, exponent 2, V=32,000", normal32k) { $0.temperature = 0.7; $0.dynatempRange = 0.7; $0.dynatempExponent = 2 },
        Case("top-k then dynamic temperature (sparse)", normal1000) { $0.topK = 20; $0.dynatempRange = 0.9; $0.order = [.topK, .temperature] },
        Case("all four", normal1000, state: StageState(xtcCoin: 0.01, mirostatMu: 6)) {
            $0.dynatempRange = 0.3; $0.topNSigma = 2; $0.xtcProbability = 0.2; $0.xtcThreshold = 0.02; $0.mirostatTau = 3
        },
    ]

    static func check(_ actual: [Double], _ expected: [Double], _ label: String) {
        let expectedKept = Set(expected.indices.filter { expected[$0] > -.infinity })
        let actualKept = Set(actual.indices.filter { actual[$0] > -.infinity })
        #expect(actualKept == expectedKept, "\(label): kept \(actualKept.count), expected \(expectedKept.count)")
        for t in expectedKept.intersection(actualKept) {
            #expect(abs(actual[t] - expected[t]) <= 1e-5 * max(1, abs(expected[t])), "\(label) token \(t): \(actual[t]) vs \(expected[t])")
        }
    }

    @Test("each sampler keeps the reference's tokens with its logits", arguments: cases)
    func matchesReference(chain: Case) throws {
        let workspace = Workspace()
        let pipeline = LogitsPipeline(settings: chain.settings)
        for dtype in LogitDType.allCases {
            let encoded = EncodedRow(chain.logits, dtype: dtype)
            let expected = ReferenceChain.run(encoded.values, chain.settings, history: TokenHistory(), sampling: true, state: chain.state)
            let dense = try encoded.withRow { row in
                denseRow(try pipeline.candidates(for: row, history: TokenHistory(), sampling: true, state: chain.state, workspace: workspace), vocab: row.count)
            }
            Self.check(dense, expected, "\(chain.name) \(dtype) dense")
            let candidates = encoded.values.indices.filter { encoded.values[$0] > -.infinity }.map { Candidate(token: $0, logit: Float(encoded.values[$0])) }
            let sparse = denseRow(try pipeline.candidates(forSparse: candidates, history: TokenHistory(), sampling: true, state: chain.state), vocab: chain.logits.count)
            Self.check(sparse, expected, "\(chain.name) \(dtype) candidates")
        }
    }

    @Test("XTC's seeded coin: 20,000 draws follow the mixture of the excluded and the plain distribution")
    func xtcMixture() throws {
        var settings = ProcessorSettings()
        settings.xtcProbability = 0.4
        settings.xtcThreshold = 0.03
        settings.topNSigma = 3
        let logits = RowCase.normal(200, sigma: 1.5, seed: 21)
        let values = logits.map(Double.init)
        let plain = ReferenceChain.softmax(ReferenceChain.run(values, settings, history: TokenHistory(), sampling: true, state: StageState(xtcCoin: 0.9)))
        let excluded = ReferenceChain.softmax(ReferenceChain.run(values, settings, history: TokenHistory(), sampling: true, state: StageState(xtcCoin: 0)))
        #expect(plain != excluded, "the case must make XTC remove something")
        let expected = zip(plain, excluded).map { 0.6 * $0 + 0.4 * $1 }
        let selector = TokenSelector(settings: settings, seed: 99)
        let workspace = Workspace()
        let draws = 20_000
        var counts = [Int](repeating: 0, count: logits.count)
        var fired = 0
        try logits.withUnsafeBytes { bytes in
            let row = LogitRow(bytes: bytes, dtype: .float32)
            for step in 0..<draws {
                counts[try selector.choose(from: row, history: TokenHistory(), sequence: 0, step: step, workspace: workspace).token] += 1
                if selector.stageState(sequence: 0, step: step, mirostatMu: nil).xtcCoin! < 0.4 { fired += 1 }
            }
        }
        let (statistic, cells) = chiSquareStatistic(counts, expected, draws: draws)
        #expect(statistic < chiSquareCritical(df: cells - 1), "chi-square \(statistic) over \(cells) cells")
        #expect(abs(Double(fired) / Double(draws) - 0.4) < 0.02)
    }

    @Test("mirostat: 20,000 first draws follow the truncated distribution at μ₀ = 2τ; μ moves by η·(surprise − τ)")
    func mirostatDraws() throws {
        var settings = ProcessorSettings()
        settings.mirostatTau = 2
        settings.mirostatEta = 0.25
        let logits = RowCase.normal(300, sigma: 2, seed: 22)
        let expected = ReferenceChain.softmax(ReferenceChain.run(logits.map(Double.init), settings, history: TokenHistory(), sampling: true, state: StageState(mirostatMu: 4)))
        let selector = TokenSelector(settings: settings, seed: 5)
        let workspace = Workspace()
        let draws = 20_000
        var counts = [Int](repeating: 0, count: logits.count)
        try logits.withUnsafeBytes { bytes in
            let row = LogitRow(bytes: bytes, dtype: .float32)
            for step in 0..<draws {
                let report = try selector.report(from: row, history: TokenHistory(), sequence: 0, step: step, request: ReportRequest(), mirostatMu: 4, workspace: workspace)
                counts[report.choice.token] += 1
                let surprise = -log2(expected[report.choice.token])
                #expect(abs(Double(report.mirostatMu!) - (4 - 0.25 * (surprise - 2))) < 1e-4)
            }
        }
        #expect(counts.indices.allSatisfy { counts[$0] == 0 || expected[$0] > 0 })
        let (statistic, cells) = chiSquareStatistic(counts, expected, draws: draws)
        #expect(cells >= 2 && statistic < chiSquareCritical(df: cells - 1), "chi-square \(statistic) over \(cells) cells")
    }

    @Test("20,000 seeded draws under top-n-σ, dynamic temperature and DRY follow the reference distribution", arguments: [0, 1, 2])
    func draws(configuration: Int) throws {
        var settings = ProcessorSettings()
        switch configuration {
        case 0: settings.topNSigma = 1.2; settings.temperature = 1.5
        case 1: settings.dynatempRange = 0.6; settings.dynatempExponent = 0.7
        default: settings.dryMultiplier = 1.5; settings.dryAllowedLength = 1; settings.temperature = 0.8
        }
        let logits = RowCase.normal(150, sigma: 1.2, seed: 40 + UInt64(configuration))
        let history = TokenHistory(prompt: [3, 7, 9, 3, 7], generated: [9, 3])
        let expected = ReferenceChain.softmax(ReferenceChain.run(logits.map(Double.init), settings, history: history, sampling: true))
        let selector = TokenSelector(settings: settings, seed: 1234)
        let workspace = Workspace()
        let draws = 20_000
        var counts = [Int](repeating: 0, count: logits.count)
        try logits.withUnsafeBytes { bytes in
            let row = LogitRow(bytes: bytes, dtype: .float32)
            for step in 0..<draws { counts[try selector.choose(from: row, history: history, sequence: 1, step: step, workspace: workspace).token] += 1 }
        }
        #expect(counts.indices.allSatisfy { counts[$0] == 0 || expected[$0] > 0 }, "drew a token the chain removed")
        let (statistic, cells) = chiSquareStatistic(counts, expected, draws: draws)
        #expect(cells >= 2 && statistic < chiSquareCritical(df: cells - 1), "chi-square \(statistic) over \(cells) cells")
    }

    @Test("out-of-domain options are refused by name")
    func domains() {
        let bad: [(String, (inout ProcessorSettings) -> Void)] = [
            ("top_n_sigma", { $0.topNSigma = -1 }), ("xtc_probability", { $0.xtcProbability = 1.5 }), ("xtc_threshold", { $0.xtcThreshold = -0.1 }),
            ("dynatemp_range", { $0.dynatempRange = .infinity }), ("dynatemp_exponent", { $0.dynatempExponent = 0 }),
            ("mirostat_tau", { $0.mirostatTau = -2 }), ("mirostat_eta", { $0.mirostatEta = 0 }),
        ]
        for (name, configure) in bad {
            var settings = ProcessorSettings()
            configure(&settings)
            #expect(throws: ParameterError.self) { try settings.validate(vocab: 10) }
            do { try settings.validate(vocab: 10) } catch { #expect(error.name == name) }
        }
    }
}

/// DRY against llama.cpp's own known answers (tests/test-sampling.cpp, test_dry) and a brute-force
/// Float64 port on random repetitive histories.
@Suite struct DRYTests {
    /// llama.cpp's cases: probabilities in, the context, probabilities out; multiplier, base,
    /// allowed length, last n, sequence breakers.
    static let knownAnswers: [([Float], [Int], [Double], Float, Float, Int, Int, [[Int]])] = [
        ([0.25, 0.25, 0.25, 0.25], [0, 1], [0.25, 0.25, 0.25, 0.25], 1, 1.1, 2, 4, []),
        ([0.25, 0.25, 0.25, 0.25], [0, 1, 2, 0, 1], [0.296923, 0.296923, 0.109232, 0.296923], 1, 1.1, 2, 5, []),
        ([0.2, 0.2, 0.2, 0.2, 0.2], [0, 1, 3, 4, 0, 1], [0.2, 0.2, 0.2, 0.2, 0.2], 1, 1.1, 2, 6, [[3]]),
        ([0.2, 0.2, 0.2, 0.2, 0.2], [0, 1, 2, 0, 1], [0.241818, 0.241818, 0.032727, 0.241818, 0.241818], 2, 1.1, 2, 5, []),
        ([0.2, 0.2, 0.2, 0.2, 0.2], [0, 1, 2, 3, 4, 0, 1], [0.2, 0.2, 0.2, 0.2, 0.2], 1, 1.1, 4, 7, []),
    ]

    @Test("llama.cpp's known answers")
    func knownAnswers() throws {
        for (probabilities, context, expected, multiplier, base, allowed, lastN, breakers) in Self.knownAnswers {
            var settings = ProcessorSettings()
            settings.dryMultiplier = multiplier
            settings.dryBase = base
            settings.dryAllowedLength = allowed
            settings.dryPenaltyLastN = lastN
            settings.drySequenceBreakers = breakers
            let logits = probabilities.map { log($0) }
            let workspace = Workspace()
            let row = try logits.withUnsafeBytes {
                denseRow(try LogitsPipeline(settings: settings).candidates(for: LogitRow(bytes: $0, dtype: .float32), history: TokenHistory(generated: context), sampling: false, workspace: workspace), vocab: logits.count)
            }
            let result = Reference.softmax(row)
            for (a, b) in zip(result, expected) { #expect(abs(a - b) < 1e-5, "\(context): \(result) vs \(expected)") }
        }
    }

    @Test("random repetitive histories: the Z-algorithm gives the brute force's penalties, dense and sparse")
    func againstBruteForce() throws {
        var random = SplitMix64(state: 31)
        let logits = RowCase.normal(12, sigma: 1, seed: 32)
        let workspace = Workspace()
        for trial in 0..<200 {
            // Short alphabets make long repeats; breakers of one and two tokens.
            let length = 5 + Int(random.next() % 60)
            let context = (0..<length).map { _ in Int(random.next() % 4) }
            var settings = ProcessorSettings()
            settings.dryMultiplier = 0.8
            settings.dryBase = [1.75, 1.1, 3][trial % 3]
            settings.dryAllowedLength = 1 + trial % 3
            settings.dryPenaltyLastN = [-1, 20, 7][trial % 3]
            settings.drySequenceBreakers = trial % 4 == 0 ? [] : [[3], [2, 1]]
            let history = TokenHistory(prompt: Array(context.prefix(length / 3)), generated: Array(context.dropFirst(length / 3)))
            let expected = ReferenceChain.run(logits.map(Double.init), settings, history: history, sampling: false)
            let pipeline = LogitsPipeline(settings: settings)
            let dense = try logits.withUnsafeBytes { denseRow(try pipeline.candidates(for: LogitRow(bytes: $0, dtype: .float32), history: history, sampling: false, workspace: workspace), vocab: 12) }
            let sparse = denseRow(try pipeline.candidates(forSparse: logits.indices.map { Candidate(token: $0, logit: logits[$0]) }, history: history, sampling: false), vocab: 12)
            for t in 0..<12 {
                #expect(abs(dense[t] - expected[t]) <= 1e-5 * max(1, abs(expected[t])), "trial \(trial) token \(t): \(dense[t]) vs \(expected[t])")
                #expect(abs(sparse[t] - expected[t]) <= 1e-5 * max(1, abs(expected[t])), "trial \(trial) token \(t) (sparse)")
            }
        }
    }
}

