import Decoding
import Foundation
import Testing

/// One chain configuration on one row, checked against the Float64 reference.
struct ChainCase: CustomTestStringConvertible, Sendable {
    let name: String
    let logits: [Float]
    let settings: ProcessorSettings
    let history: TokenHistory
    var testDescription: String { name }

    init(_ name: String, _ logits: [Float], history: TokenHistory = TokenHistory(), _ configure: (inout ProcessorSettings) -> Void) {
        self.name = name
        self.logits = logits
        var settings = ProcessorSettings()
        configure(&settings)
        self.settings = settings
        self.history = history
    }
}

let small: [Float] = [2.0, -1.0, 0.5, 2.0, -.infinity, 3.0, 0.5, -4.0, 1.0, 0.0]
let history = TokenHistory(prompt: [1, 2, 3, 1], generated: [5, 2, 5, 8])
let normal40 = RowCase.normal(40, sigma: 2, seed: 11)
let normal1000 = RowCase.normal(1000, sigma: 3, seed: 12)
let normal32k = RowCase.normal(32_000, sigma: 3, seed: 13)

let chainCases: [ChainCase] = [
    ChainCase("repetition penalty: positive divided, negative multiplied, once per token", small, history: history) { $0.repetitionPenalty = 1.5 },
    ChainCase("presence and frequency penalties count generated tokens only", small, history: history) { $0.presencePenalty = 0.5; $0.frequencyPenalty = 0.25 },
    ChainCase("no-repeat 2-gram over prompt and generated", small, history: TokenHistory(prompt: [1, 2, 3, 1], generated: [5, 2, 5])) { $0.noRepeatNGramSize = 2 },
    ChainCase("no-repeat 3-gram", small, history: TokenHistory(prompt: [1, 2, 3, 1, 2], generated: [])) { $0.noRepeatNGramSize = 3 },
    ChainCase("logit bias", small) { $0.logitBias = [0: 1.5, 7: 10, 4: 3] },
    ChainCase("banned tokens and sequences", small, history: TokenHistory(prompt: [3], generated: [6, 1])) { $0.bannedTokens = [5]; $0.bannedSequences = [[6, 1, 3], [1, 9], [7, 7, 0], [2]] },
    ChainCase("allowed tokens", small) { $0.allowedTokens = [1, 3, 4, 8] },
    ChainCase("min tokens bans EOS before the minimum", small, history: TokenHistory(generated: [1, 2])) { $0.minNewTokens = 3; $0.eosTokens = [5, 0] },
    ChainCase("min tokens lets EOS through after it", small, history: TokenHistory(generated: [1, 2, 3])) { $0.minNewTokens = 3; $0.eosTokens = [5, 0] },
    ChainCase("top-k keeps ties with the k-th", small) { $0.topK = 2 },
    ChainCase("top-k 4 with tied 4th and 5th", small) { $0.topK = 4 },
    ChainCase("top-k larger than the vocabulary", small) { $0.topK = 50 },
    ChainCase("top-p 0.5", small) { $0.topP = 0.5 },
    ChainCase("top-p 0.9 with temperature 0.7 first", small) { $0.topP = 0.9; $0.temperature = 0.7 },
    ChainCase("top-p then temperature (order overridden)", small) { $0.topP = 0.9; $0.temperature = 0.7; $0.order = [.topP, .temperature] },
    ChainCase("top-p keeps at least min_tokens_to_keep", small) { $0.topP = 0.01; $0.minTokensToKeep = 3 },
    ChainCase("min-p 0.2", small) { $0.minP = 0.2 },
    ChainCase("min-p at temperature 2", small) { $0.minP = 0.2; $0.temperature = 2 },
    ChainCase("typical 0.5", small) { $0.typicalP = 0.5 },
    ChainCase("typical 0.9 keeping 2", small) { $0.typicalP = 0.9; $0.minTokensToKeep = 2 },
    ChainCase("top-k 5 dense, V=1000", normal1000) { $0.topK = 5 },
    ChainCase("top-k 300 dense, V=1000", normal1000) { $0.topK = 300 },
    ChainCase("top-p 0.9 dense, V=1000", normal1000) { $0.topP = 0.9 },
    ChainCase("top-p 0.01 keeps min_tokens_to_keep of a dense V=1000 row", normal1000) { $0.topP = 0.01; $0.minTokensToKeep = 2 },
    ChainCase("top-k then top-p 0.01 keeps min_tokens_to_keep (sparse)", normal1000) { $0.topK = 50; $0.topP = 0.01; $0.minTokensToKeep = 4 },
    ChainCase("top-p 0.3 dense at temperature 0.5, V=32,000", normal32k) { $0.topP = 0.3; $0.temperature = 0.5 },
    ChainCase("top-p 0.95 dense, V=32,000 (thousands survive)", normal32k) { $0.topP = 0.95 },
    ChainCase("min-p 0.05 dense, V=32,000", normal32k) { $0.minP = 0.05 },
    ChainCase("typical 0.8 dense, V=1000", normal1000) { $0.typicalP = 0.8 },
    ChainCase("epsilon 0.001 dense, V=1000", normal1000) { $0.epsilonCutoff = 0.001 },
    ChainCase("epsilon 0.02 dense at temperature 0.7, V=32,000", normal32k) { $0.epsilonCutoff = 0.02; $0.temperature = 0.7 },
    ChainCase("epsilon above every probability keeps min_tokens_to_keep (ties included)", small) { $0.epsilonCutoff = 0.9; $0.minTokensToKeep = 4 },
    ChainCase("eta 0.01 dense, V=1000", normal1000) { $0.etaCutoff = 0.01 },
    ChainCase("eta 0.3 keeping 3", small) { $0.etaCutoff = 0.3; $0.minTokensToKeep = 3 },
    ChainCase("default chain: T 0.8, top-k 40, top-p 0.95, min-p 0.05, V=32,000", normal32k) {
        $0.temperature = 0.8; $0.topK = 40; $0.topP = 0.95; $0.minP = 0.05
    },
    ChainCase("everything at once, V=40", normal40, history: TokenHistory(prompt: [1, 2, 3], generated: [7, 7, 2, 3])) {
        $0.repetitionPenalty = 1.3; $0.presencePenalty = 0.2; $0.frequencyPenalty = 0.1; $0.noRepeatNGramSize = 2
        $0.logitBias = [4: 2, 9: -1]; $0.bannedTokens = [11]; $0.bannedSequences = [[3, 19]]; $0.minNewTokens = 5; $0.eosTokens = [0]
        $0.temperature = 0.9; $0.topK = 20; $0.topP = 0.9; $0.minP = 0.02; $0.typicalP = 0.95
    },
    // Each warper once more on a list already cut by another (the sparse implementations).
    ChainCase("min-p then top-k keeping ties (sparse top-k)", small) { $0.minP = 0.001; $0.topK = 2; $0.order = [.minP, .topK] },
    ChainCase("top-k then min-p (sparse min-p)", normal1000) { $0.topK = 50; $0.minP = 0.3; $0.temperature = 1.5 },
    ChainCase("top-k then typical (sparse typical)", normal1000) { $0.topK = 60; $0.typicalP = 0.7 },
    ChainCase("top-k then epsilon (sparse epsilon)", normal1000) { $0.topK = 60; $0.epsilonCutoff = 0.01 },
    ChainCase("top-k then eta (sparse eta)", normal1000) { $0.topK = 60; $0.etaCutoff = 0.05; $0.temperature = 0.8 },
    ChainCase("top-k then top-p at temperature 0.6 (sparse top-p)", normal1000) { $0.topK = 80; $0.topP = 0.6; $0.temperature = 0.6 },
    ChainCase("edits after warpers (order overridden), V=1000", normal1000, history: TokenHistory(generated: [3, 3, 3])) {
        $0.topK = 10; $0.repetitionPenalty = 2; $0.logitBias = [Reference.argmax(normal1000.map(Double.init)): -100]
        $0.order = [.topK, .repetitionPenalty, .logitBias]
    },
]

