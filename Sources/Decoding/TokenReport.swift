import RealModule

/// Which distribution a step's reported log-probabilities are taken from.
public enum LogprobsMode: String, CaseIterable, Sendable {
    /// After the whole chain, renormalised over the tokens it kept: the distribution the token was
    /// chosen from.
    case processed
    /// The log-softmax of the row as received (its mask applied, nothing else): vLLM's raw logprobs.
    case raw
    /// After the stages that do not remove tokens (penalties, bans, bias, temperature), before
    /// truncation: vLLM's processed logprobs.
    case temperature
}

/// What a step reports beyond the chosen token.
public struct ReportRequest: Equatable, Sendable {
    public var mode: LogprobsMode = .processed
    /// The most likely tokens, in `mode`.
    public var alternatives = 0
    /// The chosen token's rank in the raw row.
    public var rank = false
    /// Tokens whose log-probabilities (in `mode`) are reported whatever was chosen.
    public var tokenIDs: [Int] = []
    /// The tokens the chain left, which sampling could have chosen.
    public var support = false

    public init(mode: LogprobsMode = .processed, alternatives: Int = 0, rank: Bool = false, tokenIDs: [Int] = [], support: Bool = false) {
        self.mode = mode
        self.alternatives = alternatives
        self.rank = rank
        self.tokenIDs = tokenIDs
        self.support = support
    }
}

/// The chosen token with what the request asked for.
public struct TokenReport: Equatable, Sendable {
    /// The token, with its log-probability in the requested mode.
    public var choice: TokenChoice
    public var alternatives: [TokenChoice]
    /// 1 + the number of other tokens whose raw logit is at least the chosen one's (ties count
    /// against it, as vLLM ranks); nil unless asked.
    public var rank: Int?
    /// One per requested token id, in `mode`; -inf for a token the distribution excludes.
    public var tokenLogprobs: [Float]
    /// The tokens the chain kept, ascending; nil unless asked.
    public var support: [Int]?
    /// Mirostat: the sequence's μ after this token (μ − η·(surprise − τ)); nil without mirostat.
    public var mirostatMu: Float?
}

extension TokenSelector {
    /// Chooses the next token of `sequence` (whose next token is at `step`) from a dense row and
    /// reports what `request` asks for.
    public func report(from row: LogitRow, history: TokenHistory, sequence: Int, step: Int, request: ReportRequest, mirostatMu: Float? = nil, workspace: Workspace) throws(LogitRowError) -> TokenReport {
        if generator == nil && pipeline.isIdentity(sampling: false) && request == ReportRequest(alternatives: request.alternatives) {
            // Plain greedy: one read of the row validates it and gives the argmax and its log p.
            return TokenReport(choice: try Greedy.choose(from: row), alternatives: Sampler.alternatives(request.alternatives, of: .dense(row, scale: 1), workspace: workspace),
                               rank: nil, tokenLogprobs: [], support: nil, mirostatMu: nil)
        }
        let sampling = generator != nil
        let state = stageState(sequence: sequence, step: step, mirostatMu: mirostatMu)
        let set = try pipeline.candidates(for: row, history: history, sampling: sampling, state: state, workspace: workspace)
        let choice = generator.map { Sampler.sample(set, uniform: $0.uniform(sequence: sequence, step: step)) } ?? Sampler.greedy(set)
        let support = request.support ? Self.tokens(of: set, workspace: workspace) : nil
        let rank = request.rank ? row.count(atLeast: row[choice.token]) : nil
        let reported: CandidateSet = switch request.mode {
        case .processed: set
        case .raw: .dense(row, scale: 1)
        case .temperature: try pipeline.candidates(for: row, history: history, sampling: sampling, truncating: false, state: state, workspace: workspace)
        }
        return report(choice, in: reported, processed: request.mode == .processed, rank: rank, support: support, request: request, state: state, workspace: workspace)
    }

