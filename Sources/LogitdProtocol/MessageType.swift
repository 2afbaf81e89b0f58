/// The message types of protocol v1. A reply's type is its request's type with the high bit set,
/// except DONE (0x9F), which answers the STEP that ends a session; ERROR (0xFF) may answer any
/// request. 0x1F is never a request type.
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
    /// One step of many sessions in one message.
    case batchStep = 0x12
    /// Closes (cancels) a session.
    case close = 0x13
    /// Speculative decoding: verifies a draft's tokens for one sequence of a session.
    case verify = 0x14
    /// VERIFY for several sessions in one message.
    case batchVerify = 0x15
    /// One-shot scoring: each row's observed next token's log-probability, rank and entropy.
    case score = 0x16
    /// One-shot classification: each row's softmax over named tokens.
    case classify = 0x17
    case welcome = 0x81
    case pong = 0x82
    case tokens = 0x83
    case probabilities = 0x84
    case opened = 0x90
    /// The reply to a STEP that leaves the session running.
    case stepTokens = 0x91
    /// The reply to a BATCH STEP: every entry's step, in request order.
    case batchTokens = 0x92
    case closed = 0x93
    /// The reply to a VERIFY: the accepted tokens and one more.
    case verified = 0x94
    /// The reply to a BATCH VERIFY: every entry's verification, in request order.
    case batchVerified = 0x95
    case scored = 0x96
    case classified = 0x97
    /// The reply to the STEP that ends a session: the step's tokens and the final sequences.
    case done = 0x9F
    case error = 0xFF

    // Reserved, so that no client sends them by accident: the rest of 0x10–0x1E (0x18 onwards), and the same
    // numbers with the high bit set for their replies.

    public var isRequest: Bool { rawValue & 0x80 == 0 }
}
