import Decoding
import Foundation
import Testing

/// Reports against Float64 references: each logprobs mode's distribution, the raw rank, named
/// tokens' log-probabilities, the support; dense and sparse rows alike.
@Suite struct TokenReportTests {
    static let vocab = 300

    static func logits(seed: UInt64) -> [Float] {
        var random = SplitMix64(state: seed)
        return (0..<vocab).map { _ in Float(random.normal(sigma: 2.5)) }
    }

    static let configurations: [(String, ProcessorSettings)] = {
        func settings(_ configure: (inout ProcessorSettings) -> Void) -> ProcessorSettings {
            var s = ProcessorSettings()
            configure(&s)
            return s
        }
        return [
            ("plain", settings { _ in }),
            ("temperature, top-k, top-p", settings { $0.temperature = 0.7; $0.topK = 20; $0.topP = 0.9 }),
            ("penalty, bias, min-p", settings { $0.repetitionPenalty = 1.4; $0.logitBias = [5: 3, 9: -2]; $0.minP = 0.05; $0.temperature = 1.3 }),
            ("banned, typical", settings { $0.bannedTokens = [1, 2, 3]; $0.typicalP = 0.8 }),
        ]
    }()

    static let history = TokenHistory(prompt: [4, 5, 6], generated: [7, 5])
    static let named = [0, 5, 9, 17, 42, 299]

    /// The reference distribution of each mode: log-softmax of the raw row, of the chain without its
    /// truncating stages, of the whole chain.
    static func references(_ values: [Double], _ settings: ProcessorSettings, sampling: Bool) -> [LogprobsMode: [Double]] {
        var untruncated = settings
        untruncated.order = settings.order.filter { !$0.truncates }
        return [
            .raw: Reference.logSoftmax(values),
            .temperature: Reference.logSoftmax(ReferenceChain.run(values, untruncated, history: history, sampling: sampling)),
            .processed: Reference.logSoftmax(ReferenceChain.run(values, settings, history: history, sampling: sampling)),
        ]
    }

    static func close(_ a: Float, _ b: Double) -> Bool {
        a == -.infinity ? b == -.infinity : abs(Double(a) - b) <= 2e-4 * max(1, abs(b))
    }

