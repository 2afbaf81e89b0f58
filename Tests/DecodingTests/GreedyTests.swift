import Foundation
import Testing
import Decoding

@Suite("Greedy decoding")
struct GreedyTests {
    @Test("argmax and its log-probability match float64", arguments: RowCase.all, LogitDType.allCases)
    func matchesReference(row: RowCase, dtype: LogitDType) throws {
        let encoded = EncodedRow(row.logits, dtype: dtype)
        let choice = try encoded.withRow { try Greedy.choose(from: $0) }
        let expectedToken = Reference.argmax(encoded.values)
        #expect(choice.token == expectedToken)
        let expectedLogprob = Reference.logSoftmax(encoded.values)[expectedToken]
        #expect(abs(Double(choice.logprob) - expectedLogprob) <= 1e-5, "\(choice.logprob) vs \(expectedLogprob)")
    }

    /// (logits, token): ties go to the lowest id wherever they sit relative to the 16-lane blocks.
    static let tieCases: [([Float], Int)] = [
        ([1, 3, 2, 3], 1),
        ([5, 5, 5, 5, 5], 0),
        ((0..<40).map { [7, 23, 39].contains($0) ? 2 : 0 }, 7),
        ((0..<40).map { [23, 7].contains($0) ? 2 : 0 }, 7),
        ((0..<40).map { [17, 33].contains($0) ? 2 : 0 }, 17),
        ((0..<33).map { $0 == 32 ? 2 : 0 }, 32),
        ((0..<64).map { $0 == 0 ? -.infinity : 0 }, 1),
        ((0..<70).map { [5, 66].contains($0) ? 1e4 : -1e4 }, 5),
    ]

    @Test("at a scale (1 / temperature), log p is log softmax(row × scale) at the argmax", arguments: [Float(0.25), 0.5, 2, 8])
    func scaled(scale: Float) throws {
        for row in RowCase.all {
            let encoded = EncodedRow(row.logits, dtype: .float32)
            let choice = try encoded.withRow { try Greedy.choose(from: $0, scale: scale) }
            let expected = Reference.logSoftmax(encoded.values.map { $0 * Double(scale) })[choice.token]
            #expect(choice.token == Reference.argmax(encoded.values), "\(row.name)")
            #expect(abs(Double(choice.logprob) - expected) <= 1e-5 * max(1, abs(expected)), "\(row.name): \(choice.logprob) vs \(expected)")
        }
    }

    @Test("ties go to the lowest token id", arguments: tieCases)
    func ties(logits: [Float], token: Int) throws {
        for dtype in LogitDType.allCases {
            let choice = try EncodedRow(logits, dtype: dtype).withRow { try Greedy.choose(from: $0) }
            #expect(choice.token == token, "\(dtype)")
        }
    }
}

/// `Kernels.exp` runs the kernels' sixteen-lane polynomial on one value, so it checks the lanes.
@Suite("Vectorised exp")
struct VectorExpTests {
    @Test("relative error below 2e-7 over the whole finite range")
    func errorBound() {
        var worst = 0.0
        var x: Float = -87.3
        while x <= 88.3 {
            let lanes = (0..<16).map { x + Float($0) * 0.000_37 }
            for value in lanes where value <= 88.3 {
                let reference = exp(Double(value))
                worst = max(worst, abs(Double(Kernels.exp(value)) - reference) / reference)
            }
            x += 0.006
        }
        #expect(worst < 2e-7, "worst relative error \(worst)")
    }

    @Test("underflow is exactly zero, NaN stays NaN, exp(0) is exactly 1")
    func specialValues() {
        let result = [-Float.infinity, -1000, -104, -88, 0, .nan, 1, -1].map(Kernels.exp)
        #expect(result[0] == 0)
        #expect(result[1] == 0)
        #expect(result[2] == 0)
        #expect(result[3] == 0)
        #expect(result[4] == 1)
        #expect(result[5].isNaN)
        #expect(abs(Double(result[6]) - M_E) / M_E < 2e-7)
        #expect(abs(Double(result[7]) - 1 / M_E) * M_E < 2e-7)
    }
}

@Suite("Element types")
struct ElementTests {
    @Test("bfloat16 rounds to nearest even and widens exactly")
    func bfloat16() {
        #expect(BFloat16(1.0).bitPattern == 0x3F80)
        #expect(BFloat16(1.0).floatValue == 1.0)
        // 1 + 2^-8 is halfway between two bfloat16 values: ties go to the even one (1.0).
        #expect(BFloat16(1.0 + 1.0 / 256).floatValue == 1.0)
        #expect(BFloat16(1.0 + 3.0 / 256).floatValue == 1.0 + 1.0 / 64)
        #expect(BFloat16(-.infinity).floatValue == -.infinity)
        #expect(BFloat16(.nan).floatValue.isNaN)
    }

    @Test("rows read the same values whatever the alignment of their bytes", arguments: LogitDType.allCases)
    func unalignedRows(dtype: LogitDType) throws {
        let logits = RowCase.normal(100, sigma: 2, seed: 9)
        let encoded = EncodedRow(logits, dtype: dtype)
        let shifted = [0xAB] + encoded.bytes
        let choice = try shifted.withUnsafeBytes { bytes in
            try Greedy.choose(from: LogitRow(bytes: UnsafeRawBufferPointer(rebasing: bytes.dropFirst()), dtype: dtype))
        }
        #expect(choice == (try encoded.withRow { try Greedy.choose(from: $0) }))
        try encoded.withRow { row in
            for index in [0, 15, 16, 99] { #expect(Double(row[index]) == encoded.values[index]) }
        }
    }
}
