/// The numeric codes an ERROR reply carries. Stable across protocol versions: new codes are added,
/// none is renumbered.
public struct ErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The header frame is not 16 bytes.
    public static let malformedHeader = ErrorCode(rawValue: 1)
    /// The header does not start with "LGTD".
    public static let badMagic = ErrorCode(rawValue: 2)
    /// The header's version is not one this daemon speaks.
    public static let unsupportedVersion = ErrorCode(rawValue: 3)
    /// The message type is unknown, or is a reply type sent as a request.
    public static let unknownType = ErrorCode(rawValue: 4)
    /// The header sets flags this version does not define.
    public static let unknownFlags = ErrorCode(rawValue: 5)
    /// The message has the wrong number of frames for its type.
    public static let badFrameCount = ErrorCode(rawValue: 6)
    /// The rows descriptor is malformed: wrong size, unknown dtype or layout, reserved bytes set.
    public static let badDescriptor = ErrorCode(rawValue: 7)
    /// Zero rows or vocabulary, or more than the daemon's limits.
    public static let badShape = ErrorCode(rawValue: 8)
    /// The logits frame is not rows × vocab × element size bytes.
    public static let sizeMismatch = ErrorCode(rawValue: 9)
    /// A logit is NaN or +inf.
    public static let invalidLogits = ErrorCode(rawValue: 10)
    /// A row is -inf everywhere, so no token can be chosen.
    public static let allMasked = ErrorCode(rawValue: 11)
    /// The parameters are not a JSON object, name an unknown parameter, or give a bad value.
    public static let badParameters = ErrorCode(rawValue: 12)
    /// The strategy is not one this daemon implements.
    public static let unknownStrategy = ErrorCode(rawValue: 13)
    /// The message is larger than the daemon's max message size.
    public static let messageTooLarge = ErrorCode(rawValue: 14)
    /// The daemon is shutting down and takes no new requests.
    public static let shuttingDown = ErrorCode(rawValue: 15)
    /// The daemon failed in a way that is not the request's fault.
    public static let internalError = ErrorCode(rawValue: 16)
    /// The processors (bans, allowed tokens, n-gram rule, …) excluded every token of a row.
    public static let noCandidates = ErrorCode(rawValue: 17)
    /// No session has this id (it never existed here).
    public static let unknownSession = ErrorCode(rawValue: 18)
    /// The session was closed, or finished; it takes no more steps.
    public static let sessionClosed = ErrorCode(rawValue: 19)
    /// The session was idle longer than the daemon's session TTL and was dropped.
    public static let sessionExpired = ErrorCode(rawValue: 20)
    /// The step index is not the session's next one, or the rows do not match its live sequences.
    public static let wrongStep = ErrorCode(rawValue: 21)
    /// The daemon holds its maximum number of sessions.
    public static let tooManySessions = ErrorCode(rawValue: 22)
    /// A VERIFY's draft is malformed: a token outside the vocabulary, or a draft distribution that
    /// is not one (negative, NaN, zero on the draft token, not summing to 1).
    public static let badDraft = ErrorCode(rawValue: 23)

    private static let names: [UInt32: String] = [
        1: "MALFORMED_HEADER", 2: "BAD_MAGIC", 3: "UNSUPPORTED_VERSION", 4: "UNKNOWN_TYPE",
        5: "UNKNOWN_FLAGS", 6: "BAD_FRAME_COUNT", 7: "BAD_DESCRIPTOR", 8: "BAD_SHAPE",
        9: "SIZE_MISMATCH", 10: "INVALID_LOGITS", 11: "ALL_MASKED", 12: "BAD_PARAMETERS",
        13: "UNKNOWN_STRATEGY", 14: "MESSAGE_TOO_LARGE", 15: "SHUTTING_DOWN", 16: "INTERNAL",
        17: "NO_CANDIDATES", 18: "UNKNOWN_SESSION", 19: "SESSION_CLOSED", 20: "SESSION_EXPIRED",
        21: "WRONG_STEP", 22: "TOO_MANY_SESSIONS", 23: "BAD_DRAFT",
    ]

    public var name: String { Self.names[rawValue] ?? "UNKNOWN_ERROR_\(rawValue)" }
    public var description: String { name }
}

/// A request the daemon refuses, with what was wrong, ready to become an ERROR reply.
public struct ProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    public let code: ErrorCode
    public let message: String

    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.name): \(message)" }
}
