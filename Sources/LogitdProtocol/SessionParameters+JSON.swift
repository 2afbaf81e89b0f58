#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Decoding

extension SessionParameters {
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
        try c.encode(s.logprobsMode.rawValue, forKey: Key("logprobs_mode"))
        try c.encode(s.returnRank, forKey: Key("return_rank"))
        try c.encode(s.logprobTokenIDs, forKey: Key("logprob_token_ids"))
        if let format = s.returnSupport { try c.encode(format.rawValue, forKey: Key("return_support")) } else { try c.encode(false, forKey: Key("return_support")) }
        try c.encode(s.promptTokenIDs, forKey: Key("prompt_token_ids"))
        try c.encodeIfPresent(s.history, forKey: Key("history"))
    }
}