    /// The same for a row given as distinct candidates (every other token of the `vocab` -inf).
    /// With `logNormaliser` (the full row's log Σ exp, from a frame that carries it), raw-mode
    /// log-probabilities are exact: logit − logNormaliser.
    public func report(fromSparse candidates: [Candidate], vocab: Int, history: TokenHistory, sequence: Int, step: Int, request: ReportRequest, mirostatMu: Float? = nil,
                       logNormaliser: Float? = nil, workspace: Workspace) throws(LogitRowError) -> TokenReport {
        let sampling = generator != nil
        let state = stageState(sequence: sequence, step: step, mirostatMu: mirostatMu)
        let set = try pipeline.candidates(forSparse: candidates, history: history, sampling: sampling, state: state)
        let choice = generator.map { Sampler.sample(set, uniform: $0.uniform(sequence: sequence, step: step)) } ?? Sampler.greedy(set)
        let support = request.support ? Self.tokens(of: set, workspace: workspace) : nil
        var rank: Int?
        if request.rank {
            let logit = candidates.first { Int($0.token) == choice.token }?.logit ?? -.infinity
            rank = logit == -.infinity ? vocab : candidates.count { $0.logit >= logit }
        }
        let reported: CandidateSet = switch request.mode {
        case .processed: set
        // The pipeline validated the candidates.
        case .raw: .sparse(candidates.filter { $0.logit > -.infinity })
        case .temperature: try pipeline.candidates(forSparse: candidates, history: history, sampling: sampling, truncating: false, state: state)
        }
        if request.mode == .raw, let logNormaliser, case .sparse(let raw) = reported {
            let distribution = SetDistribution(raw, logNormaliser: logNormaliser)
            let top = raw.sorted(by: Candidate.ranksBefore).prefix(request.alternatives).map { Int($0.token) }
            let logprobs = distribution.logprobs(of: [choice.token] + request.tokenIDs + top)
            let named = Array(logprobs[1..<(1 + request.tokenIDs.count)])
            return TokenReport(choice: TokenChoice(token: choice.token, logprob: logprobs[0]), alternatives: zip(top, logprobs.suffix(top.count)).map { TokenChoice(token: $0, logprob: $1) },
                               rank: rank, tokenLogprobs: named, support: support, mirostatMu: updatedMirostatMu(state.mirostatMu, logprob: choice.logprob))
        }
        return report(choice, in: reported, processed: request.mode == .processed, rank: rank, support: support, request: request, state: state, workspace: workspace)
    }

    /// XTC's coin (draw purpose 3 at this token's position) and the sequence's mirostat μ.
    public func stageState(sequence: Int, step: Int, mirostatMu: Float?) -> StageState {
        let coin = pipeline.settings.isActive(.xtc) ? generator?.uniform(sequence: sequence, step: step, draw: 3) : nil
        return StageState(xtcCoin: coin, mirostatMu: pipeline.settings.isActive(.mirostat) ? mirostatMu : nil)
    }

    /// Mirostat's μ update after choosing a token with log-probability `logprob` (nats) under the
    /// final distribution: μ − η·(−log₂ p − τ).
    public func updatedMirostatMu(_ mu: Float?, logprob: Float) -> Float? {
        let settings = pipeline.settings
        guard let mu, settings.isActive(.mirostat), generator != nil else { return mu }
        return mu - settings.mirostatEta * (Float(-Double(logprob) / Double.log(2)) - settings.mirostatTau)
    }

    private func report(_ choice: TokenChoice, in set: CandidateSet, processed: Bool, rank: Int?, support: [Int]?, request: ReportRequest, state: StageState, workspace: Workspace) -> TokenReport {
        let alternatives = Sampler.alternatives(request.alternatives, of: set, workspace: workspace)
        let mu = updatedMirostatMu(state.mirostatMu, logprob: choice.logprob)
        guard !processed || !request.tokenIDs.isEmpty else {
            return TokenReport(choice: choice, alternatives: alternatives, rank: rank, tokenLogprobs: [], support: support, mirostatMu: mu)
        }
        let distribution = SetDistribution(set)
        let logprobs = distribution.logprobs(of: [choice.token] + request.tokenIDs)
        return TokenReport(choice: processed ? choice : TokenChoice(token: choice.token, logprob: logprobs[0]), alternatives: alternatives,
                           rank: rank, tokenLogprobs: Array(logprobs.dropFirst()), support: support, mirostatMu: mu)
    }

    /// The tokens of a set, ascending.
    private static func tokens(of set: CandidateSet, workspace: Workspace) -> [Int] {
        switch set {
        case .sparse(let candidates): return candidates.map { Int($0.token) }.sorted()
        case .dense(let row, _):
            // The pipeline validated the row.
            guard let summary = try? row.validatedSummary(workspace, slot: .inputBlocks) else { return [] }
            return row.collect(atLeast: -.infinity, summary: summary, scale: 1, workspace: workspace).map { Int($0.token) }
        }
    }
}
