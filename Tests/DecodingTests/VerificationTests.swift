import Decoding
import Foundation
import Testing

/// A toy target or draft model over a small vocabulary: logits from a hash of the prefix.
struct HashedModel {
    let vocab: Int
    let salt: UInt64
    let sigma: Double

    func logits(_ prefix: [Int]) -> [Float] {
        var generator = SplitMix64(state: prefix.reduce(salt) { ($0 ^ UInt64($1 + 1)) &* 0x100_0000_01B3 })
        return (0..<vocab).map { _ in Float(generator.normal(sigma: sigma)) }
    }
}

/// How a test draft proposes: its distribution q at a prefix (the draft's own processing done).
enum DraftKind: String, CaseIterable, Sendable {
    /// q = the target's processed distribution.
    case equal
    /// q from an unrelated model.
    case far
    /// q only on tokens the target's processing removes (so every draft token is rejected).
    case disjoint
    /// q on four tokens, sent as sparse candidates.
    case sparse
    /// No probabilities: the draft token is the target's least likely surviving token.
    case pointMass
}

struct VerificationCase: CustomTestStringConvertible, Sendable {
    let name: String
    let settings: ProcessorSettings
    let draft: DraftKind
    var testDescription: String { "\(name), draft \(draft.rawValue)" }
}

let verificationSettings: [(String, ProcessorSettings)] = [
    ("no processors", ProcessorSettings()),
    ("temperature 0.7, top-p 0.8, repetition penalty 1.5", {
        var settings = ProcessorSettings()
        settings.temperature = 0.7
        settings.topP = 0.8
        settings.repetitionPenalty = 1.5
        return settings
    }()),
]

let verificationCases: [VerificationCase] = verificationSettings.flatMap { name, settings in
    DraftKind.allCases.compactMap { draft in
        // Without truncation every token has p > 0: a disjoint draft needs the top-p case.
        draft == .disjoint && settings.topP == 1 ? nil : VerificationCase(name: name, settings: settings, draft: draft)
    }
}

@Suite("Speculative verification")
struct VerificationTests {
    static let vocab = 6
    static let target = HashedModel(vocab: vocab, salt: 0xC0FFEE, sigma: 1.5)
    static let other = HashedModel(vocab: vocab, salt: 0xD4AF7, sigma: 1.5)

    /// The processed target distribution at `prefix`, in Float64, after Hugging Face's chain.
    static func p(_ prefix: [Int], _ settings: ProcessorSettings) -> [Double] {
        let processed = ReferenceChain.run(target.logits(prefix).map(Double.init), settings, history: TokenHistory(generated: prefix), sampling: true)
        return ReferenceChain.softmax(processed)
    }

    /// The draft's distribution at `prefix`: nil for a point mass (the token is then `pointToken`).
    static func q(_ prefix: [Int], _ kind: DraftKind, _ settings: ProcessorSettings) -> [Double]? {
        switch kind {
        case .equal: return p(prefix, settings)
        case .far: return ReferenceChain.softmax(other.logits(prefix).map(Double.init))
        case .disjoint:
            let removed = p(prefix, settings).map { $0 == 0 ? 1.0 : 0.0 }
            let total = removed.reduce(0, +)
            return removed.map { $0 / total }
        case .sparse:
            var q = [Double](repeating: 0, count: vocab)
            let weights = ReferenceChain.softmax(other.logits(prefix).map(Double.init))
            for token in [0, 2, 3, 5] { q[token] = weights[token] }
            let total = q.reduce(0, +)
            return q.map { $0 / total }
        case .pointMass: return nil
        }
    }

    static func pointToken(_ prefix: [Int], _ settings: ProcessorSettings) -> Int {
        let p = p(prefix, settings)
        return p.indices.filter { p[$0] > 0 }.min { p[$0] < p[$1] }!
    }

    static func draw(_ q: [Double], _ generator: inout SplitMix64) -> Int {
        let u = Double.random(in: 0..<1, using: &generator)
        var cumulative = 0.0
        for (token, weight) in q.enumerated() {
            cumulative += weight
            if cumulative > u { return token }
        }
        return q.lastIndex { $0 > 0 }!
    }

