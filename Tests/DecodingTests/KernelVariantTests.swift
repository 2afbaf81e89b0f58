import Decoding
import Foundation
import Testing

/// Every kernel variant this CPU runs gives the same bits: the results of every public operation
/// (which between them use every kernel) are compared bit for bit across `Kernels.supported`.
/// Switching variants while other suites run is harmless precisely because of this property.
@Suite("Kernel variants", .serialized)
struct KernelVariantTests {
    /// Rows that reach every code path: scalar tails, partial blocks and chunks, -inf masks, ties,
    /// a late spike (the online sum's re-sum), a rise in every chunk (its rescale), f16 subnormals.
    static let rows: [(name: String, logits: [Float])] = {
        var random = SplitMix64(state: 0xC0FFEE)
        func normal(_ count: Int, sigma: Double) -> [Float] { (0..<count).map { _ in Float(random.normal(sigma: sigma)) } }
        var masked = normal(50_021, sigma: 3)
        for index in stride(from: 0, to: masked.count, by: 7) { masked[index] = -.infinity }
        var spike = normal(131_072, sigma: 2)
        spike[120_000] = 150
        let rising = (0..<20_000).map { Float($0) / 40 + Float(random.normal(sigma: 1)) }
        let ties = (0..<4_099).map { Float($0 % 5) }
        let tiny = (0..<300).map { Float($0) * 1e-7 - 1e-5 }
        return [
            ("one", [0.5]), ("fifteen", normal(15, sigma: 1)), ("sixteen", normal(16, sigma: 1)),
            ("seventeen", normal(17, sigma: 1)), ("block+1", normal(129, sigma: 4)), ("chunk+1", normal(2_049, sigma: 4)),
            ("masked", masked), ("spike", spike), ("rising", rising), ("ties", ties), ("tiny", tiny),
            ("vocab", normal(128_256, sigma: 3)),
        ]
    }()

    /// The bit patterns of everything the public API computes on one row (read through `mask`,
    /// little-endian words, when given).
    static func fingerprint(_ logits: [Float], dtype: LogitDType, mask: [UInt32]? = nil, plainPass: Bool = true) throws -> [UInt64] {
        var bits: [UInt64] = []
        func add(_ value: Float) { bits.append(UInt64(value.bitPattern)) }
        func add(_ value: Double) { bits.append(value.bitPattern) }
        func add(_ choice: TokenChoice) { bits.append(UInt64(choice.token)); add(choice.logprob) }
        let row = EncodedRow(logits, dtype: dtype)
        let workspace = Workspace()
        try row.withRow(mask: mask) { row in
            // The plain pass is the benchmarks' yardstick, a sum of what is stored (no mask).
            if plainPass { add(Kernels.plainPass(row)) }
            let maximum = try row.validatedMaximum()
            bits.append(UInt64(maximum.index)); add(maximum.value)
            for scale: Float in [1, 0.7, 2.5] {
                let (_, sum) = try row.validatedNormaliser(scale: scale)
                add(sum)
            }
            add(try Softmax.logSumExp(of: row))
            var output = [Float](repeating: 0, count: row.count)
            try output.withUnsafeMutableBufferPointer { out in
                try Softmax.probabilities(of: row, temperature: 0.8, into: out)
                out.forEach(add)
                // A draft distribution's check: its sum, in Double.
                add(try DraftDistribution.dense(LogitRow(bytes: UnsafeRawBufferPointer(out), dtype: .float32)).validated(position: 0, token: maximum.index))
                try Softmax.logProbabilities(of: row, into: out)
                out.forEach(add)
            }
            add(try Greedy.choose(from: row))
            let settings: [(inout ProcessorSettings) -> Void] = [
                { _ in }, { $0.temperature = 0.7 }, { $0.topK = 40 }, { $0.topP = 0.9 }, { $0.minP = 0.05 },
                { $0.typicalP = 0.9 }, { $0.temperature = 0.8; $0.topK = 40; $0.topP = 0.95; $0.minP = 0.02 },
                { $0.repetitionPenalty = 1.3; $0.topP = 0.8 }, { $0.temperature = 0 },
                { $0.xtcProbability = 1; $0.xtcThreshold = 0.05; $0.topNSigma = 1.5; $0.dynatempRange = 0.4 },
            ]
            let history = TokenHistory(prompt: [0, 3, 5], generated: [2, 2])
            for configure in settings {
                var processor = ProcessorSettings()
                configure(&processor)
                let selector = TokenSelector(settings: processor, seed: 42)
                for step in 0..<4 {
                    let mode = LogprobsMode.allCases[step % 3]
                    let report = try selector.report(from: row, history: history, sequence: 1, step: step,
                                                     request: ReportRequest(mode: mode, alternatives: 3, rank: true, tokenIDs: [0, row.count - 1], support: true), workspace: workspace)
                    add(report.choice)
                    report.alternatives.forEach(add)
                    bits += [UInt64(report.rank ?? 0), UInt64(report.support?.count ?? 0)] + report.tokenLogprobs.map { UInt64($0.bitPattern) }
                }
                let score = try selector.pipeline.score(row.count / 2, row: row, history: history, workspace: workspace)
                bits += [score.logprob, score.rawLogprob, score.entropy].map { UInt64($0.bitPattern) } + [UInt64(score.rank)]
            }
        }
        return bits
    }

