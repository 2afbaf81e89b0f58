import Dispatch
import Decoding
import Foundation
import Testing

/// The 0.001 critical value of chi-square with `df` degrees of freedom (Wilson–Hilferty).
func chiSquareCritical(df: Int) -> Double {
    let d = Double(df)
    let z = 3.090  // standard normal quantile at 0.999
    return d * pow(1 - 2 / (9 * d) + z * (2 / (9 * d)).squareRoot(), 3)
}

/// Pearson's statistic of observed `counts` against `expected` probabilities over `draws`, and its
/// number of cells; tokens with fewer than 5 expected draws are pooled into one cell, as the test
/// requires.
func chiSquareStatistic(_ counts: [Int], _ expected: [Double], draws: Int) -> (statistic: Double, cells: Int) {
    var statistic = 0.0, cells = 0, pooledExpected = 0.0, pooledObserved = 0.0
    for t in expected.indices where expected[t] > 0 {
        let e = expected[t] * Double(draws)
        if e < 5 {
            pooledExpected += e
            pooledObserved += Double(counts[t])
        } else {
            statistic += (Double(counts[t]) - e) * (Double(counts[t]) - e) / e
            cells += 1
        }
    }
    if pooledExpected >= 5 {
        statistic += (pooledObserved - pooledExpected) * (pooledObserved - pooledExpected) / pooledExpected
        cells += 1
    }
    return (statistic, cells)
}

struct SamplingCase: CustomTestStringConvertible, Sendable {
    let name: String
    let logits: [Float]
    let dtype: LogitDType
    let settings: ProcessorSettings
    var testDescription: String { name }

    init(_ name: String, _ logits: [Float], dtype: LogitDType = .float32, _ configure: (inout ProcessorSettings) -> Void) {
        self.name = name
        self.logits = logits
        self.dtype = dtype
        var settings = ProcessorSettings()
        configure(&settings)
        self.settings = settings
    }
}

let samplingCases: [SamplingCase] = [
    SamplingCase("whole row, V=100 (blocks and tail of the inverse CDF)", RowCase.normal(100, sigma: 1, seed: 21)) { _ in },
    SamplingCase("whole row at temperature 0.5, V=37", RowCase.normal(37, sigma: 1, seed: 22)) { $0.temperature = 0.5 },
    SamplingCase("whole row, bf16 with -inf masks, V=64", RowCase.normal(64, sigma: 1, seed: 23).enumerated().map { $0.offset % 5 == 0 ? -.infinity : $0.element }, dtype: .bfloat16) { _ in },
    SamplingCase("top-k 10", RowCase.normal(300, sigma: 1, seed: 24)) { $0.topK = 10 },
    SamplingCase("top-p 0.8, a heavy boundary token", [3.0, 2.9, 2.0, 1.9, 1.0, 0.5, 0.0, -1.0] + RowCase.normal(50, sigma: 0.5, seed: 25).map { $0 - 3 }) { $0.topP = 0.8 },
    SamplingCase("min-p 0.1", RowCase.normal(400, sigma: 2, seed: 26)) { $0.minP = 0.1 },
    SamplingCase("typical 0.6", RowCase.normal(40, sigma: 1.5, seed: 27)) { $0.typicalP = 0.6 },
    SamplingCase("epsilon 0.02", RowCase.normal(60, sigma: 1.5, seed: 31)) { $0.epsilonCutoff = 0.02 },
    SamplingCase("eta 0.05 at temperature 0.8", RowCase.normal(60, sigma: 1.5, seed: 32)) { $0.etaCutoff = 0.05; $0.temperature = 0.8 },
    SamplingCase("default chain, f16, V=2000", RowCase.normal(2000, sigma: 2.5, seed: 28), dtype: .float16) {
        $0.temperature = 0.8; $0.topK = 40; $0.topP = 0.95; $0.minP = 0.05
    },
    SamplingCase("penalties and bans before sampling", RowCase.normal(30, sigma: 1, seed: 29)) {
        $0.repetitionPenalty = 1.4; $0.bannedTokens = [3, 4]; $0.logitBias = [7: 1.5]; $0.topK = 12
    },
]