    /// One VERIFY of a k-token draft after `prefix`, as the daemon runs it.
    static func verify(_ prefix: [Int], k: Int, selector: TokenSelector, kind: DraftKind, settings: ProcessorSettings, generator: inout SplitMix64,
                       sequence: Int = 0, workspace: Workspace) throws -> Verification {
        var draft: [Int] = []
        var distributions: [[Double]?] = []
        for _ in 0..<k {
            let q = Self.q(prefix + draft, kind, settings)
            draft.append(q.map { draw($0, &generator) } ?? pointToken(prefix + draft, settings))
            distributions.append(q)
        }
        let targets = (0...k).map { target.logits(prefix + draft.prefix($0)) }
        // Dense q rows in f32 (sparse: the four candidates), each normalised to sum 1 in Float.
        let draftRows: [[Float]] = distributions.map { $0.map { $0.map(Float.init) } ?? [] }
        let sparseRows: [[Candidate]] = draftRows.map { row in [0, 2, 3, 5].map { Candidate(token: $0, logit: row.isEmpty ? 0 : row[$0]) } }
        return try targets.withRows { rows in
            try draftRows.withRows { qRows in
                let targetRows = rows.map { TargetRow.dense($0) }
                let drafts: [DraftDistribution] = (0..<k).map { position in
                    switch kind {
                    case .pointMass: .pointMass
                    case .sparse: .sparse(sparseRows[position])
                    default: .dense(qRows[position])
                    }
                }
                let sums = try drafts.enumerated().map { try $1.validated(position: $0, token: draft[$0]) }
                return try selector.verify(draft: draft, targets: targetRows, distributions: drafts, sums: sums, history: TokenHistory(generated: prefix),
                                           stop: StopConditions(maxNewTokens: 1000), sequence: sequence, alternatives: 0, workspace: workspace)
            }
        }
    }

    @Test("the first three tokens follow the processed target distribution, and k = 1 accepts Σ min(p, q) on average", arguments: verificationCases)
    func exactness(_ testCase: VerificationCase) throws {
        let workspace = Workspace()
        var generator = SplitMix64(state: 77)
        let trials = 20_000
        let length = 3
        var counts: [[Int]: Int] = [:]
        for trial in 0..<trials {
            // A fresh seed per trial: each is an independent run of a session.
            let selector = TokenSelector(settings: testCase.settings, seed: UInt64(trial) &* 0x9E37_79B9 &+ 1)
            var emitted: [Int] = []
            while emitted.count < length {
                let k = 1 + trial % 4
                emitted += try Self.verify(emitted, k: k, selector: selector, kind: testCase.draft, settings: testCase.settings, generator: &generator, workspace: workspace).tokens.map(\.token)
            }
            counts[Array(emitted.prefix(length)), default: 0] += 1
        }
        // Expected: p(t1) · p(t2 | t1) · p(t3 | t1 t2); sequences of probability 0 must never come,
        // and cells expecting fewer than 5 are pooled.
        var expected: [[Int]: Double] = [[]: Double(trials)]
        for _ in 0..<length {
            var next: [[Int]: Double] = [:]
            for (prefix, mass) in expected {
                for (token, probability) in Self.p(prefix, testCase.settings).enumerated() where probability > 0 {
                    next[prefix + [token]] = mass * probability
                }
            }
            expected = next
        }
        for sequence in counts.keys where expected[sequence] == nil {
            Issue.record("\(sequence) has probability 0 but came \(counts[sequence]!) times")
        }
        var statistic = 0.0
        var cells = 0
        var pooled = (observed: 0.0, expected: 0.0)
        for (sequence, mass) in expected {
            let observed = Double(counts[sequence] ?? 0)
            if mass < 5 {
                pooled = (pooled.observed + observed, pooled.expected + mass)
            } else {
                statistic += (observed - mass) * (observed - mass) / mass
                cells += 1
            }
        }
        if pooled.expected > 0 {
            statistic += (pooled.observed - pooled.expected) * (pooled.observed - pooled.expected) / pooled.expected
            cells += 1
        }
        #expect(statistic < chiSquareCritical(df: cells - 1), "chi-square \(statistic) over \(cells) cells")

        // k = 1 at the empty prefix: accepted with probability Σ min(p, q).
        let p = Self.p([], testCase.settings)
        let q = Self.q([], testCase.draft, testCase.settings) ?? (0..<Self.vocab).map { $0 == Self.pointToken([], testCase.settings) ? 1 : 0 }
        let rate = zip(p, q).reduce(0) { $0 + min($1.0, $1.1) }
        var accepted = 0
        for trial in 0..<trials {
            let selector = TokenSelector(settings: testCase.settings, seed: UInt64(trial) &+ 0xABCDEF)
            accepted += try Self.verify([], k: 1, selector: selector, kind: testCase.draft, settings: testCase.settings, generator: &generator, workspace: workspace).accepted
        }
        let sigma = (Double(trials) * rate * (1 - rate)).squareRoot()
        #expect(abs(Double(accepted) - Double(trials) * rate) <= 4 * sigma + 1, "accepted \(accepted) of \(trials); theory \(rate)")
    }

