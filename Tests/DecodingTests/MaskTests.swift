import Decoding
import Foundation
import Testing

/// A row read through an allowed-token bitmask decodes exactly as the same row with -inf written
/// at every disallowed token — bit for bit, on every kernel variant, in every dtype — whatever the
/// disallowed positions hold (NaN and +inf included), since the kernels apply the mask as they load.
@Suite("Allowed-token masks", .serialized)
struct MaskTests {
    /// Masks of every shape the issue names, for a row of `logits`.
    static func masks(for logits: [Float], seed: UInt64) -> [(name: String, allowed: [Bool])] {
        var random = SplitMix64(state: seed)
        let count = logits.count
        let order = logits.indices.sorted { logits[$0] < logits[$1] }
        let single = Int.random(in: 0..<count, using: &random)
        var last = [Bool](repeating: false, count: count)
        for token in order.prefix(max(1, count / 50)) { last[token] = true }
        return [
            ("one allowed token", (0..<count).map { $0 == single }),
            ("all but one", (0..<count).map { $0 != single }),
            ("only the tokens ranked last", last),
            ("random half", (0..<count).map { _ in Bool.random(using: &random) }),
            ("every third", (0..<count).map { $0 % 3 == 1 }),
        ]
    }

    /// `allowed` as little-endian words, bit j of word w for token 32·w + j; the bits past the row
    /// are set, since they must be ignored.
    static func words(_ allowed: [Bool]) -> [UInt32] {
        var words = [UInt32](repeating: 0, count: (allowed.count + 31) / 32)
        for index in 0..<words.count * 32 where index >= allowed.count || allowed[index] {
            words[index / 32] |= 1 << UInt32(index % 32)
        }
        return words
    }

    @Test("masked rows equal rows with -inf at the disallowed tokens, bit for bit, on every supported variant")
    func equivalence() throws {
        let original = Kernels.active
        defer { try? Kernels.use(original) }
        // The rows up to 50,021 tokens: every code path, at a third of the time of all of them.
        for (rowName, logits) in KernelVariantTests.rows where logits.count > 1 && logits.count <= 50_021 {
            for (maskName, allowed) in Self.masks(for: logits, seed: UInt64(logits.count)) {
                // What is stored under the mask must not matter: NaN and +inf would be refused.
                var stored = logits
                var explicit = logits
                for index in logits.indices where !allowed[index] {
                    stored[index] = index % 2 == 0 ? .nan : .infinity
                    explicit[index] = -.infinity
                }
                guard explicit.contains(where: { $0 > -.infinity }) else { continue }
                for dtype in LogitDType.allCases {
                    for variant in Kernels.supported {
                        try Kernels.use(variant)
                        let masked = try KernelVariantTests.fingerprint(stored, dtype: dtype, mask: Self.words(allowed), plainPass: false)
                        let reference = try KernelVariantTests.fingerprint(explicit, dtype: dtype, plainPass: false)
                        let first = zip(masked, reference).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(masked.count, reference.count)
                        #expect(masked == reference, "\(rowName), \(maskName), \(dtype), \(variant): first difference at \(first) of \(reference.count)")
                    }
                }
            }
        }
    }

    @Test("a mask that leaves no finite logit is refused as an all-masked row")
    func nothingAllowed() throws {
        let logits: [Float] = (0..<100).map { Float($0) }
        let row = EncodedRow(logits, dtype: .float32)
        var allowed = [Bool](repeating: false, count: 100)
        #expect(throws: LogitRowError.allMasked) { try row.withRow(mask: Self.words(allowed)) { try Greedy.choose(from: $0) } }
        // Allowing a token whose logit is -inf leaves nothing either.
        var withMinusInfinity = logits
        withMinusInfinity[40] = -.infinity
        allowed[40] = true
        #expect(throws: LogitRowError.allMasked) {
            try EncodedRow(withMinusInfinity, dtype: .float32).withRow(mask: Self.words(allowed)) { try Greedy.choose(from: $0) }
        }
    }

    @Test("greedy picks the best allowed token, and sampling never draws a disallowed one")
    func neverDisallowed() throws {
        var random = SplitMix64(state: 99)
        let logits = (0..<4_099).map { _ in Float(random.normal(sigma: 3)) }
        for (name, allowed) in Self.masks(for: logits, seed: 5) {
            let row = EncodedRow(logits, dtype: .bfloat16)
            let best = logits.indices.filter { allowed[$0] }.max { (row.values[$0], $1) < (row.values[$1], $0) }!
            let choice = try row.withRow(mask: Self.words(allowed)) { try Greedy.choose(from: $0) }
            #expect(choice.token == best, "\(name)")
            var settings = ProcessorSettings()
            settings.topP = 0.95
            let selector = TokenSelector(settings: settings, seed: 3)
            let workspace = Workspace()
            for step in 0..<200 {
                let token = try row.withRow(mask: Self.words(allowed)) {
                    try selector.choose(from: $0, history: TokenHistory(), sequence: 0, step: step, workspace: workspace).token
                }
                #expect(allowed[token], "\(name): drew disallowed token \(token)")
            }
        }
    }
}
