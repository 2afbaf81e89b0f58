/// A budget for a reasoning model's thinking span: once a sequence has generated `budget` tokens
/// since the last `start` sequence without emitting `end`, the next tokens are forced to be `end`,
/// one per step. Everything is read from the sequence's tokens, so a recovered session forces
/// exactly where the original would have.
public struct ThinkingBudget: Equatable, Sendable {
    public var start: [Int]
    public var end: [Int]
    public var budget: Int

    public init(start: [Int], end: [Int], budget: Int) {
        self.start = start
        self.end = end
        self.budget = budget
    }

    /// The token the next step must emit, or nil when the sequence chooses freely.
    public func forcedToken(_ history: TokenHistory) -> Int? {
        let all = history.all
        guard !start.isEmpty, !end.isEmpty, let opened = Self.lastEnd(of: start, in: all) else { return nil }
        // A span closed by `end` is over.
        if Self.lastEnd(of: end, in: all).map({ $0 > opened }) ?? false { return nil }
        let generatedInSpan = all.count - max(opened, history.prompt.count)
        guard generatedInSpan >= budget else { return nil }
        // Continue the longest part of `end` the span already ends with (forced or not).
        var matched = min(end.count - 1, all.count - opened)
        while matched > 0 && !all.suffix(matched).elementsEqual(end.prefix(matched)) { matched -= 1 }
        return end[matched]
    }

    /// The index just after the last occurrence of `pattern` in `tokens` (compared in place: this
    /// runs every step of a session with a budget).
    private static func lastEnd(of pattern: [Int], in tokens: [Int]) -> Int? {
        guard tokens.count >= pattern.count else { return nil }
        for start in stride(from: tokens.count - pattern.count, through: 0, by: -1)
        where tokens[start..<(start + pattern.count)].elementsEqual(pattern) {
            return start + pattern.count
        }
        return nil
    }
}

extension TokenSelector {
    /// Reports a token the thinking budget forces: its log-probabilities come from the chain without
    /// its truncating stages (truncation does not apply to a forced token, so "processed" reads as
    /// "temperature" here), its support is the token alone, its rank is of the raw row.
    public func forced(_ token: Int, row: LogitRow?, sparse: [Candidate]?, vocab: Int, history: TokenHistory, request: ReportRequest, workspace: Workspace) throws(LogitRowError) -> TokenReport {
        let sampling = generator != nil
        let set: CandidateSet
        let rank: Int?
        if let row {
            set = request.mode == .raw ? .dense(row, scale: 1) : try pipeline.candidates(for: row, history: history, sampling: sampling, truncating: false, workspace: workspace)
            rank = request.rank ? row.count(atLeast: row[token]) : nil
        } else {
            let candidates = sparse ?? []
            set = request.mode == .raw ? .sparse(candidates.filter { $0.logit > -.infinity }) : try pipeline.candidates(forSparse: candidates, history: history, sampling: sampling, truncating: false)
            let logit = candidates.first { Int($0.token) == token }?.logit ?? -.infinity
            rank = request.rank ? (logit == -.infinity ? vocab : candidates.count { $0.logit >= logit }) : nil
        }
        let logprobs = SetDistribution(set).logprobs(of: [token] + request.tokenIDs)
        return TokenReport(choice: TokenChoice(token: token, logprob: logprobs[0]), alternatives: Sampler.alternatives(request.alternatives, of: set, workspace: workspace),
                           rank: rank, tokenLogprobs: Array(logprobs.dropFirst()), support: request.support ? [token] : nil, mirostatMu: nil)
    }
}