    @Test("greedy verification returns the tokens plain greedy decoding of the same rows gives")
    func greedy() throws {
        var settings = ProcessorSettings()
        settings.temperature = 0
        settings.repetitionPenalty = 1.3
        settings.noRepeatNGramSize = 2
        let selector = TokenSelector(settings: settings, seed: nil)
        let model = HashedModel(vocab: 40, salt: 5, sigma: 2)
        let workspace = Workspace()
        var generator = SplitMix64(state: 3)
        for trial in 0..<300 {
            let prefix: [Int] = (0..<(trial % 5)).map { _ in Int.random(in: 0..<40, using: &generator) }
            // Plain greedy: the reference continuation.
            var plain: [Int] = []
            for _ in 0..<6 {
                let logits = model.logits(prefix + plain)
                plain.append(try logits.withUnsafeBytes { try selector.choose(from: LogitRow(bytes: $0, dtype: .float32), history: TokenHistory(generated: prefix + plain), sequence: 0, step: 0, workspace: workspace).token })
            }
            // A draft that agrees for a random number of tokens, then guesses.
            let agree = trial % 5
            let k = 4
            let draft = (0..<k).map { $0 < agree ? plain[$0] : (plain[$0] + 1 + trial) % 40 }
            let targets = (0...k).map { model.logits(prefix + draft.prefix($0)) }
            let result = try targets.withRows { rows in
                try selector.verify(draft: draft, targets: rows.map(TargetRow.dense), distributions: Array(repeating: .pointMass, count: k), sums: Array(repeating: 1, count: k),
                                    history: TokenHistory(generated: prefix), stop: StopConditions(maxNewTokens: 1000), sequence: 0, alternatives: 0, workspace: workspace)
            }
            let matching = zip(draft, plain).prefix { $0 == $1 }.count
            #expect(result.accepted == matching)
            #expect(result.tokens.map(\.token) == Array(plain.prefix(min(matching, k) + 1)))
        }
    }

