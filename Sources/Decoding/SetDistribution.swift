import RealModule

/// log p of any token under a candidate set, its normaliser computed once; and its entropy.
struct SetDistribution {
    let set: CandidateSet
    /// Dense: the row's maximum (raw units); sparse: the largest logit.
    let shift: Float
    /// Σ exp((x − shift) × scale) over the distribution, and its log.
    let total: Double
    let logTotal: Double

    /// Candidates whose row's full log-sum-exp is known (a top-K frame that sent it): their
    /// log-probabilities are logit − logNormaliser, not renormalised over the candidates.
    init(_ candidates: [Candidate], logNormaliser: Float) {
        set = .sparse(candidates)
        shift = candidates.map(\.logit).max() ?? 0
        logTotal = Double(logNormaliser) - Double(shift)
        total = Double.exp(logTotal)
    }

    init(_ set: CandidateSet) {
        self.set = set
        switch set {
        case .dense(let row, let scale):
            // The pipeline validated the row; a row it refused never gets here.
            (shift, total) = (try? row.validatedNormaliser(scale: scale)).map { ($0.maximum.value, $0.exponentialSum) } ?? (0, 1)
        case .sparse(let candidates):
            shift = candidates.map(\.logit).max() ?? 0
            total = Warpers.exponentialWeights(candidates, shift: shift).reduce(0.0) { $0 + Double($1) }
        }
        logTotal = Double.log(total)
    }

    /// log p of a token whose logit in the set (scaled for sparse sets) is `logit`.
    private func logprob(logit: Float, scale: Float) -> Float {
        logit == -.infinity ? -.infinity : Float(Double((logit - shift) * scale) - logTotal)
    }

    /// log p(token), as Sampler reports it (−inf outside the distribution).
    func logprob(of token: Int) -> Float {
        switch set {
        case .dense(let row, let scale): return logprob(logit: row[token], scale: scale)
        case .sparse(let candidates): return logprob(logit: candidates.first { Int($0.token) == token }?.logit ?? -.infinity, scale: 1)
        }
    }

    /// p(token).
    func probability(of token: Int) -> Double {
        let logprob = logprob(of: token)
        return logprob == -.infinity ? 0 : Double(exponential(logprob))
    }

    func logprobs(of tokens: [Int]) -> [Float] {
        switch set {
        case .dense(let row, let scale):
            return tokens.map { logprob(logit: row[$0], scale: scale) }
        case .sparse(let candidates):
            let wanted = Set(tokens)
            var logits: [Int: Float] = [:]
            for candidate in candidates where wanted.contains(Int(candidate.token)) { logits[Int(candidate.token)] = candidate.logit }
            return tokens.map { logprob(logit: logits[$0] ?? -.infinity, scale: 1) }
        }
    }

    /// −Σ p log p in nats: ln Σe − Σ e·y / Σe, y the shifted (scaled) logits and e = exp(y).
    var entropy: Float {
        let moment: Double
        switch set {
        case .dense(let row, let scale):
            moment = row.exponentialMoment(shiftedBy: shift, scale: scale)
        case .sparse(let candidates):
            let weights = Warpers.exponentialWeights(candidates, shift: shift)
            moment = zip(candidates, weights).reduce(0.0) { $1.1 > 0 ? $0 + Double($1.1) * Double($1.0.logit - shift) : $0 }
        }
        return Float(max(0, logTotal - moment / total))
    }
}
