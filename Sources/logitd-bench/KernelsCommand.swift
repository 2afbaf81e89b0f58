import ArgumentParser
import Decoding
import Foundation

/// `logitd-bench kernels`: µs per row for each decoding operation, each beside one plain SIMD pass
/// (a sum) over the same row measured in the same run, as a ratio. The row stays warm in cache.
struct KernelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kernels", abstract: "Decoding kernels per row, as ratios to a plain pass.")

    @Flag(help: "One JSON object per line instead of a table.")
    var json = false

    @Option(help: "Vocabulary sizes.")
    var vocab: [Int] = [32_000, 128_256, 262_144]

    @Option(help: "Element types (f32, f16, bf16).")
    var dtype: [String] = ["f32", "bf16", "f16"]

    @Option(help: "Operations: \(Operation.allCases.map(\.rawValue).joined(separator: " ")).")
    var op: [String] = Operation.allCases.map(\.rawValue)

    func run() throws {
        let dtypes = try dtype.map { name in
            guard let dtype = LogitDType(name: name) else { throw ValidationError("unknown dtype \(name)") }
            return dtype
        }
        let operations = try op.map { name in
            guard let operation = Operation(rawValue: name) else { throw ValidationError("unknown op \(name)") }
            return operation
        }
        let kernels = try Kernels.checkEnvironment()
        if !json {
            print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores; one core used; kernels: \(kernels); medians of 15 samples")
            print("op              vocab   dtype   us/row   pass us   ratio")
        }
        var f32Times: [String: Double] = [:]
        for vocabSize in vocab {
            for dtype in dtypes {
                let bench = RowBench(vocab: vocabSize, dtype: dtype)
                for operation in operations {
                    let (opMicros, passMicros) = bench.measure(operation)
                    let key = "\(operation.rawValue)-\(vocabSize)"
                    if dtype == .float32 { f32Times[key] = opMicros }
                    let versusF32 = f32Times[key].map { opMicros / $0 }
                    if json {
                        var fields = "\"op\":\"\(operation.rawValue)\",\"kernels\":\"\(kernels)\",\"vocab\":\(vocabSize),\"dtype\":\"\(dtype.name)\","
                        fields += "\"us_per_row\":\(format(opMicros)),\"pass_us\":\(format(passMicros)),\"ratio\":\(format(opMicros / passMicros))"
                        if let versusF32, dtype != .float32 { fields += ",\"vs_f32\":\(format(versusF32))" }
                        print("{\(fields)}")
                    } else {
                        let padded = operation.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)
                        var line = "\(padded) \(String(format: "%7d", vocabSize))   \(dtype.name.padding(toLength: 5, withPad: " ", startingAt: 0)) \(String(format: "%8.2f", opMicros))  \(String(format: "%8.2f", passMicros))  \(String(format: "%6.2f", opMicros / passMicros))x"
                        if let versusF32, dtype != .float32 { line += String(format: "   (%.2fx f32)", versusF32) }
                        print(line)
                    }

                }
            }
        }
        // Printing the sink keeps every measured result observable.
        if benchmarkSink == 42 { print("") }
    }

    private func format(_ value: Double) -> String { String(format: "%.3f", value) }
}

enum Operation: String, CaseIterable {
    case pass, argmax
    case greedyLogprob = "greedy_logprob"
    case softmax
    case logSoftmax = "log_softmax"
    case topK = "top_k"
    case minP = "min_p"
    case topP = "top_p"
    case chain, beam4, beam8
    /// Speculative verification: VERIFY of k = 4 draft tokens (5 target rows, 4 dense draft rows
    /// checked as distributions, every draft token accepted, then the bonus token) under the
    /// default chain, beside five plain sampling steps of the same chain on the same rows.
    case verify4
    /// The same with sparse draft rows (two candidates each), which cost no pass over the vocabulary.
    case verify4Sparse = "verify4_sparse"
    case sample5
    /// The same under an allowed-token mask: as a JSON grammar inside a string (3% of the tokens,
    /// at random, disallowed: those holding a quote, a backslash or a control character), at a
    /// structural position (64 tokens allowed), and every other token (the worst case: no group of
    /// sixteen is all allowed or all disallowed).
    case greedyMask = "greedy_mask"
    /// The default chain with everything a step can report: raw log-probabilities, the rank, four
    /// named tokens and the support (logprobs_mode "raw", return_rank, logprob_token_ids,
    /// return_support).
    case chainReport = "chain_report"
    /// llama.cpp's samplers: top-n-σ (n = 1) and dynamic temperature (1 ± 0.5), each then a draw.
    case topNSigma = "top_n_sigma"
    case dynatemp
    /// SCORE of one observed token: log p, raw log p, rank and entropy.
    case score
    case chainMask = "chain_mask"
    case greedyMaskStructural = "greedy_mask_structural"
    case chainMaskStructural = "chain_mask_structural"
    case greedyMaskAlternating = "greedy_mask_alternating"
    case chainMaskAlternating = "chain_mask_alternating"
}

