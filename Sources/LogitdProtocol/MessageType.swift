/// The message types of protocol v1. A reply's type is its request's type with the high bit set;
/// ERROR (0xFF) may answer any request.
public enum MessageType: UInt8, Sendable, CaseIterable {
    case hello = 0x01
    case ping = 0x02
    case decode = 0x03
    case welcome = 0x81
    case pong = 0x82
    case tokens = 0x83
    case error = 0xFF

    // Reserved for later versions, so that no v1 client ever sends them by accident:
    // 0x04 PROBS, 0x10–0x1F session requests (OPEN, STEP, BATCH STEP, CLOSE, …),
    // and the same numbers with the high bit set for their replies.

    public var isRequest: Bool { rawValue & 0x80 == 0 }
}
