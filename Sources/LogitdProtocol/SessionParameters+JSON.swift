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

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: JSONKey.self)
        let s = parameters
        let p = s.processors
        try c.encode(s.strategy.rawValue, forKey: JSONKey("strategy"))
        try c.encode(s.vocabSize, forKey: JSONKey("vocab_size"))
        try c.encode(s.maxNewTokens, forKey: JSONKey("max_new_tokens"))
        try c.encode(s.stopSequences, forKey: JSONKey("stop_sequences"))
        try p.encode(into: &c)
        try c.encode(s.n, forKey: JSONKey("n"))
        try c.encode(s.beamWidth, forKey: JSONKey("beam_width"))
        try c.encode(s.lengthPenalty, forKey: JSONKey("length_penalty"))
        switch s.earlyStopping {
        case .whenFull: try c.encode(true, forKey: JSONKey("early_stopping"))
        case .heuristic: try c.encode(false, forKey: JSONKey("early_stopping"))
        case .never: try c.encode("never", forKey: JSONKey("early_stopping"))
        }
        try c.encode(s.numReturn, forKey: JSONKey("num_return"))
        try c.encode(s.lengthOffset, forKey: JSONKey("length_offset"))
        try c.encode(s.seed, forKey: JSONKey("seed"))
        try c.encode(s.logprobs, forKey: JSONKey("logprobs"))
        try c.encode(s.logprobsMode.rawValue, forKey: JSONKey("logprobs_mode"))
        try c.encode(s.returnRank, forKey: JSONKey("return_rank"))
        try c.encode(s.logprobTokenIDs, forKey: JSONKey("logprob_token_ids"))
        try c.encode(s.thinking?.start ?? [], forKey: JSONKey("think_start_token_ids"))
        try c.encode(s.thinking?.end ?? [], forKey: JSONKey("think_end_token_ids"))
        try c.encode(s.thinking?.budget, forKey: JSONKey("thinking_budget"))
        if let format = s.returnSupport { try c.encode(format.rawValue, forKey: JSONKey("return_support")) } else { try c.encode(false, forKey: JSONKey("return_support")) }
        try c.encode(s.promptTokenIDs, forKey: JSONKey("prompt_token_ids"))
        try c.encodeIfPresent(s.history, forKey: JSONKey("history"))
    }
}
