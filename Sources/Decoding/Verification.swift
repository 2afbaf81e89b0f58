/// Speculative decoding: verifying a draft's k tokens against the target model's k + 1 rows in one
/// call, so that the tokens emitted have exactly the distribution plain decoding of the target
/// rows would give (Leviathan, Kalman & Matias 2023; Chen et al. 2023).
///
/// At position i the target row goes through the whole chain with the draft tokens before i
/// appended to the history, giving p, the distribution plain sampling would draw from there. The
/// draft token d is accepted with probability min(1, p(d) / q(d)); on a rejection the token is
/// drawn from norm(max(0, p − q)) and verification stops; when all k are accepted, a bonus token
/// is drawn from the last row as plain sampling would. Greedy sessions accept while d is the
/// processed argmax and return the argmax at the first mismatch. Every draw is Philox at
/// (sequence, position, purpose): purpose 0 is plain sampling's draw (so a bonus token is the
/// token a STEP would have drawn there), 1 the acceptance test, 2 the draw from the residual.

/// One target row: dense, or as candidates (every other token −inf).
public enum TargetRow {
    case dense(LogitRow)
    case sparse([Candidate])
}

/// The draft's distribution at one position, after the draft's own processing (its temperature
/// and truncation): what it sampled its token from.
public enum DraftDistribution {
    /// No probabilities (prompt or n-gram lookup): all mass on the draft token.
    case pointMass
    /// A probability for every token of the vocabulary (f32/f16/bf16), normalised by its sum.
    case dense(LogitRow)
    /// Probabilities of some tokens (`logit` holds the probability), every other token 0,
    /// normalised by their sum.
    case sparse([Candidate])
}

/// What a draft's distribution may not be.
public enum DraftError: Error, Equatable, Sendable, CustomStringConvertible {
    case notANumber(position: Int, token: Int)
    case negative(position: Int, token: Int, value: Float)
    case zeroOnDraftToken(position: Int, token: Int)
    case badSum(position: Int, sum: Double, tolerance: Double)

    public var description: String {
        switch self {
        case .notANumber(let position, let token): "draft position \(position): the probability of token \(token) is NaN"
        case .negative(let position, let token, let value): "draft position \(position): the probability of token \(token) is negative (\(value))"
        case .zeroOnDraftToken(let position, let token): "draft position \(position): the draft token \(token) has probability 0 under its own distribution"
        case .badSum(let position, let sum, let tolerance): "draft position \(position): the probabilities sum to \(sum), not 1 (± \(tolerance))"
        }
    }
}

extension DraftDistribution {
    /// How far a distribution's sum may be from 1: f32 rows 1e-3, f16 and bf16 rows (whose
    /// elements are rounded to 11 and 8 significant bits) 1e-2.
    public static func sumTolerance(_ dtype: LogitDType) -> Double { dtype == .float32 ? 1e-3 : 1e-2 }

    /// Checks the distribution at `position` for draft token `token`; returns its sum.
    public func validated(position: Int, token: Int) throws(DraftError) -> Double {
        let sum: Double
        let tolerance: Double
        switch self {
        case .pointMass:
            return 1
        case .dense(let row):
            let (invalid, total) = row.distributionCheck()
            if let index = invalid {
                let value = row[index]
                throw value.isNaN ? .notANumber(position: position, token: index) : .negative(position: position, token: index, value: value)
            }
            if !(row[token] > 0) { throw .zeroOnDraftToken(position: position, token: token) }
            (sum, tolerance) = (total, Self.sumTolerance(row.dtype))
        case .sparse(let candidates):
            var total = 0.0
            for candidate in candidates {
                if candidate.logit.isNaN { throw .notANumber(position: position, token: Int(candidate.token)) }
                if candidate.logit < 0 { throw .negative(position: position, token: Int(candidate.token), value: candidate.logit) }
                total += Double(candidate.logit)
            }
            guard candidates.contains(where: { Int($0.token) == token && $0.logit > 0 }) else { throw .zeroOnDraftToken(position: position, token: token) }
            (sum, tolerance) = (total, Self.sumTolerance(.float32))
        }
        guard abs(sum - 1) <= tolerance else { throw .badSum(position: position, sum: sum, tolerance: tolerance) }
        return sum
    }

    /// q as a function of the token, normalised by `sum` (`draft`: the draft token, where a point
    /// mass puts everything).
    func lookup(draft: Int, sum: Double) -> (Int) -> Double {
        switch self {
        case .pointMass:
            return { $0 == draft ? 1 : 0 }
        case .dense(let row):
            return { Double(row[$0]) / sum }
        case .sparse(let candidates):
            let table = Dictionary(candidates.map { (Int($0.token), Double($0.logit) / sum) }, uniquingKeysWith: +)
            return { table[$0] ?? 0 }
        }
    }
}

/// One verification's outcome: how many draft tokens were accepted, and the tokens emitted (the
/// accepted ones, then the correction or bonus token unless a stop condition cut the run first).
public struct Verification: Sendable, Equatable {
    public var accepted: Int
    public var tokens: [TokenChoice]
    /// Per emitted token, the most likely tokens of the distribution at its position.
    public var alternatives: [[TokenChoice]]
    /// Why the sequence finished, if it did (at the last emitted token).
    public var finishReason: FinishReason?
}