    @Test("a stop condition cuts the run where it fires, and draws depend only on seed, sequence and position")
    func stopsAndDeterminism() throws {
        var settings = ProcessorSettings()
        settings.temperature = 0.9
        let workspace = Workspace()
        let selector = TokenSelector(settings: settings, seed: 42)
        let model = HashedModel(vocab: 8, salt: 9, sigma: 1)
        let draft = [1, 2, 3, 4]
        let targets = (0...4).map { model.logits(Array(draft.prefix($0))) }
        // q = p: every draft token is accepted (p / q = 1 but for rounding), so the last token is the bonus.
        let q: [[Float]] = (0..<4).map { ReferenceChain.softmax(targets[$0].map { Double($0) / 0.9 }).map(Float.init) }
        let run = { (stop: StopConditions, sequence: Int) throws -> Verification in
            try targets.withRows { rows in
                try q.withRows { qRows in
                    let drafts = qRows.map(DraftDistribution.dense)
                    let sums = try drafts.enumerated().map { try $1.validated(position: $0, token: draft[$0]) }
                    return try selector.verify(draft: draft, targets: rows.map(TargetRow.dense), distributions: drafts, sums: sums,
                                               history: TokenHistory(), stop: stop, sequence: sequence, alternatives: 2, workspace: workspace)
                }
            }
        }
        let free = try run(StopConditions(maxNewTokens: 100), 0)
        #expect(free.accepted == 4 && free.tokens.count == 5 && Array(free.tokens.map(\.token).prefix(4)) == draft)
        #expect(try run(StopConditions(maxNewTokens: 100), 0) == free)
        // The bonus token is what plain sampling draws at that position.
        let plain = try targets[4].withUnsafeBytes {
            try selector.choose(from: LogitRow(bytes: $0, dtype: .float32), history: TokenHistory(generated: draft), sequence: 0, step: 4, workspace: workspace)
        }
        #expect(free.tokens.last == plain)
        let budget = try run(StopConditions(maxNewTokens: 2), 0)
        #expect(budget.tokens == Array(free.tokens.prefix(2)) && budget.finishReason == .maxTokens && budget.accepted == 2)
        #expect(budget.alternatives.count == 2 && budget.alternatives[0].count == 2)
        let eos = try run(StopConditions(eosTokens: [draft[0]], maxNewTokens: 100), 0)
        #expect(eos.tokens.count == 1 && eos.finishReason == .eos && eos.accepted == 1)
        let stopSequence = try run(StopConditions(stopSequences: [[2, 3]], maxNewTokens: 100), 0)
        #expect(stopSequence.tokens.map(\.token) == [1, 2, 3] && stopSequence.finishReason == .stopSequence)
        // Another sequence number draws differently (here: a different bonus token or log p, over a few tries).
        let others = try (1...8).map { try run(StopConditions(maxNewTokens: 100), $0).tokens.last! }
        #expect(others.contains { $0 != free.tokens.last! })
    }

    @Test("draft distributions that are not distributions are refused, naming the position")
    func badDrafts() throws {
        let rows: [[Float]] = [[0.5, 0.5, 0], [0.5, -0.1, 0.6], [Float.nan, 0.5, 0.5], [0.2, 0.2, 0.2], [0, 1, 0]]
        try rows.withRows { (q) throws in
            #expect(try DraftDistribution.dense(q[0]).validated(position: 0, token: 1) == 1)
            #expect(throws: DraftError.negative(position: 1, token: 1, value: -0.1)) { try DraftDistribution.dense(q[1]).validated(position: 1, token: 0) }
            #expect(throws: DraftError.notANumber(position: 2, token: 0)) { try DraftDistribution.dense(q[2]).validated(position: 2, token: 1) }
            let sum = #expect(throws: DraftError.self) { try DraftDistribution.dense(q[3]).validated(position: 3, token: 0) }
            #expect(sum?.description.contains("draft position 3: the probabilities sum to 0.6") == true, "\(String(describing: sum))")
            #expect(throws: DraftError.zeroOnDraftToken(position: 4, token: 0)) { try DraftDistribution.dense(q[4]).validated(position: 4, token: 0) }
        }
        #expect(throws: DraftError.zeroOnDraftToken(position: 0, token: 7)) { try DraftDistribution.sparse([Candidate(token: 3, logit: 1)]).validated(position: 0, token: 7) }
    }
}

extension Array where Element == [Float] {
    /// The rows as float32 LogitRows, valid inside `body`.
    func withRows<R>(_ body: ([LogitRow]) throws -> R) rethrows -> R {
        let flat = self.flatMap { $0 }
        return try flat.withUnsafeBytes { bytes in
            var offset = 0
            let rows = self.map { row -> LogitRow in
                defer { offset += row.count * 4 }
                return LogitRow(bytes: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + row.count * 4)]), dtype: .float32)
            }
            return try body(rows)
        }
    }
}
