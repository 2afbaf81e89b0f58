/// The first frame of every message: 16 bytes, little-endian.
///
///     offset size field
///     0      4    magic "LGTD"
///     4      1    version (1)
///     5      1    message type
///     6      2    flags: bit 0 = a mask frame follows the logits (DECODE, PROBS, STEP); others 0
///     8      8    request id, chosen by the client, echoed in the reply
public struct Header: Equatable, Sendable {
    public static let size = 16
    public static let magic: [UInt8] = Array("LGTD".utf8)
    public static let currentVersion: UInt8 = 1
    /// Flag bit 0: a mask frame (`RowMasks`) follows the logits frame of DECODE, PROBS or STEP.
    public static let maskFollows: UInt16 = 0x0001

    public var version: UInt8
    public var type: MessageType
    public var flags: UInt16
    public var requestID: UInt64

    /// Whether a mask frame follows the logits frame.
    public var hasMask: Bool { flags & Header.maskFollows != 0 }

    public init(type: MessageType, requestID: UInt64, flags: UInt16 = 0, version: UInt8 = Header.currentVersion) {
        self.version = version
        self.type = type
        self.flags = flags
        self.requestID = requestID
    }

    public var encoded: [UInt8] {
        var bytes = Header.magic
        bytes.reserveCapacity(Header.size)
        bytes.append(version)
        bytes.append(type.rawValue)
        bytes.appendLittleEndian(flags)
        bytes.appendLittleEndian(requestID)
        return bytes
    }

    /// The request id of a frame that starts like a header, so an ERROR about the rest of it can
    /// still be matched by the client; 0 when even that much is missing.
    public static func bestEffortRequestID(_ frame: UnsafeRawBufferPointer) -> UInt64 {
        guard frame.count >= size, frame.prefix(4).elementsEqual(magic) else { return 0 }
        return frame.littleEndian(at: 8, as: UInt64.self)
    }

    /// Parses and checks a header frame: size, magic, version, a known type, no unknown flags.
    public static func parse(_ frame: UnsafeRawBufferPointer) throws(ProtocolError) -> Header {
        guard frame.count == size else {
            throw ProtocolError(.malformedHeader, "the header frame has \(frame.count) bytes; it must have \(size)")
        }
        guard frame.prefix(4).elementsEqual(magic) else {
            throw ProtocolError(.badMagic, "the header does not start with the magic bytes \"LGTD\"")
        }
        let version = frame[4]
        guard version == currentVersion else {
            throw ProtocolError(.unsupportedVersion, "protocol version \(version) is not supported; this daemon speaks version \(currentVersion)")
        }
        guard let type = MessageType(rawValue: frame[5]) else {
            throw ProtocolError(.unknownType, "unknown message type 0x\(String(frame[5], radix: 16))")
        }
        let flags = frame.littleEndian(at: 6, as: UInt16.self)
        guard flags & ~maskFollows == 0 else {
            throw ProtocolError(.unknownFlags, "flags 0x\(String(flags, radix: 16)) are not defined in protocol version \(currentVersion)")
        }
        guard flags == 0 || [.decode, .probs, .step, .batchStep, .verify, .batchVerify, .score, .classify].contains(type) else {
            throw ProtocolError(.unknownFlags, "flag 0x1 (a mask frame follows) is defined for DECODE, PROBS, STEP, BATCH STEP, VERIFY and BATCH VERIFY only, not \(type)")
        }
        return Header(type: type, requestID: frame.littleEndian(at: 8, as: UInt64.self), flags: flags, version: version)
    }
}
