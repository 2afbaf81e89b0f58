#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Decoding

/// SCORE's parameters frame: the chain to score under (OPEN's processor keys) and the prompt that
/// precedes the observed tokens; empty for the raw rows.
public struct ScoreParameters: Equatable, Sendable {
    public var processors = ProcessorSettings()
    public var promptTokenIDs: [Int] = []

    public init() {}

    static let knownKeys = ProcessorSettings.requestKeys.union(["prompt_token_ids"])

    /// The parameters frame: every processor key and the prompt.
    public var encoded: [UInt8] {
        struct Body: Encodable {
            let parameters: ScoreParameters
            func encode(to encoder: Encoder) throws {
                var c = encoder.container(keyedBy: JSONKey.self)
                try parameters.processors.encode(into: &c)
                try c.encode(parameters.promptTokenIDs, forKey: JSONKey("prompt_token_ids"))
            }
        }
        // Numbers, strings and arrays of them always encode.
        return Array(try! JSONEncoder().encode(Body(parameters: self)))
    }

    public static func parse(_ frame: UnsafeRawBufferPointer, vocab: Int, limits: ProtocolLimits) throws(ProtocolError) -> ScoreParameters {
        var parameters = ScoreParameters()
        guard !frame.isEmpty else { return parameters }
        let reader = ParameterReader(object: try JSONValue.object(from: frame, what: "the SCORE parameters frame"))
        try reader.refuseUnknownKeys(known: knownKeys)
        parameters.processors = try ProcessorSettings.parse(reader)
        if let value = try reader.ints("prompt_token_ids") { parameters.promptTokenIDs = value }
        guard parameters.processors.temperature > 0 else {
            throw ProtocolError(.badParameters, "\"temperature\" must be > 0: SCORE scores a distribution (0 would mean greedy)")
        }
        if parameters.promptTokenIDs.count > limits.maxListLength {
            throw ProtocolError(.badParameters, "\"prompt_token_ids\" is \(parameters.promptTokenIDs.count); the limit is max_list_length = \(limits.maxListLength)")
        }
        if let token = parameters.promptTokenIDs.first(where: { $0 < 0 || $0 > Int(UInt32.max) }) {
            throw ProtocolError(.badParameters, "\"prompt_token_ids\" holds \(token); token ids go from 0 to 4294967295")
        }
        do throws(ParameterError) {
            try parameters.processors.validate(vocab: vocab)
        } catch {
            throw ProtocolError(.badParameters, "\"\(error.name)\" \(error.rule)")
        }
        return parameters
    }
}

/// A SCORE request, read in place: rows, and the token observed after each (the token that
/// followed the row in the text being scored).
public struct ScoreRequest: @unchecked Sendable {
    public let rows: DecodeRequest
    public let tokens: [Int]
    public let parameters: ScoreParameters

    /// The observed tokens frame: one u32 per row, each below the rows' vocab.
    static func tokens(_ frame: UnsafeRawBufferPointer, rows: Int, vocab: Int) throws(ProtocolError) -> [Int] {
        guard frame.count == rows * 4 else {
            throw ProtocolError(.sizeMismatch, "the observed tokens frame has \(frame.count) bytes; \(rows) rows need \(rows * 4) (one u32 each)")
        }
        let tokens = (0..<rows).map { Int(frame.littleEndian(at: $0 * 4, as: UInt32.self)) }
        if let row = tokens.firstIndex(where: { $0 >= vocab }) {
            throw ProtocolError(.badParameters, "the observed token of row \(row) is \(tokens[row]); token ids must be below the rows' vocab (\(vocab))")
        }
        return tokens
    }
}

/// SCORED's records: 16 bytes per row — f32 log p under the stated processors, f32 raw log p,
/// u32 rank in the raw row, f32 entropy (nats) of the processed distribution.
public enum ScoredBody {
    public static let recordSize = 16

    public static func encode(_ scores: [TokenScore]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(scores.count * recordSize)
        for score in scores {
            bytes.appendLittleEndian(score.logprob.bitPattern)
            bytes.appendLittleEndian(score.rawLogprob.bitPattern)
            bytes.appendLittleEndian(UInt32(score.rank))
            bytes.appendLittleEndian(score.entropy.bitPattern)
        }
        return bytes
    }

