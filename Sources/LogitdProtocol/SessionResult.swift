#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Decoding
/// A finished sequence or hypothesis as the JSON frames of TOKENS, DONE and CLOSED carry it.
public struct FinishedSequence: Codable, Equatable, Sendable {
    public var sequence: Int?
    public var tokens: [Int]
    public var finishReason: String?
    public var logprobSum: Double
    /// Beam search only: the length-normalised score.
    public var score: Double?
    /// Beam search, hypotheses kept in a step: the row (of the step just sent) it continues.
    public var parent: Int?

    public init(sequence: Int? = nil, tokens: [Int], finishReason: FinishReason?, logprobSum: Double, score: Double? = nil) {
        self.sequence = sequence
        self.tokens = tokens
        self.finishReason = finishReason?.rawValue
        self.logprobSum = logprobSum
        self.score = score
    }

    enum CodingKeys: String, CodingKey {
        case sequence, tokens, score, parent
        case finishReason = "finish_reason"
        case logprobSum = "logprob_sum"
    }

    /// `finish_reason` is always present: null for a sequence still running (CLOSED of a running
    /// session); `sequence` and `score` only where they apply.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(sequence, forKey: .sequence)
        try container.encode(tokens, forKey: .tokens)
        try container.encode(finishReason, forKey: .finishReason)
        try container.encode(logprobSum, forKey: .logprobSum)
        try container.encodeIfPresent(score, forKey: .score)
        try container.encodeIfPresent(parent, forKey: .parent)
    }
}

/// The JSON of DONE and CLOSED: every sequence (greedy/sample) or the n best hypotheses (beam).
public struct SessionResult: Codable, Equatable, Sendable {
    public var session: UInt64
    public var steps: Int
    public var sequences: [FinishedSequence]

    public init(session: UInt64, steps: Int, sequences: [FinishedSequence]) {
        self.session = session
        self.steps = steps
        self.sequences = sequences
    }

    public var encoded: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Array(try! encoder.encode(self))
    }

    public static func parse(_ frame: UnsafeRawBufferPointer) throws(ProtocolError) -> SessionResult {
        try decodeJSON(SessionResult.self, from: frame, what: "the session result")
    }
}

/// The JSON of OPENED.
public struct OpenedBody: Sendable {
    public let session: UInt64
    public let parameters: SessionParameters
    public let seed: UInt64

    public init(session: UInt64, parameters: SessionParameters, seed: UInt64) {
        self.session = session
        self.parameters = parameters
        self.seed = seed
    }

    /// The step index the session continues with (non-zero for a recovered session).
    public var step: Int { parameters.history?.step ?? 0 }

    /// `{"parameters": {…}, "seed": …, "session": …, "step": …}`; the history is not echoed.
    public var encoded: [UInt8] {
        var echoed = parameters
        echoed.history = nil
        return Array("{\"parameters\":".utf8) + echoed.resolvedJSON + Array(",\"seed\":\(seed),\"session\":\(session),\"step\":\(step)}".utf8)
    }
}

/// What a client needs from OPENED: the session id and the seed in use.
public struct OpenedReply: Decodable, Equatable, Sendable {
    public let session: UInt64
    public let seed: UInt64
    public let step: Int

    public static func parse(_ frame: UnsafeRawBufferPointer) throws(ProtocolError) -> OpenedReply {
        try decodeJSON(OpenedReply.self, from: frame, what: "OPENED's body")
    }
}

/// Frame 4 of a running mirostat session's STEP reply: `{"mirostat_mu": [μ₀, …]}`, every
/// sequence's μ after the step — what OPEN's `history.mirostat_mu` takes back.
public struct MirostatState: Codable, Equatable, Sendable {
    public var mu: [Float]

    public init(mu: [Float]) { self.mu = mu }

    enum CodingKeys: String, CodingKey { case mu = "mirostat_mu" }

    public var encoded: [UInt8] {
        // Arrays of finite floats always encode.
        Array(try! JSONEncoder().encode(self))
    }

    public static func parse(_ frame: UnsafeRawBufferPointer) throws(ProtocolError) -> MirostatState {
        try decodeJSON(MirostatState.self, from: frame, what: "the mirostat state")
    }
}
