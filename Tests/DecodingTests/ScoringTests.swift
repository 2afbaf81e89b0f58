import Decoding
import Foundation
import Testing

/// SCORE's and CLASSIFY's engine against Float64 references.
@Suite struct ScoringTests {
    static let vocab = 1_000

    static func reference(_ values: [Double], _ settings: ProcessorSettings, _ history: TokenHistory) -> [Double] {
        Reference.logSoftmax(ReferenceChain.run(values, settings, history: history, sampling: true))
    }

    static func entropy(_ logprobs: [Double]) -> Double {
        -logprobs.reduce(0) { $1 > -.infinity ? $0 + exp($1) * $1 : $0 }
    }

    @Test("log p, raw log p, rank and entropy of observed tokens under stated processors", arguments: LogitDType.allCases)
    func score(dtype: LogitDType) throws {
        var random = SplitMix64(state: 77)
        let workspace = Workspace()
        var settings: [ProcessorSettings] = [ProcessorSettings()]
        var warm = ProcessorSettings()
        warm.temperature = 1.6
        warm.topK = 50
        settings.append(warm)
        var penalised = ProcessorSettings()
        penalised.repetitionPenalty = 1.5
        penalised.topP = 0.9
        settings.append(penalised)
        for chain in settings {
            let pipeline = LogitsPipeline(settings: chain)
            var observed: [Int] = [3, 8]
            for _ in 0..<6 {
                let row = EncodedRow((0..<Self.vocab).map { _ in Float(random.normal(sigma: 3)) }, dtype: dtype)
                let history = TokenHistory(prompt: [1, 2], generated: observed)
                let reference = Self.reference(row.values, chain, history)
                let raw = Reference.logSoftmax(row.values)
                // A likely token and an unlikely one (which top-k or top-p may remove).
                for token in [ReferenceChain.descending(row.values)[1], ReferenceChain.descending(row.values)[900]] {
                    let score = try row.withRow { try pipeline.score(token, row: $0, history: history, workspace: workspace) }
                    if reference[token] == -.infinity {
                        #expect(score.logprob == -.infinity)
                    } else {
                        #expect(abs(Double(score.logprob) - reference[token]) <= 2e-4 * max(1, abs(reference[token])))
                    }
                    #expect(abs(Double(score.rawLogprob) - raw[token]) <= 2e-4 * max(1, abs(raw[token])))
                    #expect(score.rank == row.values.filter { $0 >= row.values[token] }.count)
                    #expect(abs(Double(score.entropy) - Self.entropy(reference)) <= 1e-4 * max(1, Self.entropy(reference)), "\(score.entropy) vs \(Self.entropy(reference))")
                }
                observed.append(ReferenceChain.descending(row.values)[0])
            }
        }
    }

    @Test("a one-hot row has entropy 0; a uniform row has ln V")
    func entropyBounds() throws {
        let pipeline = LogitsPipeline(settings: ProcessorSettings())
        var peaked = [Float](repeating: -.infinity, count: 37)
        peaked[5] = 2
        let uniform = [Float](repeating: 0.25, count: 37)
        let one = try peaked.withUnsafeBytes { try pipeline.score(5, row: LogitRow(bytes: $0, dtype: .float32), history: TokenHistory(), workspace: Workspace()) }
        let flat = try uniform.withUnsafeBytes { try pipeline.score(5, row: LogitRow(bytes: $0, dtype: .float32), history: TokenHistory(), workspace: Workspace()) }
        #expect(one.entropy == 0 && one.logprob == 0 && one.rank == 1)
        #expect(abs(Double(flat.entropy) - log(37)) < 1e-6 && flat.rank == 37)
    }

    @Test("classification: the softmax over the named tokens and their log mass")
    func classify() throws {
        var random = SplitMix64(state: 5)
        let logits = (0..<Self.vocab).map { _ in Float(random.normal(sigma: 2)) }
        let tokens = [10, 500, 999]
        for temperature: Float in [1, 0.5, 2] {
            let (probabilities, logMass) = try logits.withUnsafeBytes { try Classification.classify(LogitRow(bytes: $0, dtype: .float32), tokens: tokens, temperature: temperature) }
            let scaled = logits.map { Double($0) / Double(temperature) }
            let full = Reference.logSoftmax(scaled)
            let subset = Reference.softmax(tokens.map { scaled[$0] })
            for (a, b) in zip(probabilities, subset) { #expect(abs(Double(a) - b) < 1e-6) }
            let mass = log(tokens.reduce(0) { $0 + exp(full[$1]) })
            #expect(abs(Double(logMass) - mass) < 1e-5 * max(1, abs(mass)))
        }
        let masked = [Float](repeating: -.infinity, count: 4) + [1]
        #expect(throws: LogitRowError.noCandidates) {
            try masked.withUnsafeBytes { try Classification.classify(LogitRow(bytes: $0, dtype: .float32), tokens: [0, 2]) }
        }
    }
}
