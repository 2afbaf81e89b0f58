#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Any JSON value: what a parameters object is read into first, so that unknown keys can be named.
/// Integers are kept exact (a seed is any u64): only numbers that are not integers, or do not fit
/// 64 bits, become a Double.
enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    case unsigned(UInt64)
    case negative(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(UInt64.self) { self = .unsigned(value) }
        else if let value = try? container.decode(Int64.self) { self = .negative(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONValue].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    /// Any number, as a Double.
    var double: Double? {
        switch self {
        case .unsigned(let value): Double(value)
        case .negative(let value): Double(value)
        case .number(let value): value
        default: nil
        }
    }

    /// An integer that fits Int exactly (a Double only when it is integral and below 2^53).
    var exactInt: Int? {
        switch self {
        case .unsigned(let value): value <= UInt64(Int.max) ? Int(value) : nil
        case .negative(let value): Int(value)
        case .number(let value): value.rounded() == value && abs(value) < 9.0e15 ? Int(value) : nil
        default: nil
        }
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
        guard let integer = value.exactInt else { throw ProtocolError(.badParameters, "\"\(key)\" must be an integer") }
        return integer
    }

    /// Exact for every integer written as one, 0 … 2^64 − 1.
    func uint64(_ key: String) throws(ProtocolError) -> UInt64? {
        guard let value = object[key], value != .null else { return nil }
        switch value {
        case .unsigned(let integer): return integer
        case .number(let number) where number.rounded() == number && number >= 0 && number < 0x1p64: return UInt64(number)
        default: throw ProtocolError(.badParameters, "\"\(key)\" must be an integer from 0 to 18446744073709551615")
        }
    }

    func bool(_ key: String) throws(ProtocolError) -> Bool? {
        guard let value = object[key], value != .null else { return nil }
        guard case .bool(let flag) = value else { throw ProtocolError(.badParameters, "\"\(key)\" must be true or false") }
        return flag
    }

    func double(_ key: String) throws(ProtocolError) -> Double? {
        guard let value = object[key], value != .null else { return nil }
        guard let number = value.double else { throw ProtocolError(.badParameters, "\"\(key)\" must be a number") }
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
            guard let integer = item.exactInt else { throw ProtocolError(.badParameters, "\"\(key)\" must be an array of integers") }
            result.append(integer)
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
                guard let integer = element.exactInt else { throw ProtocolError(.badParameters, "\"\(key)\" must be an array of arrays of integers") }
                sequence.append(integer)
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
