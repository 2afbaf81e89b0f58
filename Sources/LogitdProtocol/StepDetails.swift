import Decoding

/// How `return_support` sends the tokens sampling could have chosen.
public enum SupportFormat: String, CaseIterable, Sendable {
    /// u32 count, then that many u32 token ids, ascending.
    case ids
    /// ceil(vocab_size / 32) little-endian u32 words, bit j of word w = token 32·w + j (the mask layout).
    case mask
}

/// The details frame of a STEP reply (frame 5, present when the summary's flag bit 1 is set): per
/// sequence record, in record order, what the session asked for —
///
///     u32 rank                       (return_rank)
///     f32 × len(logprob_token_ids)   (logprob_token_ids, in logprobs_mode)
///     support                        (return_support: "ids" → u32 count + count × u32; "mask" → words)
public struct StepDetails: Equatable, Sendable {
    public var rank: Int?
    public var tokenLogprobs: [Float]
    public var support: [Int]?

    public init(rank: Int?, tokenLogprobs: [Float], support: [Int]?) {
        self.rank = rank
        self.tokenLogprobs = tokenLogprobs
        self.support = support
    }

    /// What a session's parameters put in each record's details.
    public struct Layout: Equatable, Sendable {
        public var rank: Bool
        public var tokens: Int
        public var support: SupportFormat?
        public var vocab: Int

        public init(_ parameters: SessionParameters) {
            rank = parameters.returnRank
            tokens = parameters.logprobTokenIDs.count
            support = parameters.returnSupport
            vocab = parameters.vocabSize
        }
    }

    public static func encode(_ records: [StepDetails], layout: Layout) -> [UInt8] {
        var bytes: [UInt8] = []
        let words = (layout.vocab + 31) / 32
        for record in records {
            if layout.rank { bytes.appendLittleEndian(UInt32(record.rank ?? 0)) }
            for logprob in record.tokenLogprobs { bytes.appendLittleEndian(logprob.bitPattern) }
            switch layout.support {
            case nil: break
            case .ids?:
                let support = record.support ?? []
                bytes.appendLittleEndian(UInt32(support.count))
                for token in support { bytes.appendLittleEndian(UInt32(token)) }
            case .mask?:
                var mask = [UInt32](repeating: 0, count: words)
                for token in record.support ?? [] { mask[token >> 5] |= 1 << UInt32(token & 31) }
                for word in mask { bytes.appendLittleEndian(word) }
            }
        }
        return bytes
    }

    public static func parse(_ frame: UnsafeRawBufferPointer, records: Int, layout: Layout) throws(ProtocolError) -> [StepDetails] {
        var offset = 0
        func u32() throws(ProtocolError) -> UInt32 {
            guard offset + 4 <= frame.count else { throw ProtocolError(.internalError, "the details frame is shorter than its records") }
            defer { offset += 4 }
            return frame.littleEndian(at: offset, as: UInt32.self)
        }
        var result: [StepDetails] = []
        for _ in 0..<records {
            let rank = layout.rank ? Int(try u32()) : nil
            var logprobs: [Float] = []
            for _ in 0..<layout.tokens { logprobs.append(Float(bitPattern: try u32())) }
            var support: [Int]?
            switch layout.support {
            case nil: break
            case .ids?:
                let count = Int(try u32())
                var ids: [Int] = []
                for _ in 0..<count { ids.append(Int(try u32())) }
                support = ids
            case .mask?:
                var ids: [Int] = []
                for word in 0..<((layout.vocab + 31) / 32) {
                    let bits = try u32()
                    for bit in 0..<32 where bits >> UInt32(bit) & 1 == 1 { ids.append(word * 32 + bit) }
                }
                support = ids
            }
            result.append(StepDetails(rank: rank, tokenLogprobs: logprobs, support: support))
        }
        guard offset == frame.count else { throw ProtocolError(.internalError, "the details frame is longer than its records") }
        return result
    }
}
