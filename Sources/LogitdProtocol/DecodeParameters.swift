#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How rows are turned into tokens. One-shot DECODE knows greedy only; sessions know all three.
public enum Strategy: String, Sendable, CaseIterable, Codable {
    case greedy
    case sample
    case beam
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
        let reader = ParameterReader(object: try JSONValue.object(from: frame, what: "the parameters frame"))
        try reader.refuseUnknownKeys(known: knownKeys)
        var parameters = DecodeParameters()
        if let name = try reader.string("strategy") {
            guard let strategy = Strategy(rawValue: name) else {
                let known = Strategy.allCases.map(\.rawValue).joined(separator: ", ")
                throw ProtocolError(.unknownStrategy, "unknown strategy \"\(name)\"; known: \(known)")
            }
            guard strategy == .greedy else {
                throw ProtocolError(.unknownStrategy, "DECODE decodes greedily; strategy \"\(name)\" needs a session (OPEN)")
            }
            parameters.strategy = strategy
        }
        return parameters
    }
}