/// The bench's allowed-token masks (see `Operation`).
enum BenchMask {
    case inString, structural, alternating
}

/// One random row (normal(0, 3) logits, a flat and hard case for top-p) in one dtype, and the
/// state each operation needs, built once.
final class RowBench {
    let vocab: Int
    let dtype: LogitDType
    /// Two identical copies of the row, used in turn, so that no work on "the same row" can be
    /// hoisted out of a timing loop; both stay in cache.
    let copies: [[UInt8]]
    var turn = 0
    var bytes: [UInt8] {
        turn ^= 1
        return copies[turn]
    }
    let beamRows: [UInt8]
    /// Four draft rows of probabilities: ε on the argmax of target row i (which every chain keeps),
    /// the rest spread evenly, so that every draft token is accepted.
    let draftRows: [UInt8]
    let draftTokens: [Int]
    let workspace = Workspace()
    /// Allowed-token bitmasks over the row.
    let masks: [BenchMask: [UInt32]]
    var output: [Float]
    var step = 0

    init(vocab: Int, dtype: LogitDType) {
        self.vocab = vocab
        self.dtype = dtype
        var state: UInt64 = 0x5EED
        func uniform() -> Double {
            // SplitMix64: fast, and the rows are the same from run to run.
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Double((z ^ (z >> 31)) >> 11) * 0x1p-53
        }
        func row() -> [Float] {
            (0..<vocab).map { _ in
                // Box–Muller, σ = 3.
                let u1 = max(uniform(), Double.ulpOfOne), u2 = uniform()
                return Float(3 * (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
            }
        }
        let encoded = Self.encode(row(), dtype)
        copies = [encoded, encoded]
        let rows = (0..<8).map { _ in row() }
        beamRows = rows.flatMap { Self.encode($0, dtype) }
        draftTokens = rows.prefix(4).map { row in row.indices.max { row[$0] < row[$1] }! }
        let epsilon: Float = 1e-6
        draftRows = draftTokens.flatMap { token in
            Self.encode((0..<vocab).map { $0 == token ? epsilon : (1 - epsilon) / Float(vocab - 1) }, dtype)
        }
        output = [Float](repeating: 0, count: vocab)
        let words = LogitRow.maskByteCount(count: vocab) / 4
        var inString = [UInt32](repeating: .max, count: words)
        var structural = [UInt32](repeating: 0, count: words)
        for token in 0..<vocab where uniform() < 0.03 { inString[token / 32] &= ~(1 << UInt32(token % 32)) }
        for _ in 0..<64 {
            let token = Int(uniform() * Double(vocab))
            structural[token / 32] |= 1 << UInt32(token % 32)
        }
        masks = [.inString: inString, .structural: structural, .alternating: [UInt32](repeating: 0x5555_5555, count: words)]
    }

    static func encode(_ values: [Float], _ dtype: LogitDType) -> [UInt8] {
        switch dtype {
        case .float32: values.withUnsafeBytes { Array($0) }
        case .float16: values.map(Float16.init).withUnsafeBytes { Array($0) }
        case .bfloat16: values.map(BFloat16.init).flatMap { [UInt8(truncatingIfNeeded: $0.bitPattern), UInt8($0.bitPattern >> 8)] }
        }
    }

    /// Medians of µs per row for `operation` and for the plain pass, sampled alternately.
    func measure(_ operation: Operation) -> (Double, Double) {
        let work = body(operation)
        let pass = body(.pass)
        // Repetitions per sample: enough for ~2 ms, so the clock's resolution does not matter.
        let probe = time(work, repetitions: 1)
        let repetitions = max(1, Int(2000 / max(probe, 0.01)))
        let passRepetitions = max(1, Int(2000 / max(time(pass, repetitions: 1), 0.01)))
        var opSamples: [Double] = []
        var passSamples: [Double] = []
        for _ in 0..<15 {
            passSamples.append(time(pass, repetitions: passRepetitions))
            opSamples.append(time(work, repetitions: repetitions))
        }
        return (median(opSamples), median(passSamples))
    }

    private func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    private func time(_ work: () -> Void, repetitions: Int) -> Double {
        let start = ContinuousClock.now
        for _ in 0..<repetitions { work() }
        let elapsed = ContinuousClock.now - start
        return (Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12) / Double(repetitions)
    }

    private func sampling(masked: BenchMask? = nil, _ configure: (inout ProcessorSettings) -> Void) -> () -> Void {
        var settings = ProcessorSettings()
        configure(&settings)
        let selector = TokenSelector(settings: settings, seed: 1)
        return { [self] in
            step += 1
            bytes.withUnsafeBytes { raw in
                masks[masked ?? .inString]!.withUnsafeBytes { maskBytes in
                    let row = LogitRow(bytes: raw, dtype: dtype, mask: masked == nil ? nil : maskBytes)
                    blackHole(try! selector.choose(from: row, history: TokenHistory(), sequence: 0, step: step, workspace: workspace).token)
                }
            }
        }
    }

    /// The default chain: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, then a draw.
    private func chain(masked: BenchMask?) -> () -> Void {
        sampling(masked: masked) { $0.temperature = 0.8; $0.topK = 40; $0.topP = 0.95; $0.minP = 0.05 }
    }

    private func greedy(masked: BenchMask) -> () -> Void {
        { [self] in
            bytes.withUnsafeBytes { raw in
                masks[masked]!.withUnsafeBytes { blackHole(try! Greedy.choose(from: LogitRow(bytes: raw, dtype: dtype, mask: $0)).token) }
            }
        }
    }

    private func speculative(verify: Bool, sparseDrafts: Bool = false) -> () -> Void {
        var settings = ProcessorSettings()
        settings.temperature = 0.8; settings.topK = 40; settings.topP = 0.95; settings.minP = 0.05
        let selector = TokenSelector(settings: settings, seed: 1)
        let rowBytes = vocab * dtype.byteWidth
        return { [self] in
            step += 1
            beamRows.withUnsafeBytes { raw in
                draftRows.withUnsafeBytes { drafts in
                    let targets = (0..<5).map { LogitRow(bytes: UnsafeRawBufferPointer(rebasing: raw[($0 * rowBytes)..<(($0 + 1) * rowBytes)]), dtype: dtype) }
                    if verify {
                        let distributions = (0..<4).map { position in
                            sparseDrafts
                                ? DraftDistribution.sparse([Candidate(token: draftTokens[position], logit: 1e-6), Candidate(token: (draftTokens[position] + 1) % vocab, logit: 1 - 1e-6)])
                                : DraftDistribution.dense(LogitRow(bytes: UnsafeRawBufferPointer(rebasing: drafts[(position * rowBytes)..<((position + 1) * rowBytes)]), dtype: dtype))
                        }
                        let sums = distributions.enumerated().map { try! $1.validated(position: $0, token: draftTokens[$0]) }
                        let result = try! selector.verify(draft: draftTokens, targets: targets.map(TargetRow.dense), distributions: distributions, sums: sums,
                                                          history: TokenHistory(), stop: StopConditions(maxNewTokens: 1000), sequence: 0, alternatives: 0, workspace: workspace)
                        precondition(result.accepted == 4, "the bench's drafts are built to be accepted")
                        blackHole(result.tokens[4].token)
                    } else {
                        var history = TokenHistory()
                        for row in targets {
                            let choice = try! selector.choose(from: row, history: history, sequence: 0, step: step, workspace: workspace)
                            history.generated.append(choice.token)
                            blackHole(choice.token)
                        }
                    }
                }
            }
        }
    }

    private func beamStep(width: Int) -> () -> Void {
        var settings = BeamSearchSettings(width: width, stop: StopConditions(eosTokens: [2], maxNewTokens: 1000))
        settings.numReturn = 1
        let pipeline = LogitsPipeline(settings: ProcessorSettings())
        let beams = (0..<width).map { Beam(tokens: [$0, 7, 9], score: -Double($0)) }
        let rowBytes = vocab * dtype.byteWidth
        return { [self] in
            var search = BeamSearch(settings: settings, prompt: [], beams: beams, finished: [])
            beamRows.withUnsafeBytes { raw in
                let rows = (0..<width).map { LogitRow(bytes: UnsafeRawBufferPointer(rebasing: raw[($0 * rowBytes)..<(($0 + 1) * rowBytes)]), dtype: dtype) }
                blackHole(try! search.advance(rows: rows, pipeline: pipeline, workspace: workspace).beams[0].token)
            }
        }
    }

    func body(_ operation: Operation) -> () -> Void {
        switch operation {
        case .pass:
            return { [self] in bytes.withUnsafeBytes { raw in blackHole(Kernels.plainPass(LogitRow(bytes: raw, dtype: dtype))) } }
        case .argmax:
            return { [self] in bytes.withUnsafeBytes { raw in blackHole(try! LogitRow(bytes: raw, dtype: dtype).validatedMaximum().index) } }
        case .greedyLogprob:
            return { [self] in bytes.withUnsafeBytes { raw in blackHole(try! Greedy.choose(from: LogitRow(bytes: raw, dtype: dtype)).token) } }
        case .softmax:
            return { [self] in
                bytes.withUnsafeBytes { raw in
                    output.withUnsafeMutableBufferPointer { out in try! Softmax.probabilities(of: LogitRow(bytes: raw, dtype: dtype), into: out) }
                }
            }
        case .logSoftmax:
            return { [self] in
                bytes.withUnsafeBytes { raw in
                    output.withUnsafeMutableBufferPointer { out in try! Softmax.logProbabilities(of: LogitRow(bytes: raw, dtype: dtype), into: out) }
                }
            }
        case .topK: return sampling { $0.topK = 50 }
        case .minP: return sampling { $0.minP = 0.05 }
        case .topP: return sampling { $0.topP = 0.9 }
        case .chain: return chain(masked: nil)
        case .chainMask: return chain(masked: .inString)
        case .chainMaskStructural: return chain(masked: .structural)
        case .chainMaskAlternating: return chain(masked: .alternating)
        case .greedyMask: return greedy(masked: .inString)
        case .greedyMaskStructural: return greedy(masked: .structural)
        case .greedyMaskAlternating: return greedy(masked: .alternating)
        case .topNSigma: return sampling { $0.topNSigma = 1 }
        case .dynatemp: return sampling { $0.dynatempRange = 0.5 }
        case .chainReport:
            var settings = ProcessorSettings()
            settings.temperature = 0.8; settings.topK = 40; settings.topP = 0.95; settings.minP = 0.05
            let selector = TokenSelector(settings: settings, seed: 1)
            let request = ReportRequest(mode: .raw, rank: true, tokenIDs: [0, 1, 2, 3], support: true)
            return { [self] in
                step += 1
                bytes.withUnsafeBytes { raw in
                    blackHole(try! selector.report(from: LogitRow(bytes: raw, dtype: dtype), history: TokenHistory(), sequence: 0, step: step, request: request, workspace: workspace).choice.token)
                }
            }
        case .score:
            let pipeline = LogitsPipeline(settings: ProcessorSettings())
            return { [self] in
                bytes.withUnsafeBytes { raw in blackHole(try! pipeline.score(7, row: LogitRow(bytes: raw, dtype: dtype), history: TokenHistory(), workspace: workspace).rank) }
            }
        case .verify4: return speculative(verify: true)
        case .verify4Sparse: return speculative(verify: true, sparseDrafts: true)
        case .sample5: return speculative(verify: false)
        case .beam4: return beamStep(width: 4)
        case .beam8: return beamStep(width: 8)
        }
    }
}

/// Results folded into one observable value, so the optimiser cannot drop the work behind them.
nonisolated(unsafe) var benchmarkSink: UInt64 = 0

@inline(never)
func blackHole(_ value: Int) { benchmarkSink &+= UInt64(truncatingIfNeeded: value) }

@inline(never)
func blackHole(_ value: Float) { benchmarkSink &+= UInt64(value.bitPattern) }

