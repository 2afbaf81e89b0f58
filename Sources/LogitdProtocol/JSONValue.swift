#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Any JSON value: what a parameters object is read into first, so that unknown keys can be named.
enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    /// Parses a frame that must hold a JSON object.
    static func object(from frame: UnsafeRawBufferPointer, what: String) throws(ProtocolError) -> [String: JSONValue] {
        guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(frame)), case .object(let object) = value else {
            throw ProtocolError(.badParameters, "\(what) is not a JSON object")
        }
        return object
    }
}

/// Typed reads from a parameters object, with errors that name the key.
struct ParameterReader {
    let object: [String: JSONValue]

    func refuseUnknownKeys(known: Set<String>) throws(ProtocolError) {
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw ProtocolError(.badParameters, "unknown parameter \"\(unknown)\"")
        }
    }

    func int(_ key: String) throws(ProtocolError) -> Int? {
        guard let value = object[key], value != .null else { return nil }
        guard case .number(let number) = value, number.rounded() == number, abs(number) < 9.0e15 else {
            throw ProtocolError(.badParameters, "\"\(key)\" must be an integer")
        }
        return Int(number)
    }

    func uint64(_ key: String) throws(ProtocolError) -> UInt64? {
        guard let value = object[key], value != .null else { return nil }
        guard case .number(let number) = value, number.rounded() == number, number >= 0, number < 1.8e19 else {
            throw ProtocolError(.badParameters, "\"\(key)\" must be a non-negative integer")
        }
        return UInt64(number)
    }

    func double(_ key: String) throws(ProtocolError) -> Double? {
        guard let value = object[key], value != .null else { return nil }
        guard case .number(let number) = value else { throw ProtocolError(.badParameters, "\"\(key)\" must be a number") }
        return number
    }

    func float(_ key: String) throws(ProtocolError) -> Float? {
        try double(key).map(Float.init)
    }

    func string(_ key: String) throws(ProtocolError) -> String? {
        guard let value = object[key], value != .null else { return nil }
        guard case .string(let string) = value else { throw ProtocolError(.badParameters, "\"\(key)\" must be a string") }
        return string
    }

    func ints(_ key: String) throws(ProtocolError) -> [Int]? {
        guard let value = object[key], value != .null else { return nil }
        guard case .array(let items) = value else { throw ProtocolError(.badParameters, "\"\(key)\" must be an array of integers") }
        var result: [Int] = []
        for item in items {
            guard case .number(let number) = item, number.rounded() == number, abs(number) < 9.0e15 else {
                throw ProtocolError(.badParameters, "\"\(key)\" must be an array of integers")
            }
            result.append(Int(number))
        }
        return result
    }

    func intArrays(_ key: String) throws(ProtocolError) -> [[Int]]? {
        guard let value = object[key], value != .null else { return nil }
        guard case .array(let items) = value else { throw ProtocolError(.badParameters, "\"\(key)\" must be an array of arrays of integers") }
        var result: [[Int]] = []
        for item in items {
            guard case .array(let inner) = item else { throw ProtocolError(.badParameters, "\"\(key)\" must be an array of arrays of integers") }
            var sequence: [Int] = []
            for element in inner {
                guard case .number(let number) = element, number.rounded() == number, abs(number) < 9.0e15 else {
                    throw ProtocolError(.badParameters, "\"\(key)\" must be an array of arrays of integers")
                }
                sequence.append(Int(number))
            }
            result.append(sequence)
        }
        return result
    }
}

/// Decodes a reply's JSON frame, or reports it as malformed.
func decodeJSON<T: Decodable>(_ type: T.Type, from frame: UnsafeRawBufferPointer, what: String) throws(ProtocolError) -> T {
    do { return try JSONDecoder().decode(type, from: Data(frame)) } catch {
        throw ProtocolError(.internalError, "\(what) is not the expected JSON: \(error)")
    }
}
