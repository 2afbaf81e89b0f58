/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
/// counter-based generator. The same (seed, sequence, step, draw) always gives the same number,
/// whatever thread, worker, batch or process computes it, so a session can be replayed or
/// continued elsewhere from its seed alone.
public struct Philox: Sendable, Equatable {
    public let seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    /// A fresh seed for a request that gave none; report it back so the run can be repeated.
    public static func drawSeed() -> UInt64 {
        var system = SystemRandomNumberGenerator()
        return system.next()
    }

    /// Four 32-bit words for one counter value: counter (step low, step high, sequence, draw),
    /// key (seed low, seed high).
    public func block(sequence: UInt32, step: UInt64, draw: UInt32) -> (UInt32, UInt32, UInt32, UInt32) {
        Self.rounds(
            counter: (UInt32(truncatingIfNeeded: step), UInt32(truncatingIfNeeded: step >> 32), sequence, draw),
            key: (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
        )
    }

    /// The ten Philox4x32 rounds, exactly as Random123 defines them (checked against its
    /// known-answer vectors in the tests).
    public static func rounds(counter: (UInt32, UInt32, UInt32, UInt32), key: (UInt32, UInt32)) -> (UInt32, UInt32, UInt32, UInt32) {
        var counter = counter
        var key = key
        for round in 0..<10 {
            if round > 0 { key = (key.0 &+ 0x9E37_79B9, key.1 &+ 0xBB67_AE85) }
            let product0 = UInt64(0xD251_1F53) &* UInt64(counter.0)
            let product1 = UInt64(0xCD9E_8D57) &* UInt64(counter.2)
            counter = (
                UInt32(truncatingIfNeeded: product1 >> 32) ^ counter.1 ^ key.0,
                UInt32(truncatingIfNeeded: product1),
                UInt32(truncatingIfNeeded: product0 >> 32) ^ counter.3 ^ key.1,
                UInt32(truncatingIfNeeded: product0)
            )
        }
        return counter
    }

    /// A uniform double in [0, 1) with 53 random bits.
    public func uniform(sequence: Int, step: Int, draw: Int = 0) -> Double {
        let words = block(sequence: UInt32(truncatingIfNeeded: sequence), step: UInt64(truncatingIfNeeded: step), draw: UInt32(truncatingIfNeeded: draw))
        let bits = (UInt64(words.0) << 21) ^ (UInt64(words.1) >> 11)
        return Double(bits & ((1 << 53) - 1)) * 0x1p-53
    }
}
