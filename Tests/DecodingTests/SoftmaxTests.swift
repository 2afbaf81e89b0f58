import Foundation
import Testing
import Decoding

/// Rows that catch the usual softmax mistakes, each named.
struct RowCase: CustomTestStringConvertible, Sendable {
    let name: String
    let logits: [Float]
    var testDescription: String { "\(name) (V=\(logits.count))" }

    static func normal(_ count: Int, sigma: Double, seed: UInt64) -> [Float] {
        var generator = SplitMix64(state: seed)
        return (0..<count).map { _ in Float(generator.normal(sigma: sigma)) }
    }

    /// ±1e4 with a cluster just below +1e4, so the result hinges on subtracting the maximum first.
    static let extremes: [Float] = (0..<1000).map { (index: Int) -> Float in
        switch index % 3 {
        case 0: return 1e4
        case 1: return -1e4
        default: return Float(index) / 100 + 9990
        }
    }

    static let all: [RowCase] = [
        RowCase(name: "single element", logits: [3.5]),
        RowCase(name: "tail only (15)", logits: normal(15, sigma: 2, seed: 1)),
        RowCase(name: "one vector (16)", logits: normal(16, sigma: 2, seed: 2)),
        RowCase(name: "vector and tail (17)", logits: normal(17, sigma: 2, seed: 3)),
        RowCase(name: "all equal", logits: [Float](repeating: 0.25, count: 1000)),
        RowCase(name: "±1e4 magnitudes", logits: extremes),
        RowCase(name: "-inf masks", logits: normal(333, sigma: 3, seed: 4).enumerated().map { $0.offset % 4 == 0 ? -.infinity : $0.element }),
        RowCase(name: "one finite entry", logits: (0..<513).map { $0 == 300 ? -5 : -.infinity }),
        RowCase(name: "normal σ=3, V=32,000", logits: normal(32_000, sigma: 3, seed: 5)),
        RowCase(name: "normal σ=1, V=262,144", logits: normal(262_144, sigma: 1, seed: 6)),
        RowCase(name: "peaked, V=262,144", logits: normal(262_144, sigma: 8, seed: 7)),
        // The one-pass normaliser rescales its running sum whenever a block raises the maximum:
        // here every block does, and then the maximum comes last, in the scalar tail.
        RowCase(name: "rising, V=262,144", logits: (0..<262_144).map { Float($0) * 2e-4 }),
        RowCase(name: "maximum in the tail, V=32,007", logits: normal(32_007, sigma: 3, seed: 8).enumerated().map { $0.offset == 32_006 ? 30 : $0.element }),
        // A chunk rising more than e^60 above everything before it is summed again on its own.
        RowCase(name: "late spike 150 above the rest, V=32,000", logits: normal(32_000, sigma: 3, seed: 9).enumerated().map { $0.offset == 20_000 ? 150 : $0.element - 100 }),
    ]
}

@Suite("Softmax, log-softmax and logsumexp against float64")
struct SoftmaxTests {
    /// relative error ≤ 1e-5 for every probability ≥ 1e-30, sum within 1e-5 of 1.
    static let relativeTolerance = 1e-5

    @Test("softmax matches the float64 reference", arguments: RowCase.all, LogitDType.allCases)
    func softmax(row: RowCase, dtype: LogitDType) throws {
        let encoded = EncodedRow(row.logits, dtype: dtype)
        let expected = Reference.softmax(encoded.values)
        var output = [Float](repeating: .nan, count: row.logits.count)
        try encoded.withRow { logitRow in
            try output.withUnsafeMutableBufferPointer { try Softmax.probabilities(of: logitRow, into: $0) }
        }
        var worst = 0.0
        for (p, q) in zip(output, expected) {
            if q >= 1e-30 {
                worst = max(worst, abs(Double(p) - q) / q)
            } else {
                #expect(Double(p) < 1e-29)
            }
            if q == 0 { #expect(p == 0, "a masked token has probability exactly 0") }
        }
        #expect(worst <= Self.relativeTolerance, "worst relative error \(worst)")
        let sum = output.reduce(0.0) { $0 + Double($1) }
        #expect(abs(sum - 1) <= 1e-5, "sum \(sum)")
    }

    @Test("log-softmax and logsumexp match the float64 reference", arguments: RowCase.all, LogitDType.allCases)
    func logSoftmax(row: RowCase, dtype: LogitDType) throws {
        let encoded = EncodedRow(row.logits, dtype: dtype)
        let expected = Reference.logSoftmax(encoded.values)
        var output = [Float](repeating: .nan, count: row.logits.count)
        let lse = try encoded.withRow { logitRow in
            try output.withUnsafeMutableBufferPointer { try Softmax.logProbabilities(of: logitRow, into: $0) }
            return try Softmax.logSumExp(of: logitRow)
        }
        let referenceLSE = Reference.logSumExp(encoded.values)
        // logsumexp is only as exact as a float32 near its magnitude.
        #expect(abs(Double(lse) - referenceLSE) <= 1e-5 * max(1, abs(referenceLSE)))
        for (index, (value, reference)) in zip(output, expected).enumerated() {
            if reference == -.infinity {
                #expect(value == -.infinity)
            } else if reference >= log(1e-30) {
                // A log-probability within 1e-5 absolute is a probability within 1e-5 relative;
                // the float32 subtraction itself is good to an ulp of the larger operand.
                let tolerance = 1e-5 + 2 * Double(Float(abs(encoded.values[index])).ulp)
                #expect(abs(Double(value) - reference) <= tolerance, "token \(index): \(value) vs \(reference)")
            }
        }
    }

    @Test("the array conveniences agree with the row kernels")
    func arrayConvenience() throws {
        let logits: [Float] = [1, 3, 2, 3]
        let probabilities = try Softmax.probabilities(of: logits)
        let expected = Reference.softmax(logits.map(Double.init))
        for (p, q) in zip(probabilities, expected) { #expect(abs(Double(p) - q) <= 1e-7) }
        let logProbabilities = try Softmax.logProbabilities(of: logits)
        for (p, q) in zip(logProbabilities, Reference.logSoftmax(logits.map(Double.init))) { #expect(abs(Double(p) - q) <= 1e-6) }
    }

    @Test("rows that cannot be decoded are refused with the offending position")
    func invalidRows() throws {
        let cases: [([Float], LogitRowError)] = [
            ([], .empty),
            ([0, 1, .nan, 2], .notANumber(index: 2)),
            ((0..<40).map { $0 == 33 ? .infinity : Float($0) }, .positiveInfinity(index: 33)),
            ((0..<40).map { $0 == 20 ? .nan : ($0 == 30 ? .infinity : 0) }, .notANumber(index: 20)),
            ([Float](repeating: -.infinity, count: 37), .allMasked),
        ]
        for (logits, expected) in cases {
            let error = #expect(throws: LogitRowError.self) { try Softmax.probabilities(of: logits) }
            #expect(error == expected)
            let greedyError = #expect(throws: LogitRowError.self) {
                try logits.withUnsafeBytes { try Greedy.choose(from: LogitRow(bytes: $0, dtype: .float32)) }
            }
            #expect(greedyError == expected)
        }
    }
}