extension TokenSelector {
    /// Verifies `draft` (k ≥ 1 tokens) for sequence `sequence`, whose generated tokens so far are
    /// in `history`, against `targets` (k + 1 rows) and the draft's `distributions` (k, already
    /// validated; `sums` their sums). Throws the row error of the position it occurred at.
    public func verify(draft: [Int], targets: [TargetRow], distributions: [DraftDistribution], sums: [Double], history: TokenHistory,
                       stop: StopConditions, sequence: Int, alternatives: Int, workspace: Workspace) throws(VerificationError) -> Verification {
        precondition(!draft.isEmpty && targets.count == draft.count + 1 && distributions.count == draft.count && sums.count == draft.count)
        var history = history
        var result = Verification(accepted: 0, tokens: [], alternatives: [], finishReason: nil)
        for position in 0...draft.count {
            let at = history.generated.count
            let set: CandidateSet
            do throws(LogitRowError) {
                set = try processed(targets[position], history: history, state: stageState(sequence: sequence, step: at, mirostatMu: nil), workspace: workspace)
            } catch {
                throw .row(position, error)
            }
            let choice: TokenChoice
            var accepted = false
            if position == draft.count {
                // Every draft token accepted: the bonus token, as a STEP would have chosen it here.
                choice = generator.map { Sampler.sample(set, uniform: $0.uniform(sequence: sequence, step: at)) } ?? Sampler.greedy(set)
            } else if let generator {
                let target = SetDistribution(set)
                let token = draft[position]
                let q = distributions[position].lookup(draft: token, sum: sums[position])
                if generator.uniform(sequence: sequence, step: at, draw: 1) < min(1, target.probability(of: token) / q(token)) {
                    choice = TokenChoice(token: token, logprob: target.logprob(of: token))
                    accepted = true
                } else {
                    let token = target.residualSample(minus: distributions[position], draft: token, sum: sums[position],
                                                      uniform: generator.uniform(sequence: sequence, step: at, draw: 2))
                    choice = TokenChoice(token: token, logprob: target.logprob(of: token))
                }
            } else {
                choice = Sampler.greedy(set)
                accepted = choice.token == draft[position]
            }
            if accepted { result.accepted += 1 }
            result.tokens.append(choice)
            result.alternatives.append(Sampler.alternatives(alternatives, of: set, workspace: workspace))
            history.generated.append(choice.token)
            if let reason = stop.finishReason(history.generated) {
                result.finishReason = reason
                break
            }
            if !accepted { break }
        }
        return result
    }

    /// The distribution plain decoding would choose from: the whole chain (sampling) or the
    /// edits alone (greedy), with XTC's coin of this position.
    private func processed(_ row: TargetRow, history: TokenHistory, state: StageState, workspace: Workspace) throws(LogitRowError) -> CandidateSet {
        switch row {
        case .dense(let row): try pipeline.candidates(for: row, history: history, sampling: generator != nil, state: state, workspace: workspace)
        case .sparse(let candidates): try pipeline.candidates(forSparse: candidates, history: history, sampling: generator != nil, state: state)
        }
    }
}

/// A target row the verification could not use: which position (0-based, of the k + 1 rows) and why.
public enum VerificationError: Error, Equatable, Sendable {
    case row(Int, LogitRowError)
}

/// The processed target distribution at one position: what a rejection resamples from.
extension SetDistribution {
    /// A token drawn from norm(max(0, p − q)) with one uniform draw, walking tokens in ascending
    /// order. Were every residual weight 0 (p ≤ q everywhere, which a rejection rules out but for
    /// rounding), it draws from p.
    func residualSample(minus q: DraftDistribution, draft: Int, sum: Double, uniform u: Double) -> Int {
        switch set {
        case .dense(let row, let scale):
            if case .pointMass = q { return pointMassResidual(row, scale: scale, draft: draft, uniform: u) }
            var weights = [Float](repeating: 0, count: row.count)
            let written = weights.withUnsafeMutableBufferPointer { row.writeExponentials(shiftedBy: shift, scale: scale, into: $0) }
            let qValue = q.lookup(draft: draft, sum: sum)
            return weights.withUnsafeBufferPointer { w in
                Self.walk(count: w.count, token: { $0 }, p: { Double(w[$0]) / written }, q: qValue, uniform: u)
            }
        case .sparse(let candidates):
            let ordered = candidates.sorted { $0.token < $1.token }
            let weights = Warpers.exponentialWeights(ordered, shift: shift)
            let inOrderTotal = weights.reduce(0.0) { $0 + Double($1) }
            return Self.walk(count: ordered.count, token: { Int(ordered[$0].token) }, p: { Double(weights[$0]) / inOrderTotal },
                             q: q.lookup(draft: draft, sum: sum), uniform: u)
        }
    }

    /// Two passes over the support (token order): the residual mass, then the walk to u × mass.
    private static func walk(count: Int, token: (Int) -> Int, p: (Int) -> Double, q: (Int) -> Double, uniform u: Double) -> Int {
        var mass = 0.0
        for index in 0..<count { mass += max(0, p(index) - q(token(index))) }
        let residual = mass > 0
        let target = u * (residual ? mass : (0..<count).reduce(0.0) { $0 + p($1) })
        var cumulative = 0.0
        var last = 0
        for index in 0..<count {
            let weight = residual ? max(0, p(index) - q(token(index))) : p(index)
            guard weight > 0 else { continue }
            cumulative += weight
            last = index
            if cumulative > target { return token(index) }
        }
        return token(last)
    }

    /// A point mass on the draft token d: the residual is p without d, renormalised. Two inverse-CDF
    /// walks of the row: the first token whose running weight passes u × (total − w_d) if that
    /// comes before d, else the first whose running weight passes it plus w_d (never d itself).
    private func pointMassResidual(_ row: LogitRow, scale: Float, draft: Int, uniform u: Double) -> Int {
        let own = row[draft] == -.infinity ? 0 : Double(exponential((row[draft] - shift) * scale))
        guard total - own > 0 else { return draft }
        let target = u * (total - own)
        let first = row.inverseCDF(shift: shift, scale: scale, target: target)
        return first < draft ? first : row.inverseCDF(shift: shift, scale: scale, target: target + own)
    }
}
