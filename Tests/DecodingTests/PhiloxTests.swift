import Decoding
import Testing

@Suite("Counter-based RNG")
struct PhiloxTests {
    /// Random123's known-answer vectors for Philox4x32-10 (kat_vectors).
    static let knownAnswers: [((UInt32, UInt32, UInt32, UInt32), (UInt32, UInt32), [UInt32])] = [
        ((0, 0, 0, 0), (0, 0), [0x6627_E8D5, 0xE169_C58D, 0xBC57_AC4C, 0x9B00_DBD8]),
        ((0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF), (0xFFFF_FFFF, 0xFFFF_FFFF), [0x408F_276D, 0x41C8_3B0E, 0xA20B_C7C6, 0x6D54_51FD]),
        ((0x243F_6A88, 0x85A3_08D3, 0x1319_8A2E, 0x0370_7344), (0xA409_3822, 0x299F_31D0), [0xD16C_FE09, 0x94FD_CCEB, 0x5001_E420, 0x2412_6EA1]),
    ]

    @Test("Philox4x32-10 matches Random123's known answers")
    func knownAnswers() {
        for (counter, key, expected) in Self.knownAnswers {
            let output = Philox.rounds(counter: counter, key: key)
            #expect([output.0, output.1, output.2, output.3] == expected)
        }
    }

    @Test("draws depend only on (seed, sequence, step, draw) and look uniform")
    func uniform() {
        let generator = Philox(seed: 42)
        #expect(generator.uniform(sequence: 3, step: 7) == Philox(seed: 42).uniform(sequence: 3, step: 7))
        #expect(generator.uniform(sequence: 3, step: 7) != generator.uniform(sequence: 3, step: 8))
        #expect(generator.uniform(sequence: 3, step: 7) != generator.uniform(sequence: 4, step: 7))
        #expect(generator.uniform(sequence: 3, step: 7) != Philox(seed: 43).uniform(sequence: 3, step: 7))
        // 10 bins × 10,000 draws: chi-square with 9 degrees of freedom, 27.88 is the 0.001 critical value.
        var bins = [Int](repeating: 0, count: 10)
        for step in 0..<10_000 {
            let u = generator.uniform(sequence: 0, step: step)
            #expect(u >= 0 && u < 1)
            bins[Int(u * 10)] += 1
        }
        let chiSquare = bins.reduce(0.0) { $0 + Double(($1 - 1000) * ($1 - 1000)) / 1000 }
        #expect(chiSquare < 27.88, "\(bins)")
    }
}