@Suite("The logits-processing chain against the Float64 reference")
struct PipelineTests {
    @Test("each stage and combination keeps the same tokens with the same logits", arguments: chainCases)
    func matchesReference(chain: ChainCase) throws {
        let workspace = Workspace()
        for dtype in LogitDType.allCases {
            let encoded = EncodedRow(chain.logits, dtype: dtype)
            let expected = ReferenceChain.run(encoded.values, chain.settings, history: chain.history, sampling: true)
            let actual = try encoded.withRow { row in
                denseRow(try LogitsPipeline(settings: chain.settings).candidates(for: row, history: chain.history, sampling: true, workspace: workspace), vocab: row.count)
            }
            let expectedKept = Set(expected.indices.filter { expected[$0] > -.infinity })
            let actualKept = Set(actual.indices.filter { actual[$0] > -.infinity })
            #expect(actualKept == expectedKept, "\(dtype): kept \(actualKept.count), expected \(expectedKept.count); extra \(actualKept.subtracting(expectedKept).sorted().prefix(5)), missing \(expectedKept.subtracting(actualKept).sorted().prefix(5))")
            for t in expectedKept.intersection(actualKept) {
                #expect(abs(actual[t] - expected[t]) <= 1e-5 * max(1, abs(expected[t])), "\(dtype) token \(t): \(actual[t]) vs \(expected[t])")
            }
        }
    }