    @Test("every mode's log-probabilities, ranks, named tokens and support match the Float64 references", arguments: LogitDType.allCases)
    func againstReferences(dtype: LogitDType) throws {
        let workspace = Workspace()
        for seed in UInt64(1)...4 {
            let row = EncodedRow(Self.logits(seed: seed), dtype: dtype)
            for (name, settings) in Self.configurations {
                for (sampling, generatorSeed) in [(false, UInt64?.none), (true, UInt64?(seed))] {
                    let selector = TokenSelector(settings: settings, seed: generatorSeed)
                    let references = Self.references(row.values, settings, sampling: sampling)
                    let support = references[.processed]!.indices.filter { references[.processed]![$0] > -.infinity }
                    for step in 0..<3 {
                        let plain = try row.withRow { try selector.choose(from: $0, history: Self.history, sequence: 0, step: step, workspace: workspace) }
                        for mode in LogprobsMode.allCases {
                            let request = ReportRequest(mode: mode, alternatives: 3, rank: true, tokenIDs: Self.named, support: true)
                            let report = try row.withRow { try selector.report(from: $0, history: Self.history, sequence: 0, step: step, request: request, workspace: workspace) }
                            let reference = references[mode]!
                            let label = "\(name) \(dtype) seed \(seed) sampling \(sampling) step \(step) \(mode)"
                            #expect(report.choice.token == plain.token, "\(label): the mode changed the choice")
                            #expect(Self.close(report.choice.logprob, reference[plain.token]), "\(label): \(report.choice.logprob) vs \(reference[plain.token])")
                            #expect(report.rank == row.values.filter { $0 >= row.values[plain.token] }.count, "\(label): rank")
                            #expect(report.support == support, "\(label): support")
                            for (token, logprob) in zip(Self.named, report.tokenLogprobs) {
                                #expect(Self.close(logprob, reference[token]), "\(label): token \(token) \(logprob) vs \(reference[token])")
                            }
                            #expect(report.tokenLogprobs.count == Self.named.count)
                            let top = ReferenceChain.descending(reference).prefix(3)
                            #expect(report.alternatives.map(\.token) == Array(top), "\(label): alternatives")
                            for alternative in report.alternatives { #expect(Self.close(alternative.logprob, reference[alternative.token])) }
                        }
                    }
                }
            }
        }
    }

    @Test("a sparse row reports what the dense row with -inf elsewhere reports")
    func sparseEqualsDense() throws {
        let workspace = Workspace()
        for seed in UInt64(10)...13 {
            var logits = Self.logits(seed: seed)
            let kept = Set(ReferenceChain.descending(logits.map(Double.init)).prefix(40) + Self.named.prefix(2))
            for t in logits.indices where !kept.contains(t) { logits[t] = -.infinity }
            let candidates = kept.sorted().reversed().map { Candidate(token: $0, logit: logits[$0]) }
            for (name, settings) in Self.configurations {
                let selector = TokenSelector(settings: settings, seed: seed)
                for mode in LogprobsMode.allCases {
                    let request = ReportRequest(mode: mode, alternatives: 4, rank: true, tokenIDs: Self.named, support: true)
                    let dense = try logits.withUnsafeBytes {
                        try selector.report(from: LogitRow(bytes: $0, dtype: .float32), history: Self.history, sequence: 2, step: 1, request: request, workspace: workspace)
                    }
                    let sparse = try selector.report(fromSparse: candidates, vocab: Self.vocab, history: Self.history, sequence: 2, step: 1, request: request, workspace: workspace)
                    let label = "\(name) seed \(seed) \(mode)"
                    #expect(sparse.choice.token == dense.choice.token, "\(label)")
                    #expect(abs(sparse.choice.logprob - dense.choice.logprob) <= 1e-5 * max(1, abs(dense.choice.logprob)), "\(label)")
                    #expect(sparse.rank == dense.rank, "\(label)")
                    #expect(sparse.support == dense.support, "\(label)")
                    #expect(sparse.alternatives.map(\.token) == dense.alternatives.map(\.token), "\(label)")
                    for (a, b) in zip(sparse.tokenLogprobs, dense.tokenLogprobs) {
                        #expect(a == b || abs(a - b) <= 1e-5 * max(1, abs(b)), "\(label): \(a) vs \(b)")
                    }
                }
            }
        }
    }

    @Test("rank counts ties against the token and reads masked tokens as -inf")
    func rankTiesAndMasks() throws {
        let logits: [Float] = [1, 3, 3, 2, 3, -.infinity, 0]
        let selector = TokenSelector(settings: ProcessorSettings(), seed: nil)
        let report = try logits.withUnsafeBytes {
            try selector.report(from: LogitRow(bytes: $0, dtype: .float32), history: TokenHistory(), sequence: 0, step: 0, request: ReportRequest(rank: true), workspace: Workspace())
        }
        #expect(report.choice.token == 1)
        #expect(report.rank == 3)
        // A mask allowing tokens 0, 3 and 6 only: the argmax is 3, ranked first.
        let mask: [UInt32] = [0b100_1001]
        let masked = try logits.withUnsafeBytes { raw in
            try mask.withUnsafeBytes {
                try selector.report(from: LogitRow(bytes: raw, dtype: .float32, mask: $0), history: TokenHistory(), sequence: 0, step: 0, request: ReportRequest(mode: .raw, rank: true), workspace: Workspace())
            }
        }
        #expect(masked.choice.token == 3 && masked.rank == 1)
        #expect(abs(Double(masked.choice.logprob) - Reference.logSoftmax([1, 2, 0])[1]) < 1e-6)
    }
}
