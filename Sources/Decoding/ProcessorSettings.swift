/// The stages of the logits-processing chain, by the names used in requests and docs.
public enum ProcessorKind: String, CaseIterable, Sendable, Codable {
    case repetitionPenalty = "repetition_penalty"
    case presenceFrequencyPenalty = "presence_frequency_penalty"
    case dry
    case noRepeatNGram = "no_repeat_ngram"
    case logitBias = "logit_bias"
    case bannedTokens = "banned_tokens"
    case allowedTokens = "allowed_tokens"
    case minTokens = "min_tokens"
    case temperature
    case topK = "top_k"
    case topP = "top_p"
    case minP = "min_p"
    case typicalP = "typical_p"
    case epsilon
    case eta
    case topNSigma = "top_n_sigma"
    case xtc
    case mirostat

    /// The default order: edits that depend on the sequence so far, then the warpers, in
    /// Hugging Face transformers' order (temperature, top-k, top-p, min-p, typical, epsilon, eta),
    /// then llama.cpp's top-n-σ and XTC, and mirostat, which llama.cpp runs last.
    public static let defaultOrder: [ProcessorKind] = allCases

    /// Warpers that remove tokens (every warper but temperature).
    public var truncates: Bool { isWarper && self != .temperature }

    /// Stages that reshape the distribution for sampling; beam search and greedy skip them.
    public var isWarper: Bool {
        switch self {
        case .temperature, .topK, .topP, .minP, .typicalP, .epsilon, .eta, .topNSigma, .xtc, .mirostat: true
        default: false
        }
    }
}

/// Every option of the chain. Each default leaves its stage off.
public struct ProcessorSettings: Equatable, Sendable {
    /// Divides the logits; 0 means greedy (the warpers are skipped and the argmax is taken).
    public var temperature: Float = 1
    /// Keep the k highest logits (and any tied with the k-th); 0: off.
    public var topK: Int = 0
    /// Keep the smallest set of most probable tokens whose probability reaches p; 1: off.
    public var topP: Float = 1
    /// Keep tokens whose probability is at least min_p × the top probability; 0: off.
    public var minP: Float = 0
    /// Keep the most typical tokens up to this mass (Meister et al. 2022); 1: off.
    public var typicalP: Float = 1
    /// Epsilon sampling (Hewitt et al. 2022, transformers' EpsilonLogitsWarper): keep tokens whose
    /// probability is at least this; 0: off.
    public var epsilonCutoff: Float = 0
    /// Eta sampling (the same paper, EtaLogitsWarper): keep tokens whose probability is at least
    /// min(ε, √ε · e^−H), H the entropy; 0: off.
    public var etaCutoff: Float = 0
    /// Top-n-σ (Tang et al. 2024, llama.cpp's top-n-sigma): remove tokens whose logit is below
    /// max − n·σ, σ the population standard deviation of the finite logits; 0: off.
    public var topNSigma: Float = 0
    /// XTC, "exclude top choices" (llama.cpp's xtc): with this probability per token (a seeded
    /// coin), remove every token whose probability is at least `xtcThreshold` but the least likely
    /// of them; 0: off.
    public var xtcProbability: Float = 0
    public var xtcThreshold: Float = 0.1
    /// Dynamic temperature (llama.cpp's temp-ext): when > 0, the temperature is
    /// max(0, T − range) + 2·range·(H / ln n)^exponent, H the entropy of the n candidates; 0: off.
    public var dynatempRange: Float = 0
    public var dynatempExponent: Float = 1
    /// Mirostat 2.0 (Basu et al. 2020, llama.cpp's mirostat-v2): target surprise τ in bits, learning
    /// rate η; keeps the tokens whose surprise −log₂ p is at most the sequence's μ (μ₀ = 2τ); 0: off.
    public var mirostatTau: Float = 0
    public var mirostatEta: Float = 0.1
    /// Warpers never leave fewer tokens than this.
    public var minTokensToKeep: Int = 1
    /// Divides positive / multiplies negative logits of every token already in the sequence
    /// (prompt included), once per token; 1: off.
    public var repetitionPenalty: Float = 1
    /// Subtracted once from the logit of every token generated so far (not the prompt).
    public var presencePenalty: Float = 0
    /// Subtracted per occurrence from the logit of every token generated so far.
    public var frequencyPenalty: Float = 0
    /// DRY (text-generation-webui's, as llama.cpp implements it): subtract multiplier ·
    /// base^(n − allowed_length) from a token that would extend a repeat of n ≥ allowed_length
    /// tokens of the last `dryPenaltyLastN` of prompt + generated (−1: all); 0: off.
    public var dryMultiplier: Float = 0
    public var dryBase: Float = 1.75
    public var dryAllowedLength = 2
    public var dryPenaltyLastN = -1
    /// Token sequences a repeat may not reach back across (llama.cpp's sequence breakers, as ids).
    public var drySequenceBreakers: [[Int]] = []
    /// Bans any token that would repeat an n-gram of the sequence (prompt included); 0: off.
    public var noRepeatNGramSize: Int = 0
    /// Added to the logits of the given tokens.
    public var logitBias: [Int: Float] = [:]
    /// Never chosen.
    public var bannedTokens: [Int] = []
    /// Token sequences that must not appear: the last token of each is banned whenever the
    /// sequence ends with the rest of it.
    public var bannedSequences: [[Int]] = []
    /// When set, only these tokens can be chosen.
    public var allowedTokens: [Int]?
    /// End-of-sequence tokens are banned until this many tokens have been generated.
    public var minNewTokens: Int = 0
    /// End-of-sequence token ids.
    public var eosTokens: [Int] = []
    /// The order the stages run in; stages left out do not run.
    public var order: [ProcessorKind] = ProcessorKind.defaultOrder

