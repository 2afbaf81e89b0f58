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
    /// Which distribution every reported log-probability comes from.
    public var logprobsMode = LogprobsMode.processed
    /// Each record's rank in the raw row, in the details frame.
    public var returnRank = false
    /// Tokens whose log-probabilities every record reports, in the details frame.
    public var logprobTokenIDs: [Int] = []
    /// The tokens sampling could have chosen, per record, in the details frame.
    public var returnSupport: SupportFormat?
    /// Forces `think_end_token_ids` once a sequence has generated this many tokens inside a
    /// thinking span; nil: no budget.
    public var thinking: ThinkingBudget?
    public var promptTokenIDs: [Int] = []
    /// Where a recovered session stands: OPEN with a history continues a session that another
    /// daemon (or this one, before a restart) was decoding, token for token.
    public var history: SessionHistory?

    public init(strategy: Strategy = .greedy, vocabSize: Int) {
        self.strategy = strategy
        self.vocabSize = vocabSize
    }

    static let knownKeys: Set<String> = ProcessorSettings.requestKeys.union([
        "strategy", "vocab_size", "max_new_tokens", "stop_sequences", "n", "beam_width", "length_penalty", "early_stopping",
        "num_return", "length_offset", "seed", "logprobs", "logprobs_mode", "return_rank", "logprob_token_ids", "return_support",
        "think_start_token_ids", "think_end_token_ids", "thinking_budget",
        "prompt_token_ids", "history",
    ])

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
        try bound("logprob_token_ids", logprobTokenIDs.count, limits.maxLogprobTokenIDs, "max_logprob_token_ids")
        let lists = [("think_start_token_ids", thinking?.start.count ?? 0), ("think_end_token_ids", thinking?.end.count ?? 0), ("prompt_token_ids", promptTokenIDs.count), ("eos_token_ids", processors.eosTokens.count), ("banned_token_ids", processors.bannedTokens.count),
                     ("allowed_token_ids", processors.allowedTokens?.count ?? 0), ("logit_bias", processors.logitBias.count)]
        for (name, count) in lists { try bound(name, count, limits.maxListLength, "max_list_length") }
        for (name, sequences) in [("stop_sequences", stopSequences), ("banned_sequences", processors.bannedSequences), ("dry_sequence_breakers", processors.drySequenceBreakers)] {
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
        if let token = logprobTokenIDs.first(where: { $0 < 0 || $0 >= vocabSize }) {
            throw refuse("\"logprob_token_ids\" holds \(token); token ids must be below vocab_size (\(vocabSize))")
        }
        if let thinking {
            if thinking.budget < 0 { throw refuse("\"thinking_budget\" must be ≥ 0") }
            if thinking.start.isEmpty || thinking.end.isEmpty {
                throw refuse("\"thinking_budget\" needs \"think_start_token_ids\" and \"think_end_token_ids\" (non-empty)")
            }
            if let token = (thinking.start + thinking.end).first(where: { $0 < 0 || $0 >= vocabSize }) {
                throw refuse("\"think_start_token_ids\" / \"think_end_token_ids\" hold \(token); token ids must be below vocab_size (\(vocabSize))")
            }
            if strategy == .beam { throw refuse("\"thinking_budget\" is for greedy and sample sessions") }
        }
        if strategy == .beam && (logprobsMode != .processed || hasDetails) {
            throw refuse("\"logprobs_mode\", \"return_rank\", \"logprob_token_ids\" and \"return_support\" are for greedy and sample sessions; beam scores are processed log-probabilities")
        }
        for sequence in stopSequences where sequence.isEmpty || sequence.contains(where: { $0 < 0 || $0 >= vocabSize }) {
            throw refuse("\"stop_sequences\" must hold non-empty sequences of token ids below vocab_size")
        }
        // Ids ≥ vocab_size are accepted, as transformers accepts them (special tokens past the
        // model's rows): the rules that index the row ignore them.
        if promptTokenIDs.contains(where: { $0 < 0 || $0 > Int(UInt32.max) }) {
            throw refuse("\"prompt_token_ids\" must be token ids from 0 to 4294967295")
        }
        if let history { try history.validate(self) }
    }

    /// Whether STEP replies carry a details frame.
    public var hasDetails: Bool { returnRank || !logprobTokenIDs.isEmpty || returnSupport != nil }

    /// What each greedy/sample step reports.
    public var reportRequest: ReportRequest {
        ReportRequest(mode: logprobsMode, alternatives: logprobs, rank: returnRank, tokenIDs: logprobTokenIDs, support: returnSupport != nil)
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
}