    public static func parse(_ frame: UnsafeRawBufferPointer) throws(ProtocolError) -> [TokenScore] {
        guard frame.count % recordSize == 0 else { throw ProtocolError(.internalError, "SCORED records are not 16-byte records") }
        return (0..<(frame.count / recordSize)).map { index in
            let at = index * recordSize
            return TokenScore(logprob: Float(bitPattern: frame.littleEndian(at: at, as: UInt32.self)),
                              rawLogprob: Float(bitPattern: frame.littleEndian(at: at + 4, as: UInt32.self)),
                              rank: Int(frame.littleEndian(at: at + 8, as: UInt32.self)),
                              entropy: Float(bitPattern: frame.littleEndian(at: at + 12, as: UInt32.self)))
        }
    }
}

/// CLASSIFY's parameters: the class tokens (required) and a temperature.
public struct ClassifyParameters: Equatable, Sendable {
    public var tokenIDs: [Int]
    public var temperature: Float = 1

    public init(tokenIDs: [Int], temperature: Float = 1) {
        self.tokenIDs = tokenIDs
        self.temperature = temperature
    }

    public var encoded: [UInt8] {
        Array("{\"token_ids\":[\(tokenIDs.map(String.init).joined(separator: ","))],\"temperature\":\(temperature)}".utf8)
    }

    public static func parse(_ frame: UnsafeRawBufferPointer, vocab: Int, limits: ProtocolLimits) throws(ProtocolError) -> ClassifyParameters {
        let reader = ParameterReader(object: try JSONValue.object(from: frame, what: "the CLASSIFY parameters frame"))
        try reader.refuseUnknownKeys(known: ["token_ids", "temperature"])
        guard let tokens = try reader.ints("token_ids"), !tokens.isEmpty else {
            throw ProtocolError(.badParameters, "\"token_ids\" is required: the class tokens, at least one")
        }
        if tokens.count > limits.maxLogprobTokenIDs {
            throw ProtocolError(.badParameters, "\"token_ids\" is \(tokens.count); the limit is max_logprob_token_ids = \(limits.maxLogprobTokenIDs)")
        }
        if let token = tokens.first(where: { $0 < 0 || $0 >= vocab }) {
            throw ProtocolError(.badParameters, "\"token_ids\" holds \(token); token ids must be below the rows' vocab (\(vocab))")
        }
        if Set(tokens).count != tokens.count { throw ProtocolError(.badParameters, "\"token_ids\" names a token twice") }
        var parameters = ClassifyParameters(tokenIDs: tokens)
        if let temperature = try reader.float("temperature") {
            guard temperature.isFinite && temperature > 0 else { throw ProtocolError(.badParameters, "\"temperature\" must be a finite number > 0") }
            parameters.temperature = temperature
        }
        return parameters
    }
}

/// A CLASSIFY request, read in place.
public struct ClassifyRequest: @unchecked Sendable {
    public let rows: DecodeRequest
    public let parameters: ClassifyParameters
}

/// CLASSIFIED's two frames: rows × classes f32 probabilities (softmax over the class tokens, in
/// their order), then one f32 per row: ln of the classes' total probability under the whole row.
public enum ClassifiedBody {
    public static func encode(_ rows: [(probabilities: [Float], logMass: Float)]) -> [[UInt8]] {
        var probabilities: [UInt8] = []
        var masses: [UInt8] = []
        for row in rows {
            for probability in row.probabilities { probabilities.appendLittleEndian(probability.bitPattern) }
            masses.appendLittleEndian(row.logMass.bitPattern)
        }
        return [probabilities, masses]
    }

    public static func parse(_ probabilities: UnsafeRawBufferPointer, _ masses: UnsafeRawBufferPointer, classes: Int) throws(ProtocolError) -> [(probabilities: [Float], logMass: Float)] {
        let rows = masses.count / 4
        guard masses.count % 4 == 0, probabilities.count == rows * classes * 4 else {
            throw ProtocolError(.internalError, "CLASSIFIED's frames do not hold \(classes) probabilities and one log mass per row")
        }
        return (0..<rows).map { row in
            ((0..<classes).map { Float(bitPattern: probabilities.littleEndian(at: (row * classes + $0) * 4, as: UInt32.self)) },
             Float(bitPattern: masses.littleEndian(at: row * 4, as: UInt32.self)))
        }
    }
}