    public init() {}

    /// Whether this stage changes anything with these settings.
    public func isActive(_ kind: ProcessorKind) -> Bool {
        switch kind {
        case .repetitionPenalty: repetitionPenalty != 1
        case .presenceFrequencyPenalty: presencePenalty != 0 || frequencyPenalty != 0
        case .dry: dryMultiplier != 0 && dryPenaltyLastN != 0
        case .noRepeatNGram: noRepeatNGramSize > 0
        case .logitBias: !logitBias.isEmpty
        case .bannedTokens: !bannedTokens.isEmpty || !bannedSequences.isEmpty
        case .allowedTokens: allowedTokens != nil
        case .minTokens: minNewTokens > 0 && !eosTokens.isEmpty
        case .temperature: temperature != 0 && (temperature != 1 || dynatempRange > 0)
        case .topK: topK > 0
        case .topP: topP < 1
        case .minP: minP > 0
        case .typicalP: typicalP < 1
        case .epsilon: epsilonCutoff > 0
        case .eta: etaCutoff > 0
        case .topNSigma: topNSigma > 0
        case .xtc: xtcProbability > 0 && xtcThreshold <= 0.5
        case .mirostat: mirostatTau > 0
        }
    }

    /// The stages that will run, in order.
    public var activeStages: [ProcessorKind] { order.filter(isActive) }