    @Test("without sampling only the edits run")
    func greedySkipsWarpers() throws {
        var settings = ProcessorSettings()
        settings.topK = 1
        settings.bannedTokens = [5]
        let workspace = Workspace()  // the result points into it: it must outlive the result's use
        let row = try small.withUnsafeBytes { bytes in
            denseRow(try LogitsPipeline(settings: settings).candidates(for: LogitRow(bytes: bytes, dtype: .float32), history: TokenHistory(), sampling: false, workspace: workspace), vocab: small.count)
        }
        #expect(row[5] == -.infinity)
        #expect(row.filter { $0 > -.infinity }.count == 8)
    }

    @Test("a chain that bans every token is refused, not sampled")
    func nothingLeft() {
        var settings = ProcessorSettings()
        settings.allowedTokens = [4]  // token 4 is -inf in the row
        let error = #expect(throws: LogitRowError.self) {
            try small.withUnsafeBytes { bytes in
                try LogitsPipeline(settings: settings).candidates(for: LogitRow(bytes: bytes, dtype: .float32), history: TokenHistory(), sampling: true, workspace: Workspace())
            }
        }
        #expect(error == .noCandidates)
    }

    @Test("settings outside their domain are refused by name")
    func validation() {
        let cases: [((inout ProcessorSettings) -> Void, String)] = [
            ({ $0.temperature = -1 }, "temperature"),
            ({ $0.topP = 0 }, "top_p"),
            ({ $0.epsilonCutoff = 1 }, "epsilon_cutoff"),
            ({ $0.etaCutoff = -0.1 }, "eta_cutoff"),
            ({ $0.topP = 1.5 }, "top_p"),
            ({ $0.minP = 2 }, "min_p"),
            ({ $0.topK = -3 }, "top_k"),
            ({ $0.repetitionPenalty = 0 }, "repetition_penalty"),
            ({ $0.bannedTokens = [10] }, "banned_token_ids"),
            ({ $0.logitBias = [-1: 1] }, "logit_bias"),
            ({ $0.allowedTokens = [] }, "allowed_token_ids"),
            ({ $0.bannedSequences = [[]] }, "banned_sequences"),
            ({ $0.order = [.topK, .topK] }, "order"),
        ]
        for (configure, name) in cases {
            var settings = ProcessorSettings()
            configure(&settings)
            let error = #expect(throws: ParameterError.self) { try settings.validate(vocab: 10) }
            #expect(error?.name == name)
        }
        #expect(throws: Never.self) { try ProcessorSettings().validate(vocab: 10) }
    }
}
