#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Decoding

/// The parameters of OPEN: a JSON object whose keys are listed in docs/PROTOCOL.md. Every key but
/// `vocab_size` is optional; `resolved` is what the daemon will use, defaults filled in, and is what
/// OPENED returns.
public struct SessionParameters: Equatable, Sendable {
    public var strategy: Strategy = .greedy
    public var vocabSize: Int
    public var processors = ProcessorSettings()
    public var maxNewTokens = 256
    public var stopSequences: [[Int]] = []
    /// Parallel sequences (greedy or sampling).
    public var n = 1
    public var beamWidth = 4
    public var lengthPenalty = 1.0
    public var earlyStopping = EarlyStopping.heuristic
    public var numReturn = 1
    public var lengthOffset = 0
    public var seed: UInt64?
    /// How many alternatives (top log-probabilities) each TOKENS row carries.
    public var logprobs = 0
    public var promptTokenIDs: [Int] = []
    /// Where a recovered session stands: OPEN with a history continues a session that another
    /// daemon (or this one, before a restart) was decoding, token for token.
    public var history: SessionHistory?

    public init(strategy: Strategy = .greedy, vocabSize: Int) {
        self.strategy = strategy
        self.vocabSize = vocabSize
    }

    static let knownKeys: Set<String> = [
        "strategy", "vocab_size", "max_new_tokens", "min_new_tokens", "eos_token_ids", "stop_sequences",
        "temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff", "min_tokens_to_keep",
        "repetition_penalty", "presence_penalty", "frequency_penalty", "no_repeat_ngram_size",
        "logit_bias", "banned_token_ids", "banned_sequences", "allowed_token_ids", "order",
        "n", "beam_width", "length_penalty", "early_stopping", "num_return", "length_offset",
        "seed", "logprobs", "prompt_token_ids", "history",
    ]

    /// Limits that keep one session's parameters from becoming a memory problem.