    /// Refuses values outside each option's domain, naming the option, against a vocabulary size.
    public func validate(vocab: Int) throws(ParameterError) {
        func require(_ condition: Bool, _ name: String, _ rule: String) throws(ParameterError) {
            if !condition { throw ParameterError(name: name, rule: rule) }
        }
        func tokens(_ ids: [Int], _ name: String) throws(ParameterError) {
            for id in ids where id < 0 || id >= vocab {
                throw ParameterError(name: name, rule: "token \(id) is outside the vocabulary (0..<\(vocab))")
            }
        }
        try require(temperature.isFinite && temperature >= 0, "temperature", "must be a finite number ≥ 0")
        try require(topK >= 0, "top_k", "must be ≥ 0 (0 turns it off)")
        try require(topP > 0 && topP <= 1, "top_p", "must be in (0, 1]")
        try require(minP >= 0 && minP <= 1, "min_p", "must be in [0, 1]")
        try require(typicalP > 0 && typicalP <= 1, "typical_p", "must be in (0, 1]")
        try require(epsilonCutoff >= 0 && epsilonCutoff < 1, "epsilon_cutoff", "must be in [0, 1) (0 turns it off)")
        try require(etaCutoff >= 0 && etaCutoff < 1, "eta_cutoff", "must be in [0, 1) (0 turns it off)")
        try require(minTokensToKeep >= 1, "min_tokens_to_keep", "must be ≥ 1")
        try require(topNSigma.isFinite && topNSigma >= 0, "top_n_sigma", "must be a finite number ≥ 0 (0 turns it off)")
        try require(xtcProbability >= 0 && xtcProbability <= 1, "xtc_probability", "must be in [0, 1] (0 turns it off)")
        try require(xtcThreshold >= 0 && xtcThreshold <= 1, "xtc_threshold", "must be in [0, 1] (above 0.5 it removes nothing)")
        try require(dynatempRange.isFinite && dynatempRange >= 0, "dynatemp_range", "must be a finite number ≥ 0 (0 turns it off)")
        try require(dynatempExponent.isFinite && dynatempExponent > 0, "dynatemp_exponent", "must be a finite number > 0")
        try require(mirostatTau.isFinite && mirostatTau >= 0, "mirostat_tau", "must be a finite number ≥ 0 (0 turns it off)")
        try require(mirostatEta.isFinite && mirostatEta > 0, "mirostat_eta", "must be a finite number > 0")
        try require(repetitionPenalty.isFinite && repetitionPenalty > 0, "repetition_penalty", "must be a finite number > 0")
        try require(presencePenalty.isFinite, "presence_penalty", "must be finite")
        try require(frequencyPenalty.isFinite, "frequency_penalty", "must be finite")
        try require(noRepeatNGramSize >= 0, "no_repeat_ngram_size", "must be ≥ 0")
        try require(dryMultiplier.isFinite && dryMultiplier >= 0, "dry_multiplier", "must be a finite number ≥ 0 (0 turns it off)")
        try require(dryBase.isFinite && dryBase >= 1, "dry_base", "must be a finite number ≥ 1")
        try require(dryAllowedLength >= 1, "dry_allowed_length", "must be ≥ 1")
        try require(dryPenaltyLastN >= -1, "dry_penalty_last_n", "must be ≥ -1 (-1: the whole context, 0: off)")
        for breaker in drySequenceBreakers {
            try require(!breaker.isEmpty, "dry_sequence_breakers", "must not contain an empty sequence")
            try tokens(breaker, "dry_sequence_breakers")
        }
        try require(minNewTokens >= 0, "min_new_tokens", "must be ≥ 0")
        try tokens(Array(logitBias.keys), "logit_bias")
        for (token, bias) in logitBias where !bias.isFinite && bias != -.infinity {
            throw ParameterError(name: "logit_bias", rule: "the bias of token \(token) must be finite or -inf")
        }
        try tokens(bannedTokens, "banned_token_ids")
        for sequence in bannedSequences {
            try require(!sequence.isEmpty, "banned_sequences", "must not contain an empty sequence")
            try tokens(sequence, "banned_sequences")
        }
        if let allowedTokens {
            try require(!allowedTokens.isEmpty, "allowed_token_ids", "must not be empty")
            try tokens(allowedTokens, "allowed_token_ids")
        }
        try tokens(eosTokens, "eos_token_ids")
        try require(Set(order).count == order.count, "order", "must not name a stage twice")
    }
}

/// An option outside its domain.
public struct ParameterError: Error, Equatable, Sendable, CustomStringConvertible {
    public let name: String
    public let rule: String
    public var description: String { "\(name) \(rule)" }
}

/// The tokens of one sequence so far: what the penalties, bans and stop rules look at.
public struct TokenHistory: Equatable, Sendable {
    public var prompt: [Int]
    public var generated: [Int]

    public init(prompt: [Int] = [], generated: [Int] = []) {
        self.prompt = prompt
        self.generated = generated
    }

    /// Prompt then generated tokens.
    public var all: [Int] { prompt + generated }

    /// Whether the whole sequence (prompt included) ends with `suffix`.
    public func endsWith(_ suffix: ArraySlice<Int>) -> Bool {
        let total = prompt.count + generated.count
        guard suffix.count <= total else { return false }
        for (offset, token) in suffix.reversed().enumerated() where self[total - 1 - offset] != token {
            return false
        }
        return true
    }

    /// Token `index` of prompt + generated.
    public subscript(index: Int) -> Int {
        index < prompt.count ? prompt[index] : generated[index - prompt.count]
    }
}
