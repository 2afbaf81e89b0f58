#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Decoding

/// A JSON object key given as a string.
struct JSONKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension ProcessorSettings {
    /// The request keys of the processing chain, shared by OPEN and SCORE.
    static let requestKeys: Set<String> = [
        "min_new_tokens", "eos_token_ids", "temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff",
        "min_tokens_to_keep", "repetition_penalty", "presence_penalty", "frequency_penalty", "no_repeat_ngram_size",
        "logit_bias", "banned_token_ids", "banned_sequences", "allowed_token_ids", "order",
        "dry_multiplier", "dry_base", "dry_allowed_length", "dry_penalty_last_n", "dry_sequence_breakers",
        "top_n_sigma", "xtc_probability", "xtc_threshold", "dynatemp_range", "dynatemp_exponent", "mirostat_tau", "mirostat_eta",
    ]

    /// Every option under its request key, as OPENED reports it.
    func encode(into c: inout KeyedEncodingContainer<JSONKey>) throws {
        try c.encode(minNewTokens, forKey: JSONKey("min_new_tokens"))
        try c.encode(eosTokens, forKey: JSONKey("eos_token_ids"))
        try c.encode(temperature, forKey: JSONKey("temperature"))
        try c.encode(topK, forKey: JSONKey("top_k"))
        try c.encode(topP, forKey: JSONKey("top_p"))
        try c.encode(minP, forKey: JSONKey("min_p"))
        try c.encode(typicalP, forKey: JSONKey("typical_p"))
        try c.encode(epsilonCutoff, forKey: JSONKey("epsilon_cutoff"))
        try c.encode(etaCutoff, forKey: JSONKey("eta_cutoff"))
        try c.encode(minTokensToKeep, forKey: JSONKey("min_tokens_to_keep"))
        try c.encode(repetitionPenalty, forKey: JSONKey("repetition_penalty"))
        try c.encode(presencePenalty, forKey: JSONKey("presence_penalty"))
        try c.encode(frequencyPenalty, forKey: JSONKey("frequency_penalty"))
        try c.encode(noRepeatNGramSize, forKey: JSONKey("no_repeat_ngram_size"))
        try c.encode(Dictionary(uniqueKeysWithValues: logitBias.map { (String($0.key), $0.value) }), forKey: JSONKey("logit_bias"))
        try c.encode(bannedTokens, forKey: JSONKey("banned_token_ids"))
        try c.encode(bannedSequences, forKey: JSONKey("banned_sequences"))
        try c.encode(allowedTokens, forKey: JSONKey("allowed_token_ids"))
        try c.encode(order.map(\.rawValue), forKey: JSONKey("order"))
        try c.encode(dryMultiplier, forKey: JSONKey("dry_multiplier"))
        try c.encode(dryBase, forKey: JSONKey("dry_base"))
        try c.encode(dryAllowedLength, forKey: JSONKey("dry_allowed_length"))
        try c.encode(dryPenaltyLastN, forKey: JSONKey("dry_penalty_last_n"))
        try c.encode(drySequenceBreakers, forKey: JSONKey("dry_sequence_breakers"))
        try c.encode(topNSigma, forKey: JSONKey("top_n_sigma"))
        try c.encode(xtcProbability, forKey: JSONKey("xtc_probability"))
        try c.encode(xtcThreshold, forKey: JSONKey("xtc_threshold"))
        try c.encode(dynatempRange, forKey: JSONKey("dynatemp_range"))
        try c.encode(dynatempExponent, forKey: JSONKey("dynatemp_exponent"))
        try c.encode(mirostatTau, forKey: JSONKey("mirostat_tau"))
        try c.encode(mirostatEta, forKey: JSONKey("mirostat_eta"))
    }

    /// The chain's options from a request's parameters (domains are checked by `validate`).
    static func parse(_ reader: ParameterReader) throws(ProtocolError) -> ProcessorSettings {
        var p = ProcessorSettings()
        if let value = try reader.float("temperature") { p.temperature = value }
        if let value = try reader.int("top_k") { p.topK = value }
        if let value = try reader.float("top_p") { p.topP = value }
        if let value = try reader.float("min_p") { p.minP = value }
        if let value = try reader.float("typical_p") { p.typicalP = value }
        if let value = try reader.float("epsilon_cutoff") { p.epsilonCutoff = value }
        if let value = try reader.float("eta_cutoff") { p.etaCutoff = value }
        if let value = try reader.int("min_tokens_to_keep") { p.minTokensToKeep = value }
        if let value = try reader.float("dry_multiplier") { p.dryMultiplier = value }
        if let value = try reader.float("dry_base") { p.dryBase = value }
        if let value = try reader.int("dry_allowed_length") { p.dryAllowedLength = value }
        if let value = try reader.int("dry_penalty_last_n") { p.dryPenaltyLastN = value }
        if let value = try reader.intArrays("dry_sequence_breakers") { p.drySequenceBreakers = value }
        if let value = try reader.float("top_n_sigma") { p.topNSigma = value }
        if let value = try reader.float("xtc_probability") { p.xtcProbability = value }
        if let value = try reader.float("xtc_threshold") { p.xtcThreshold = value }
        if let value = try reader.float("dynatemp_range") { p.dynatempRange = value }
        if let value = try reader.float("dynatemp_exponent") { p.dynatempExponent = value }
        if let value = try reader.float("mirostat_tau") { p.mirostatTau = value }
        if let value = try reader.float("mirostat_eta") { p.mirostatEta = value }
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
        return p
    }
}
