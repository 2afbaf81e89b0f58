#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How rows are turned into tokens.
public enum Strategy: String, Sendable, CaseIterable, Codable {
    case greedy
}

/// The parameters frame of a DECODE request: a UTF-8 JSON object, or an empty frame for all defaults.
/// Unknown keys are refused rather than ignored, so a misspelt option never silently does nothing.
public struct DecodeParameters: Equatable, Sendable, Codable {
    public var strategy: Strategy

    public init(strategy: Strategy = .greedy) {
        self.strategy = strategy
    }

    static let knownKeys: Set<String> = ["strategy"]

    public var encoded: [UInt8] {
        Array("{\"strategy\":\"\(strategy.rawValue)\"}".utf8)
    }

    public static func parse(_ frame: UnsafeRawBufferPointer) throws(ProtocolError) -> DecodeParameters {
        guard !frame.isEmpty else { return DecodeParameters() }
        let object: [String: JSONScalar]
        do {
            object = try JSONDecoder().decode([String: JSONScalar].self, from: Data(frame))
        } catch {
            throw ProtocolError(.badParameters, "the parameters frame is not a JSON object of plain values")
        }
        if let unknown = object.keys.sorted().first(where: { !knownKeys.contains($0) }) {
            throw ProtocolError(.badParameters, "unknown parameter \"\(unknown)\"; known: \(knownKeys.sorted().joined(separator: ", "))")
        }
        var parameters = DecodeParameters()
        if let value = object["strategy"] {
            guard case .string(let name) = value else {
                throw ProtocolError(.badParameters, "parameter \"strategy\" must be a string")
            }
            guard let strategy = Strategy(rawValue: name) else {
                let known = Strategy.allCases.map(\.rawValue).joined(separator: ", ")
                throw ProtocolError(.unknownStrategy, "unknown strategy \"\(name)\"; known: \(known)")
            }
            parameters.strategy = strategy
        }
        return parameters
    }
}

/// A JSON value that is not an object or array: what a parameter may be.
enum JSONScalar: Decodable, Equatable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else { self = .string(try container.decode(String.self)) }
    }
}
