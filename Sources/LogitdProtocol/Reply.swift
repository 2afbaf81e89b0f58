#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Decoding

/// The body of WELCOME, the reply to HELLO: a UTF-8 JSON object.
public struct Welcome: Equatable, Sendable, Codable {
    public var protocolVersion: Int
    public var server: String
    public var dtypes: [String]
    public var strategies: [String]
    public var workers: Int
    /// The decoding kernel variant the daemon runs (`KernelVariant`: "avx512", "avx2", …); nil
    /// from a daemon older than the key.
    public var kernels: String?
    public var limits: ProtocolLimits

    public init(server: String, workers: Int, kernels: KernelVariant = Kernels.active, limits: ProtocolLimits) {
        self.protocolVersion = Int(Header.currentVersion)
        self.server = server
        self.dtypes = LogitDType.allCases.map(\.name)
        self.strategies = Strategy.allCases.map(\.rawValue)
        self.workers = workers
        self.kernels = kernels.rawValue
        self.limits = limits
    }

    enum CodingKeys: String, CodingKey {
        case protocolVersion = "protocol"
        case server, dtypes, strategies, workers, kernels, limits
    }

    public var encoded: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // Encoding plain strings and integers cannot fail.
        return Array(try! encoder.encode(self))
    }

    public static func parse(_ body: UnsafeRawBufferPointer) throws(ProtocolError) -> Welcome {
        try decodeJSON(Welcome.self, from: body, what: "WELCOME's body")
    }
}

/// The body of TOKENS: per row, in request order, 8 bytes: u32 token id, f32 log-probability.
public enum TokensBody {
    public static let recordSize = 8

    public static func encode(_ choices: [TokenChoice]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(choices.count * recordSize)
        for choice in choices {
            bytes.appendLittleEndian(UInt32(choice.token))
            bytes.appendLittleEndian(choice.logprob.bitPattern)
        }
        return bytes
    }

    public static func parse(_ body: UnsafeRawBufferPointer) throws(ProtocolError) -> [TokenChoice] {
        guard body.count % recordSize == 0 else {
            throw ProtocolError(.internalError, "TOKENS body has \(body.count) bytes, not a multiple of \(recordSize)")
        }
        return (0..<(body.count / recordSize)).map { index in
            TokenChoice(
                token: Int(body.littleEndian(at: index * recordSize, as: UInt32.self)),
                logprob: Float(bitPattern: body.littleEndian(at: index * recordSize + 4, as: UInt32.self))
            )
        }
    }
}

/// The body of ERROR: u32 error code, then the message as UTF-8 (no terminator).
public enum ErrorBody {
    public static func encode(_ error: ProtocolError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendLittleEndian(error.code.rawValue)
        bytes.append(contentsOf: error.message.utf8)
        return bytes
    }

    public static func parse(_ body: UnsafeRawBufferPointer) throws(ProtocolError) -> ProtocolError {
        guard body.count >= 4 else {
            throw ProtocolError(.internalError, "ERROR body has \(body.count) bytes; it needs at least 4")
        }
        return ProtocolError(
            ErrorCode(rawValue: body.littleEndian(at: 0, as: UInt32.self)),
            String(decoding: body.dropFirst(4), as: UTF8.self)
        )
    }
}

/// PROBABILITIES (0x84), the reply to PROBS: an 8-byte info frame (u32 rows, u32 top_n), then
/// rows × vocab f32 probabilities (top_n 0), or rows × top_n × (u32 token, f32 probability),
/// most probable first (the TOKENS record layout).
public enum ProbabilitiesBody {
    public static func info(rows: Int, topN: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.appendLittleEndian(UInt32(rows))
        bytes.appendLittleEndian(UInt32(topN))
        return bytes
    }

    public static func parseInfo(_ frame: UnsafeRawBufferPointer) throws(ProtocolError) -> (rows: Int, topN: Int) {
        guard frame.count == 8 else { throw ProtocolError(.internalError, "PROBABILITIES info frame has \(frame.count) bytes, not 8") }
        return (Int(frame.littleEndian(at: 0, as: UInt32.self)), Int(frame.littleEndian(at: 4, as: UInt32.self)))
    }
}