    /// Parses OPEN's parameters frame and checks every value against its domain.
    public static func parse(_ frame: UnsafeRawBufferPointer, limits: ProtocolLimits) throws(ProtocolError) -> SessionParameters {
        let reader = ParameterReader(object: try JSONValue.object(from: frame, what: "the OPEN parameters frame"))
        try reader.refuseUnknownKeys(known: knownKeys)
        guard let vocab = try reader.int("vocab_size") else {
            throw ProtocolError(.badParameters, "\"vocab_size\" is required")
        }
        guard vocab > 0, vocab <= limits.maxVocab else {
            throw ProtocolError(.badParameters, "\"vocab_size\" is \(vocab); it must be between 1 and \(limits.maxVocab)")
        }
        var parameters = SessionParameters(vocabSize: vocab)
        if let name = try reader.string("strategy") {
            guard let strategy = Strategy(rawValue: name) else {
                throw ProtocolError(.unknownStrategy, "unknown strategy \"\(name)\"; known: \(Strategy.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            parameters.strategy = strategy
        }
        var p = parameters.processors
        if let value = try reader.float("temperature") { p.temperature = value }
        if let value = try reader.int("top_k") { p.topK = value }
        if let value = try reader.float("top_p") { p.topP = value }
        if let value = try reader.float("min_p") { p.minP = value }
        if let value = try reader.float("typical_p") { p.typicalP = value }
        if let value = try reader.float("epsilon_cutoff") { p.epsilonCutoff = value }
        if let value = try reader.float("eta_cutoff") { p.etaCutoff = value }
        if let value = try reader.int("min_tokens_to_keep") { p.minTokensToKeep = value }
        if let value = try reader.float("repetition_penalty") { p.repetitionPenalty = value }
        if let value = try reader.float("presence_penalty") { p.presencePenalty = value }
        if let value = try reader.float("frequency_penalty") { p.frequencyPenalty = value }
        if let value = try reader.int("no_repeat_ngram_size") { p.noRepeatNGramSize = value }
        if let value = try reader.int("min_new_tokens") { p.minNewTokens = value }
        if let value = try reader.ints("eos_token_ids") { p.eosTokens = value }
        if let value = try reader.ints("banned_token_ids") { p.bannedTokens = value }
        if let value = try reader.intArrays("banned_sequences") { p.bannedSequences = value }
        if let value = try reader.ints("allowed_token_ids") { p.allowedTokens = value }
        if case .object(let biases)? = reader.object["logit_bias"] {
            for (key, value) in biases {
                guard let token = Int(key), let bias = value.double else {
                    throw ProtocolError(.badParameters, "\"logit_bias\" must map token ids (as strings) to numbers")
                }
                p.logitBias[token] = Float(bias)
            }
        } else if let value = reader.object["logit_bias"], value != .null {
            throw ProtocolError(.badParameters, "\"logit_bias\" must be an object mapping token ids to numbers")
        }
        if case .array(let names)? = reader.object["order"] {
            var order: [ProcessorKind] = []
            for name in names {
                guard case .string(let text) = name, let kind = ProcessorKind(rawValue: text) else {
                    throw ProtocolError(.badParameters, "\"order\" names stages from: \(ProcessorKind.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                order.append(kind)
            }
            p.order = order
        } else if let value = reader.object["order"], value != .null {
            throw ProtocolError(.badParameters, "\"order\" must be an array of stage names")
        }
        parameters.processors = p
        if let value = try reader.int("max_new_tokens") { parameters.maxNewTokens = value }
        if let value = try reader.intArrays("stop_sequences") { parameters.stopSequences = value }
        if let value = try reader.int("n") { parameters.n = value }
        if let value = try reader.int("beam_width") { parameters.beamWidth = value }
        if let value = try reader.double("length_penalty") { parameters.lengthPenalty = value }
        if let value = reader.object["early_stopping"], value != .null {
            switch value {
            case .bool(true): parameters.earlyStopping = .whenFull
            case .bool(false): parameters.earlyStopping = .heuristic
            case .string("never"): parameters.earlyStopping = .never
            default: throw ProtocolError(.badParameters, "\"early_stopping\" must be true, false or \"never\"")
            }
        }
        if let value = try reader.int("num_return") { parameters.numReturn = value }
        if let value = try reader.int("length_offset") { parameters.lengthOffset = value }
        parameters.seed = try reader.uint64("seed")
        if let value = try reader.int("logprobs") { parameters.logprobs = value }
        if let value = try reader.ints("prompt_token_ids") { parameters.promptTokenIDs = value }
        if case .object(let history)? = reader.object["history"] {
            parameters.history = try SessionHistory.parse(ParameterReader(object: history), strategy: parameters.strategy)
        } else if let value = reader.object["history"], value != .null {
            throw ProtocolError(.badParameters, "\"history\" must be an object")
        }
        try parameters.validate(limits: limits)
        return parameters
    }

    /// Domain checks that span keys, the engine's own validation, and the per-session bounds of
    /// `limits` (WELCOME publishes them).
    public func validate(limits: ProtocolLimits) throws(ProtocolError) {
        func refuse(_ message: String) -> ProtocolError { ProtocolError(.badParameters, message) }
        func bound(_ name: String, _ value: Int, _ limit: Int, _ limitName: String) throws(ProtocolError) {
            if value > limit { throw refuse("\"\(name)\" is \(value); the limit is \(limitName) = \(limit)") }
        }
        try bound("n", n, limits.maxN, "max_n")
        if strategy == .beam { try bound("beam_width", beamWidth, limits.maxBeamWidth, "max_beam_width") }
        try bound("logprobs", logprobs, limits.maxLogprobs, "max_logprobs")
        try bound("max_new_tokens", maxNewTokens, limits.maxNewTokens, "max_new_tokens")
        let lists = [("prompt_token_ids", promptTokenIDs.count), ("eos_token_ids", processors.eosTokens.count), ("banned_token_ids", processors.bannedTokens.count),
                     ("allowed_token_ids", processors.allowedTokens?.count ?? 0), ("logit_bias", processors.logitBias.count)]
        for (name, count) in lists { try bound(name, count, limits.maxListLength, "max_list_length") }
        for (name, sequences) in [("stop_sequences", stopSequences), ("banned_sequences", processors.bannedSequences)] {
            try bound(name, sequences.count, limits.maxListLength, "max_list_length")
            for sequence in sequences { try bound("\(name) (one sequence's length)", sequence.count, limits.maxListLength, "max_list_length") }
        }
        do throws(ParameterError) {
            try processors.validate(vocab: vocabSize)
            if strategy == .beam { try beamSettings.validate() }
        } catch {
            throw refuse("\"\(error.name)\" \(error.rule)")
        }
        if maxNewTokens < 1 { throw refuse("\"max_new_tokens\" must be ≥ 1") }
        if n < 1 { throw refuse("\"n\" must be ≥ 1") }
        if strategy == .beam && n != 1 { throw refuse("\"n\" is for greedy and sample; beam search returns \"num_return\" hypotheses") }
        if logprobs < 0 { throw refuse("\"logprobs\" must be ≥ 0") }
        for sequence in stopSequences where sequence.isEmpty || sequence.contains(where: { $0 < 0 || $0 >= vocabSize }) {
            throw refuse("\"stop_sequences\" must hold non-empty sequences of token ids below vocab_size")
        }
        if promptTokenIDs.contains(where: { $0 < 0 || $0 >= vocabSize }) {
            throw refuse("\"prompt_token_ids\" must be token ids below vocab_size")
        }
        if let history { try history.validate(self) }
    }

    public var stopConditions: StopConditions {
        StopConditions(eosTokens: processors.eosTokens, stopSequences: stopSequences, maxNewTokens: maxNewTokens)
    }

    public var beamSettings: BeamSearchSettings {
        var settings = BeamSearchSettings(width: beamWidth, stop: stopConditions)
        settings.lengthPenalty = lengthPenalty
        settings.earlyStopping = earlyStopping
        settings.numReturn = numReturn
        settings.lengthOffset = lengthOffset
        return settings
    }

    /// Every parameter with its value, as OPENED reports it (sorted keys).
    public var resolvedJSON: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // Encoding numbers, strings and arrays of them cannot fail.
        return Array(try! encoder.encode(ResolvedParameters(self)))
    }
}

/// The JSON shape of resolved parameters: the same keys as OPEN takes, all present.
private struct ResolvedParameters: Encodable {
    let parameters: SessionParameters
    init(_ parameters: SessionParameters) { self.parameters = parameters }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        let s = parameters
        let p = s.processors
        try c.encode(s.strategy.rawValue, forKey: Key("strategy"))
        try c.encode(s.vocabSize, forKey: Key("vocab_size"))
        try c.encode(s.maxNewTokens, forKey: Key("max_new_tokens"))
        try c.encode(p.minNewTokens, forKey: Key("min_new_tokens"))
        try c.encode(p.eosTokens, forKey: Key("eos_token_ids"))
        try c.encode(s.stopSequences, forKey: Key("stop_sequences"))
        try c.encode(p.temperature, forKey: Key("temperature"))
        try c.encode(p.topK, forKey: Key("top_k"))
        try c.encode(p.topP, forKey: Key("top_p"))
        try c.encode(p.minP, forKey: Key("min_p"))
        try c.encode(p.typicalP, forKey: Key("typical_p"))
        try c.encode(p.epsilonCutoff, forKey: Key("epsilon_cutoff"))
        try c.encode(p.etaCutoff, forKey: Key("eta_cutoff"))
        try c.encode(p.minTokensToKeep, forKey: Key("min_tokens_to_keep"))
        try c.encode(p.repetitionPenalty, forKey: Key("repetition_penalty"))
        try c.encode(p.presencePenalty, forKey: Key("presence_penalty"))
        try c.encode(p.frequencyPenalty, forKey: Key("frequency_penalty"))
        try c.encode(p.noRepeatNGramSize, forKey: Key("no_repeat_ngram_size"))
        try c.encode(Dictionary(uniqueKeysWithValues: p.logitBias.map { (String($0.key), $0.value) }), forKey: Key("logit_bias"))
        try c.encode(p.bannedTokens, forKey: Key("banned_token_ids"))
        try c.encode(p.bannedSequences, forKey: Key("banned_sequences"))
        try c.encode(p.allowedTokens, forKey: Key("allowed_token_ids"))
        try c.encode(p.order.map(\.rawValue), forKey: Key("order"))
        try c.encode(s.n, forKey: Key("n"))
        try c.encode(s.beamWidth, forKey: Key("beam_width"))
        try c.encode(s.lengthPenalty, forKey: Key("length_penalty"))
        switch s.earlyStopping {
        case .whenFull: try c.encode(true, forKey: Key("early_stopping"))
        case .heuristic: try c.encode(false, forKey: Key("early_stopping"))
        case .never: try c.encode("never", forKey: Key("early_stopping"))
        }
        try c.encode(s.numReturn, forKey: Key("num_return"))
        try c.encode(s.lengthOffset, forKey: Key("length_offset"))
        try c.encode(s.seed, forKey: Key("seed"))
        try c.encode(s.logprobs, forKey: Key("logprobs"))
        try c.encode(s.promptTokenIDs, forKey: Key("prompt_token_ids"))
        try c.encodeIfPresent(s.history, forKey: Key("history"))
    }
}

/// A session's state, for OPEN to continue it: the generated tokens of every sequence (greedy /
/// sample), or the live beams and kept hypotheses (beam).
public enum SessionHistory: Equatable, Sendable, Encodable {
    case sequences(tokens: [[Int]], logprobSums: [Double])
    case beam(beams: [Beam], finished: [Hypothesis])

    /// The step the recovered session continues with.
    public var step: Int {
        switch self {
        case .sequences(let tokens, _): tokens.map(\.count).max() ?? 0
        case .beam(let beams, let finished): beams.first?.tokens.count ?? finished.map(\.tokens.count).max() ?? 0
        }
    }

    enum Key: String, CodingKey {
        case sequences, logprobSums = "logprob_sums", beams, finished
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        switch self {
        case .sequences(let tokens, let sums):
            try container.encode(tokens, forKey: .sequences)
            try container.encode(sums, forKey: .logprobSums)
        case .beam(let beams, let finished):
            try container.encode(beams.map { BeamState(tokens: $0.tokens, score: $0.score) }, forKey: .beams)
            try container.encode(finished.map { FinishedSequence(tokens: $0.tokens, finishReason: $0.finishReason, logprobSum: $0.logprobSum, score: $0.score) }, forKey: .finished)
        }
    }

    private struct BeamState: Encodable {
        let tokens: [Int]
        let score: Double
    }

    static func parse(_ reader: ParameterReader, strategy: Strategy) throws(ProtocolError) -> SessionHistory {
        if strategy == .beam {
            try reader.refuseUnknownKeys(known: ["beams", "finished"])
            var beams: [Beam] = []
            if case .array(let items)? = reader.object["beams"] {
                for item in items {
                    guard case .object(let object) = item else { throw ProtocolError(.badParameters, "\"history.beams\" must hold objects") }
                    let beam = ParameterReader(object: object)
                    guard let tokens = try beam.ints("tokens"), let score = try beam.double("score") else {
                        throw ProtocolError(.badParameters, "each of \"history.beams\" needs \"tokens\" and \"score\"")
                    }
                    beams.append(Beam(tokens: tokens, score: score))
                }
            }
            var finished: [Hypothesis] = []
            if case .array(let items)? = reader.object["finished"] {
                for item in items {
                    guard case .object(let object) = item else { throw ProtocolError(.badParameters, "\"history.finished\" must hold objects") }
                    let hypothesis = ParameterReader(object: object)
                    guard let tokens = try hypothesis.ints("tokens"), let score = try hypothesis.double("score"),
                          let sum = try hypothesis.double("logprob_sum"), let reasonName = try hypothesis.string("finish_reason"),
                          let reason = FinishReason(rawValue: reasonName) else {
                        throw ProtocolError(.badParameters, "each of \"history.finished\" needs \"tokens\", \"score\", \"logprob_sum\" and \"finish_reason\"")
                    }
                    finished.append(Hypothesis(tokens: tokens, score: score, logprobSum: sum, finishReason: reason))
                }
            }
            return .beam(beams: beams, finished: finished)
        }
        try reader.refuseUnknownKeys(known: ["sequences", "logprob_sums"])
        guard let tokens = try reader.intArrays("sequences") else {
            throw ProtocolError(.badParameters, "\"history.sequences\" is required: the generated tokens of every sequence")
        }
        var sums = [Double](repeating: 0, count: tokens.count)
        if case .array(let values)? = reader.object["logprob_sums"] {
            sums = []
            for value in values {
                guard let number = value.double else { throw ProtocolError(.badParameters, "\"history.logprob_sums\" must hold numbers") }
                sums.append(number)
            }
        }
        return .sequences(tokens: tokens, logprobSums: sums)
    }

    func validate(_ parameters: SessionParameters) throws(ProtocolError) {
        func refuse(_ message: String) -> ProtocolError { ProtocolError(.badParameters, "\"history\": \(message)") }
        let vocab = parameters.vocabSize
        switch self {
        case .sequences(let tokens, let sums):
            if tokens.count != parameters.n { throw refuse("has \(tokens.count) sequences; the session has n = \(parameters.n)") }
            if sums.count != tokens.count { throw refuse("\"logprob_sums\" needs one sum per sequence") }
            // Sequences may differ in length (VERIFY advances one sequence at a time); each
            // continues from its own tokens.
            for sequence in tokens where sequence.contains(where: { $0 < 0 || $0 >= vocab }) {
                throw refuse("token ids must be below vocab_size")
            }
        case .beam(let beams, let finished):
            if beams.count > parameters.beamWidth || finished.count > parameters.beamWidth {
                throw refuse("holds more beams or hypotheses than beam_width")
            }
            if beams.isEmpty { throw refuse("a beam search with no live beam is finished; nothing to continue") }
            if Set(beams.map(\.tokens.count)).count > 1 { throw refuse("all live beams must have the same length") }
            if (beams.flatMap(\.tokens) + finished.flatMap(\.tokens)).contains(where: { $0 < 0 || $0 >= vocab }) {
                throw refuse("token ids must be below vocab_size")
            }
        }
    }
}
