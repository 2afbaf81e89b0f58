#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Decoding

extension SessionParameters {
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
        if let name = try reader.string("logprobs_mode") {
            guard let mode = LogprobsMode(rawValue: name) else {
                throw ProtocolError(.badParameters, "\"logprobs_mode\" is \"\(name)\"; known: \(LogprobsMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            parameters.logprobsMode = mode
        }
        if let value = try reader.bool("return_rank") { parameters.returnRank = value }
        if let value = try reader.ints("logprob_token_ids") { parameters.logprobTokenIDs = value }
        switch reader.object["return_support"] {
        case nil, .null?, .bool(false)?: break
        case .string(let name)? where SupportFormat(rawValue: name) != nil: parameters.returnSupport = SupportFormat(rawValue: name)
        default: throw ProtocolError(.badParameters, "\"return_support\" must be false, \"ids\" or \"mask\"")
        }
        if let value = try reader.ints("prompt_token_ids") { parameters.promptTokenIDs = value }
        if case .object(let history)? = reader.object["history"] {
            parameters.history = try SessionHistory.parse(ParameterReader(object: history), strategy: parameters.strategy)
        } else if let value = reader.object["history"], value != .null {
            throw ProtocolError(.badParameters, "\"history\" must be an object")
        }
        try parameters.validate(limits: limits)
        return parameters
    }
}
