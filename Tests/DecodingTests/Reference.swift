import Foundation
import Decoding

/// Float64 references: the definitions, computed the plain way with libm's exp and log.
enum Reference {
    static func logSumExp(_ x: [Double]) -> Double {
        let m = x.max()!
        return m + log(x.reduce(0) { $0 + exp($1 - m) })
    }

    static func softmax(_ x: [Double]) -> [Double] {
        let l = logSumExp(x)
        return x.map { exp($0 - l) }
    }

    static func logSoftmax(_ x: [Double]) -> [Double] {
        let l = logSumExp(x)
        return x.map { $0 - l }
    }

    /// The first index of the maximum.
    static func argmax(_ x: [Double]) -> Int {
        x.indices.max { x[$0] < x[$1] || (x[$0] == x[$1] && $0 > $1) }!
    }
}

/// A deterministic generator for test rows (SplitMix64), so a failure can be reproduced.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A normal(0, σ) sample (Box–Muller).
    mutating func normal(sigma: Double) -> Double {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &self)
        let u2 = Double.random(in: 0..<1, using: &self)
        return sigma * (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}

/// A row held in its wire dtype, with the exact values a kernel will read, widened to Double.
struct EncodedRow {
    let bytes: [UInt8]
    let dtype: LogitDType
    let values: [Double]

    init(_ logits: [Float], dtype: LogitDType) {
        self.dtype = dtype
        switch dtype {
        case .float32:
            bytes = logits.withUnsafeBytes { Array($0) }
            values = logits.map(Double.init)
        case .float16:
            let halves = logits.map(Float16.init)
            bytes = halves.withUnsafeBytes { Array($0) }
            values = halves.map { Double(Float($0)) }
        case .bfloat16:
            let brains = logits.map(BFloat16.init)
            bytes = brains.flatMap { [UInt8(truncatingIfNeeded: $0.bitPattern), UInt8($0.bitPattern >> 8)] }
            values = brains.map { Double($0.floatValue) }
        }
    }

    func withRow<R>(_ body: (LogitRow) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { try body(LogitRow(bytes: $0, dtype: dtype)) }
    }

    /// The row read through an allowed-token bitmask (nil: none).
    func withRow<R>(mask: [UInt32]?, _ body: (LogitRow) throws -> R) rethrows -> R {
        guard let mask else { return try withRow(body) }
        return try bytes.withUnsafeBytes { raw in
            try mask.withUnsafeBytes { try body(LogitRow(bytes: raw, dtype: dtype, mask: $0)) }
        }
    }
}
