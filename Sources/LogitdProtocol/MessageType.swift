/// The message types of protocol v1. A reply's type is its request's type with the high bit set;
/// ERROR (0xFF) may answer any request.
public enum MessageType: UInt8, Sendable, CaseIterable {
    case hello = 0x01
    case ping = 0x02
    case decode = 0x03
    /// One-shot probabilities: the softmax of each row, whole or its top n.
    case probs = 0x04
    /// Opens a decoding session.
    case open = 0x10
    /// One step of a session: a row of logits per live sequence or beam.
    case step = 0x11
    /// Closes (cancels) a session.
    case close = 0x13
    case welcome = 0x81
    case pong = 0x82
    case tokens = 0x83
    case probabilities = 0x84
    case opened = 0x90
    /// The reply to a STEP that leaves the session running.
    case stepTokens = 0x91
    /// The reply to the STEP that ends a session: the step's tokens and the final sequences.
    case done = 0x92
    case closed = 0x93
    case error = 0xFF

    // Reserved, so that no client sends them by accident: 0x12 BATCH STEP and the rest of
    // 0x10–0x1F, and the same numbers with the high bit set for their replies.

    public var isRequest: Bool { rawValue & 0x80 == 0 }
}