    @Test("every operation gives the same bits on every supported variant, in every dtype")
    func sameBits() throws {
        let original = Kernels.active
        defer { try? Kernels.use(original) }
        for dtype in LogitDType.allCases {
            for (name, logits) in Self.rows {
                var reference: (KernelVariant, [UInt64])?
                for variant in Kernels.supported {
                    try Kernels.use(variant)
                    let bits = try Self.fingerprint(logits, dtype: dtype)
                    if let (first, expected) = reference {
                        #expect(bits == expected, "\(name) \(dtype): \(variant) differs from \(first)")
                    } else {
                        reference = (variant, bits)
                    }
                }
            }
        }
    }

    @Test("beam search keeps the same beams and scores on every supported variant")
    func sameBeams() throws {
        let original = Kernels.active
        defer { try? Kernels.use(original) }
        var random = SplitMix64(state: 7)
        let vocab = 32_003
        let steps = (0..<5).map { _ in (0..<4).map { _ in (0..<vocab).map { _ in Float(random.normal(sigma: 3)) } } }
        var results: [(KernelVariant, [BeamStep])] = []
        for variant in Kernels.supported {
            try Kernels.use(variant)
            var settings = BeamSearchSettings(width: 4, stop: StopConditions(eosTokens: [2], maxNewTokens: 20))
            settings.numReturn = 2
            var processing = ProcessorSettings()
            processing.repetitionPenalty = 1.2
            var search = BeamSearch(settings: settings)
            let workspace = Workspace()
            var trace: [BeamStep] = []
            for rows in steps where !search.isDone {
                let encoded = rows.prefix(search.beams.count).map { EncodedRow($0, dtype: .bfloat16) }
                let step = try withRows(encoded) { try search.advance(rows: $0, pipeline: LogitsPipeline(settings: processing), workspace: workspace) }
                trace.append(step)
            }
            results.append((variant, trace))
        }
        for (variant, trace) in results.dropFirst() {
            #expect(trace == results[0].1, "\(variant) differs from \(results[0].0)")
        }
    }

    @Test("f16 widening is exact for every half-precision value, on every supported variant")
    func halfWidening() throws {
        let original = Kernels.active
        defer { try? Kernels.use(original) }
        let halves = (0...UInt16.max).map { Float16(bitPattern: $0) }.filter { !$0.isNaN }
        for variant in Kernels.supported {
            try Kernels.use(variant)
            var wrong: [Float16] = []
            // Sixteen lanes, one of them the value: the vector path's sum is the widened value.
            var lanes = [Float16](repeating: 0, count: 16)
            for half in halves {
                for position in [0, 9] {
                    lanes[position] = half
                    let sum = lanes.withUnsafeBytes { Kernels.plainPass(LogitRow(bytes: $0, dtype: .float16)) }
                    let single = [half].withUnsafeBytes { Kernels.plainPass(LogitRow(bytes: $0, dtype: .float16)) }
                    // A sum starts from +0, so -0 comes back as +0; every other value bit for bit.
                    let exact = { (value: Float) in value.bitPattern == Float(half).bitPattern || (half == 0 && value == 0) }
                    if !exact(sum) || !exact(single) { wrong.append(half) }
                    lanes[position] = 0
                }
            }
            #expect(wrong.isEmpty, "\(variant): \(wrong.count) f16 values widened differently from Float(Float16), e.g. \(wrong.prefix(3).map(\.bitPattern))")
        }
    }
}

private func withRows<R>(_ rows: [EncodedRow], _ body: ([LogitRow]) throws -> R) rethrows -> R {
    func recurse(_ index: Int, _ built: [LogitRow]) throws -> R {
        guard index < rows.count else { return try body(built) }
        return try rows[index].withRow { try recurse(index + 1, built + [$0]) }
    }
    return try recurse(0, [])
}
