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
        parameters.processors = try ProcessorSettings.parse(reader)
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
        let thinkStart = try reader.ints("think_start_token_ids"), thinkEnd = try reader.ints("think_end_token_ids")
        if let budget = try reader.int("thinking_budget") {
            parameters.thinking = ThinkingBudget(start: thinkStart ?? [], end: thinkEnd ?? [], budget: budget)
        } else if !(thinkStart ?? []).isEmpty || !(thinkEnd ?? []).isEmpty {
            throw ProtocolError(.badParameters, "\"think_start_token_ids\" and \"think_end_token_ids\" need \"thinking_budget\"")
        }
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
