/// A token still in the running, with its (processed) logit.
public struct Candidate: Equatable, Sendable {
    public var token: Int32
    public var logit: Float

    public init(token: Int, logit: Float) {
        self.token = Int32(token)
        self.logit = logit
    }

    /// The documented order of candidates: higher logit first, lower token id among equals.
    @inline(__always)
    static func ranksBefore(_ a: Candidate, _ b: Candidate) -> Bool {
        a.logit > b.logit || (a.logit == b.logit && a.token < b.token)
    }
}

/// What the chain works on: either the whole row, read in place (nothing removed yet; `scale` is a
/// pending temperature, 1/T, applied lazily because comparisons do not need it), or the survivors
/// of some filter, in ascending token order, with their logits already scaled.
public enum CandidateSet {
    case dense(LogitRow, scale: Float)
    case sparse([Candidate])

    /// The survivors as an explicit list (ascending token id), logits scaled. O(V) on a dense set.
    public func materialized() -> [Candidate] {
        switch self {
        case .sparse(let candidates): return candidates
        case .dense(let row, let scale):
            var candidates: [Candidate] = []
            candidates.reserveCapacity(row.count)
            for index in 0..<row.count {
                let value = row[index]
                if value > -.infinity { candidates.append(Candidate(token: index, logit: value * scale)) }
            }
            return candidates
        }
    }
}