@Suite("Sampling: the drawn tokens follow the processed distribution")
struct SamplerTests {
    @Test("chi-square against the exact processed distribution; nothing outside it is drawn", arguments: samplingCases)
    func distribution(sampling: SamplingCase) throws {
        let encoded = EncodedRow(sampling.logits, dtype: sampling.dtype)
        let history = TokenHistory(prompt: [0, 1, 2], generated: [5])
        let processed = ReferenceChain.run(encoded.values, sampling.settings, history: history, sampling: true)
        let expected = ReferenceChain.softmax(processed)
        let selector = TokenSelector(settings: sampling.settings, seed: 20_261_129)
        let workspace = Workspace()
        let draws = 40_000
        var counts = [Int](repeating: 0, count: sampling.logits.count)
        try encoded.withRow { row in
            for step in 0..<draws {
                counts[try selector.choose(from: row, history: history, sequence: 0, step: step, workspace: workspace).token] += 1
            }
        }
        let outside = counts.indices.filter { counts[$0] > 0 && expected[$0] == 0 }
        #expect(outside.isEmpty, "drew tokens the chain removed: \(outside)")
        let (chiSquare, cells) = chiSquareStatistic(counts, expected, draws: draws)
        try #require(cells >= 2, "the case must leave at least two tokens to compare")
        #expect(chiSquare < chiSquareCritical(df: cells - 1), "chi-square \(chiSquare) over \(cells) cells")
    }

    @Test("the reported log-probability is that of the sampling distribution")
    func logprob() throws {
        var settings = ProcessorSettings()
        settings.topK = 3
        settings.temperature = 0.5
        let logits: [Float] = [1, 4, 2, 3, 0]
        let expected = ReferenceChain.softmax(ReferenceChain.run(logits.map(Double.init), settings, history: TokenHistory(), sampling: true))
        let selector = TokenSelector(settings: settings, seed: 5)
        let workspace = Workspace()
        for step in 0..<50 {
            let choice = try logits.withUnsafeBytes { try selector.choose(from: LogitRow(bytes: $0, dtype: .float32), history: TokenHistory(), sequence: 0, step: step, workspace: workspace) }
            #expect(abs(Double(choice.logprob) - log(expected[choice.token])) < 1e-6)
        }
    }

    @Test("temperature 0 is greedy over the edited row, whatever the seed")
    func temperatureZero() throws {
        var settings = ProcessorSettings()
        settings.temperature = 0
        settings.topK = 2
        settings.bannedTokens = [1]
        let logits: [Float] = [1, 4, 2, 3, 0]
        let selector = TokenSelector(settings: settings, seed: 99)
        let choice = try logits.withUnsafeBytes { try selector.choose(from: LogitRow(bytes: $0, dtype: .float32), history: TokenHistory(), sequence: 0, step: 0, workspace: Workspace()) }
        #expect(choice.token == 3)
        let reference = Reference.logSoftmax([1, -Double.infinity, 2, 3, 0])[3]
        #expect(abs(Double(choice.logprob) - reference) < 1e-6)
    }

    @Test("the same seed gives the same tokens on any thread, in any order")
    func deterministicAcrossThreads() throws {
        var settings = ProcessorSettings()
        settings.temperature = 0.9
        settings.topP = 0.95
        let logits = RowCase.normal(5000, sigma: 2, seed: 30)
        let selector = TokenSelector(settings: settings, seed: 7)
        @Sendable func draw(_ sequence: Int, _ step: Int, _ workspace: Workspace) -> Int {
            (try? logits.withUnsafeBytes { try selector.choose(from: LogitRow(bytes: $0, dtype: .float32), history: TokenHistory(), sequence: sequence, step: step, workspace: workspace) })?.token ?? -1
        }
        let serialWorkspace = Workspace()
        let serial = (0..<4).map { sequence in (0..<64).map { draw(sequence, $0, serialWorkspace) } }
        let results = ResultGrid(sequences: 4, steps: 64)
        DispatchQueue.concurrentPerform(iterations: 4 * 64) { job in
            let sequence = job % 4, step = 63 - job / 4
            results.set(sequence, step, draw(sequence, step, Workspace()))
        }
        #expect(results.values == serial)
        #expect(Set(serial.flatMap { $0 }).count > 10, "the draws vary from step to step")
    }
}

final class ResultGrid: @unchecked Sendable {
    private let lock = NSLock()
    private var grid: [[Int]]
    init(sequences: Int, steps: Int) { grid = Array(repeating: Array(repeating: -1, count: steps), count: sequences) }
    func set(_ sequence: Int, _ step: Int, _ value: Int) { lock.withLock { grid[sequence][step] = value } }
    var values: [[Int]] { lock.withLock { grid } }
}
