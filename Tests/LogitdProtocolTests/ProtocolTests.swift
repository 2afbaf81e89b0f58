import Decoding
import Testing
import LogitdProtocol

let limits = ProtocolLimits(maxVocab: 1000, maxRows: 8, maxMessageBytes: 16 * 1024)

/// Parses frames given as byte arrays; the request points into them, so it is only used inside `body`.
func withParsed<R>(_ frames: [[UInt8]], _ body: (Header, Request) throws -> R) throws -> R {
    try frames.withUnsafeFrames { buffers in
        let (header, request) = try Request.parse(buffers, limits: limits)
        return try body(header, request)
    }
}

/// A malformed request and what the refusal must say; printed by name only, frames can be large.
struct Refusal: CustomTestStringConvertible, Sendable {
    let what: String
    let frames: [[UInt8]]
    let code: ErrorCode
    let mentions: String
    var testDescription: String { what }

    init(_ what: String, _ frames: [[UInt8]], _ code: ErrorCode, _ mentions: String) {
        self.what = what
        self.frames = frames
        self.code = code
        self.mentions = mentions
    }
}

func decodeFrames(dtype: LogitDType = .float32, rows: Int = 2, vocab: Int = 3, parameters: [UInt8] = [], payloadBytes: Int? = nil) -> [[UInt8]] {
    [
        Header(type: .decode, requestID: 77).encoded,
        RowsDescriptor(dtype: dtype, rows: rows, vocab: vocab).encoded,
        parameters,
        [UInt8](repeating: 0, count: payloadBytes ?? rows * vocab * dtype.byteWidth),
    ]
}

/// `frames` with the header's mask flag set (the mask frame, if any, is appended by the caller).
func masked(_ frames: [[UInt8]]) -> [[UInt8]] {
    var frames = frames
    frames[0][6] |= UInt8(Header.maskFollows)
    return frames
}

/// A masked BATCH STEP of two entries (2 rows and 1 row over a vocab of 3) with `mask` as its mask frame.
func batchFrames(mask: [UInt8]) -> [[UInt8]] {
    let table = BatchTable.encode(dtype: .float32, vocab: 3, entries: [.init(session: 1, step: 0, rows: 2), .init(session: 2, step: 0, rows: 1)])
    return masked([Header(type: .batchStep, requestID: 5).encoded, table, [UInt8](repeating: 0, count: 3 * 3 * 4)]) + [mask]
}

/// A VERIFY of k draft tokens over a vocab of 3 (k + 1 target rows unless told), no draft rows.
func verifyFrames(k: Int = 2, sparseTargets: Bool = false, draftLayout: UInt8 = 0, targetRows: Int? = nil, draftBytes: Int = 0) -> [[UInt8]] {
    var descriptor = VerifyDescriptor(session: 9, step: 0, sequence: 0, dtype: .float32, draftLayout: .none, draftTokens: k, vocab: 3).encoded
    descriptor[17] = sparseTargets ? 1 : 0
    descriptor[18] = draftLayout
    return [Header(type: .verify, requestID: 3).encoded, descriptor, [UInt8](repeating: 0, count: 4 * k),
            [UInt8](repeating: 0, count: (targetRows ?? k + 1) * 3 * 4), [UInt8](repeating: 0, count: draftBytes)]
}

/// A BATCH VERIFY with one k = 1 entry per session over a vocab of 3.
func batchVerifyFrames(sessions: [UInt64], targetLayout: UInt8 = 0) -> [[UInt8]] {
    var table = VerifyTable.encode(dtype: .float32, draftLayout: .none, vocab: 3, entries: sessions.map { .init(session: $0, step: 0, sequence: 0, draftTokens: 1) })
    table[1] = targetLayout
    return [Header(type: .batchVerify, requestID: 4).encoded, table, [UInt8](repeating: 0, count: 4 * sessions.count),
            [UInt8](repeating: 0, count: sessions.count * 2 * 3 * 4), []]
}

@Suite("Wire protocol v1")
struct ProtocolTests {
    @Test("the header is 16 little-endian bytes and parses back")
    func headerLayout() throws {
        let header = Header(type: .decode, requestID: 0x0102_0304_0506_0708)
        let bytes = header.encoded
        #expect(bytes == [0x4C, 0x47, 0x54, 0x44, 1, 0x03, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1])
        #expect(try bytes.withUnsafeBytes(Header.parse) == header)
    }

    @Test("the rows descriptor is 12 little-endian bytes and parses back")
    func descriptorLayout() throws {
        let descriptor = RowsDescriptor(dtype: .bfloat16, rows: 3, vocab: 0x0102)
        #expect(descriptor.encoded == [3, 0, 0, 0, 3, 0, 0, 0, 0x02, 0x01, 0, 0])
        #expect(try descriptor.encoded.withUnsafeBytes { try RowsDescriptor.parse($0, limits: limits) } == descriptor)
        #expect(descriptor.payloadBytes == 3 * 0x0102 * 2)
    }

    static let refusals: [Refusal] = {
        var badMagic = Header(type: .hello, requestID: 1).encoded
        badMagic[0] = 0x58
        var badVersion = Header(type: .hello, requestID: 1).encoded
        badVersion[4] = 2
        var unknownType = Header(type: .hello, requestID: 1).encoded
        unknownType[5] = 0x7E
        var flagged = Header(type: .hello, requestID: 1).encoded
        flagged[6] = 1
        var badDType = decodeFrames()
        badDType[1][0] = 9
        var badLayout = decodeFrames()
        badLayout[1][1] = 1
        var reserved = decodeFrames()
        reserved[1][3] = 1
        return [
            Refusal("no frames", [], .badFrameCount, "no frames"),
            Refusal("truncated header", [Array(Header(type: .hello, requestID: 1).encoded.prefix(10))], .malformedHeader, "10 bytes"),
            Refusal("wrong magic", [badMagic], .badMagic, "LGTD"),
            Refusal("wrong version", [badVersion], .unsupportedVersion, "version 2"),
            Refusal("unknown type", [unknownType], .unknownType, "0x7e"),
            Refusal("reply type as request", [Header(type: .tokens, requestID: 1).encoded], .unknownType, "reply type"),
            Refusal("flags set", [flagged], .unknownFlags, "0x1"),
            Refusal("HELLO with a body", [Header(type: .hello, requestID: 1).encoded, [1]], .badFrameCount, "got 2"),
            Refusal("DECODE without logits", Array(decodeFrames().prefix(3)), .badFrameCount, "got 3"),
            Refusal("short descriptor", [decodeFrames()[0], [1, 0, 0], [], []], .badDescriptor, "3 bytes"),
            Refusal("unknown dtype", badDType, .badDescriptor, "dtype code 9"),
            Refusal("unknown layout", badLayout, .badDescriptor, "layout 1"),
            Refusal("reserved bytes", reserved, .badDescriptor, "reserved"),
            Refusal("zero rows", decodeFrames(rows: 0), .badShape, "rows is 0"),
            Refusal("too many rows", decodeFrames(rows: 9), .badShape, "rows is 9"),
            Refusal("zero vocab", decodeFrames(vocab: 0), .badShape, "vocab is 0"),
            Refusal("vocab over the limit", decodeFrames(rows: 1, vocab: 1001), .badShape, "vocab is 1001"),
            Refusal("payload too short", decodeFrames(payloadBytes: 20), .sizeMismatch, "20 bytes"),
            Refusal("payload too long", decodeFrames(dtype: .float16, payloadBytes: 24), .sizeMismatch, "is 12"),
            Refusal("parameters not JSON", decodeFrames(parameters: Array("strategy=greedy".utf8)), .badParameters, "not a JSON object"),
            Refusal("parameters an array", decodeFrames(parameters: Array("[1]".utf8)), .badParameters, "not a JSON object"),
            Refusal("unknown parameter", decodeFrames(parameters: Array(#"{"temprature":0.7}"#.utf8)), .badParameters, "\"temprature\""),
            Refusal("strategy not a string", decodeFrames(parameters: Array(#"{"strategy":1}"#.utf8)), .badParameters, "must be a string"),
            Refusal("unknown strategy", decodeFrames(parameters: Array(#"{"strategy":"telepathy"}"#.utf8)), .unknownStrategy, "\"telepathy\""),
            Refusal("sampling without a session", decodeFrames(parameters: Array(#"{"strategy":"sample"}"#.utf8)), .unknownStrategy, "needs a session"),
            Refusal("message too large", decodeFrames(rows: 8, vocab: 1000), .messageTooLarge, "limit is 16384"),
            Refusal("mask flag without the mask frame", masked(decodeFrames()), .badFrameCount, "5 frames (header, rows descriptor, parameters, logits, mask)"),
            Refusal("mask frame of the wrong size", masked(decodeFrames()) + [[1, 0, 0, 0, 0]], .badShape, "the mask frame has 5 bytes; 2 rows × 1 words × 4 bytes is 8 (or one mask row for all: 4)"),
            Refusal("empty mask frame", masked(decodeFrames()) + [[]], .badShape, "the mask frame has 0 bytes"),
            Refusal("mask flag on OPEN", [masked([Header(type: .open, requestID: 1).encoded])[0], Array("{}".utf8)], .unknownFlags, "DECODE, PROBS, STEP, BATCH STEP, VERIFY and BATCH VERIFY only"),
            Refusal("VERIFY descriptor of the wrong size", [Header(type: .verify, requestID: 1).encoded, [1, 2, 3], [], [], []], .badDescriptor, "the verify descriptor has 3 bytes; it must have 32"),
            Refusal("VERIFY with k = 0", verifyFrames(k: 0), .badShape, "k is 0 draft tokens; it must be between 1 and 32"),
            Refusal("VERIFY with k above the limit", verifyFrames(k: 33), .badShape, "between 1 and 32"),
            Refusal("VERIFY with an unknown draft layout", verifyFrames(draftLayout: 7), .badDescriptor, "unknown draft layout 7"),
            Refusal("VERIFY with dense drafts for sparse targets", verifyFrames(sparseTargets: true, draftLayout: 1), .badDescriptor, "need dense target rows"),
            Refusal("VERIFY with one target row too few", verifyFrames(targetRows: 2), .sizeMismatch, "3 rows × 3 vocab × 4 bytes (f32) is 36"),
            Refusal("VERIFY with draft rows but layout 0", verifyFrames(draftBytes: 8), .sizeMismatch, "the draft rows frame has 8 bytes"),
            Refusal("VERIFY with the mask flag and no mask", masked(verifyFrames()), .badFrameCount, "6 frames (header, verify descriptor, draft tokens, target rows, draft rows, mask)"),
            Refusal("BATCH VERIFY naming a session twice", batchVerifyFrames(sessions: [4, 4]), .badDescriptor, "session 4 appears twice"),
            Refusal("BATCH VERIFY with sparse targets", batchVerifyFrames(sessions: [4], targetLayout: 1), .badDescriptor, "dense target rows"),
            Refusal("batch mask of the wrong size", batchFrames(mask: [UInt8](repeating: 0xFF, count: 8)), .badShape, "the mask frame has 8 bytes; 3 rows × 1 words × 4 bytes is 12"),
        ]
    }()

    @Test("malformed requests are refused with a code and a message naming the problem", arguments: refusals)
    func refusal(_ refusal: Refusal) {
        let error = #expect(throws: ProtocolError.self) { try withParsed(refusal.frames) { _, _ in } }
        #expect(error?.code == refusal.code)
        #expect(error?.message.contains(refusal.mentions) == true, "\(error?.message ?? "no message")")
    }

    @Test("well-formed requests parse")
    func wellFormed() throws {
        try withParsed([Header(type: .hello, requestID: 5).encoded]) { header, request in
            #expect(header.requestID == 5)
            guard case .hello = request else { Issue.record("not HELLO"); return }
        }
        try withParsed([Header(type: .ping, requestID: 6).encoded, [1, 2, 3]]) { _, request in
            guard case .ping(let payload) = request else { Issue.record("not PING"); return }
            #expect(payload.map(Array.init) == [1, 2, 3])
        }

        var frames = decodeFrames(dtype: .float16, rows: 2, vocab: 3, parameters: Array(#"{"strategy":"greedy"}"#.utf8))
        frames[3] = [0, 0x3C, 0, 0x40, 0, 0x42, 0, 0xBC, 0, 0xC0, 0, 0xC2]
        try withParsed(frames) { header, request in
            #expect(header.requestID == 77)
            guard case .decode(let decode) = request else { Issue.record("not DECODE"); return }
            #expect(decode.descriptor == RowsDescriptor(dtype: .float16, rows: 2, vocab: 3))
            #expect(decode.parameters == DecodeParameters(strategy: .greedy))
            // f16 1, 2, 3 in row 0 and -1, -2, -3 in row 1, read in place.
            #expect((0..<3).map { decode.row(0)[$0] } == [1, 2, 3])
            #expect((0..<3).map { decode.row(1)[$0] } == [-1, -2, -3])
        }
    }

    @Test("a masked BATCH STEP gives each entry its rows' mask rows, or the shared one")
    func batchMasks() throws {
        try withParsed(batchFrames(mask: [1, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0])) { header, request in
            #expect(header.hasMask)
            guard case .batchStep(let steps) = request else { Issue.record("not BATCH STEP"); return }
            #expect(steps.map { $0.mask.map(Array.init) } == [[1, 0, 0, 0, 2, 0, 0, 0], [4, 0, 0, 0]])
        }
        try withParsed(batchFrames(mask: [5, 0, 0, 0])) { _, request in
            guard case .batchStep(let steps) = request else { Issue.record("not BATCH STEP"); return }
            #expect(steps.map { $0.mask.map(Array.init) } == [[5, 0, 0, 0], [5, 0, 0, 0]])
        }
    }

    @Test("VERIFY's descriptor and draft tokens parse back; BATCH VERIFY slices its frames per entry")
    func verifyLayout() throws {
        let descriptor = VerifyDescriptor(session: 0x0102, step: 3, sequence: 1, dtype: .bfloat16, draftLayout: .sparse, draftTokens: 2, vocab: 5, draftCandidates: 4)
        #expect(descriptor.encoded.count == 32)
        #expect(try descriptor.encoded.withUnsafeBytes { try VerifyDescriptor.parse($0, limits: limits) } == descriptor)
        var frames = verifyFrames(k: 2)
        frames[2] = [7, 0, 0, 0, 1, 1, 0, 0]
        try withParsed(frames) { _, request in
            guard case .verify(let verify) = request else { Issue.record("not VERIFY"); return }
            #expect(verify.draftTokens == [7, 257])
        }
        let table = VerifyTable.encode(dtype: .float32, draftLayout: .none, vocab: 3, entries: [.init(session: 1, step: 0, sequence: 0, draftTokens: 1), .init(session: 2, step: 5, sequence: 2, draftTokens: 2)])
        let targets = (0..<5 * 3).flatMap { index in withUnsafeBytes(of: Float(index)) { Array($0) } }
        try withParsed([Header(type: .batchVerify, requestID: 1).encoded, table, [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0], targets, []]) { _, request in
            guard case .batchVerify(let entries) = request else { Issue.record("not BATCH VERIFY"); return }
            #expect(entries.map(\.draftTokens) == [[1], [2, 3]])
            #expect(entries.map(\.descriptor.sequence) == [0, 2] && entries.map(\.descriptor.step) == [0, 5])
            #expect(entries[1].targetRow(0)[0] == 6)  // the second entry's rows start after the first's two
        }
    }

    @Test("integers stay exact: seeds up to 2^64 − 1, and 2^53 + 1 not rounded; numbers of every form still read")
    func exactIntegers() throws {
        for (text, seed) in [("18446744073709551615", UInt64.max), ("9007199254740993", (1 << 53) + 1), ("0", 0), ("1e3", 1000)] {
            let parameters = try Array("{\"vocab_size\":4,\"strategy\":\"sample\",\"seed\":\(text)}".utf8).withUnsafeBytes { try SessionParameters.parse($0, limits: limits) }
            #expect(parameters.seed == seed, "\(text)")
            #expect(String(decoding: parameters.resolvedJSON, as: UTF8.self).contains("\"seed\":\(seed)"))
        }
        let refused = #expect(throws: ProtocolError.self) {
            try Array(#"{"vocab_size":4,"seed":18446744073709551616}"#.utf8).withUnsafeBytes { try SessionParameters.parse($0, limits: limits) }
        }
        #expect(refused?.message.contains("from 0 to 18446744073709551615") == true)
        let mixed = try Array(#"{"vocab_size":4,"temperature":2,"top_p":0.5,"logit_bias":{"1":-3,"2":1.5},"max_new_tokens":7.0}"#.utf8).withUnsafeBytes { try SessionParameters.parse($0, limits: limits) }
        #expect(mixed.processors.temperature == 2 && mixed.processors.topP == 0.5 && mixed.processors.logitBias == [1: -3, 2: 1.5] && mixed.maxNewTokens == 7)
    }

    @Test("every list parameter, and each sequence of a sequence list, is bounded by max_list_length")
    func listLengths() throws {
        let small = ProtocolLimits(maxVocab: 1000, maxRows: 8, maxMessageBytes: 16 * 1024, maxListLength: 3)
        for (json, mentions) in [
            (#""prompt_token_ids":[1,2,3,4]"#, #""prompt_token_ids" is 4; the limit is max_list_length = 3"#),
            (#""eos_token_ids":[1,2,3,4]"#, #""eos_token_ids" is 4"#),
            (#""banned_token_ids":[1,2,3,4]"#, #""banned_token_ids" is 4"#),
            (#""allowed_token_ids":[1,2,3,4]"#, #""allowed_token_ids" is 4"#),
            (#""logit_bias":{"1":1,"2":1,"3":1,"4":1}"#, #""logit_bias" is 4"#),
            (#""stop_sequences":[[1],[2],[3],[4]]"#, #""stop_sequences" is 4"#),
            (#""banned_sequences":[[1,2,3,4]]"#, #""banned_sequences (one sequence's length)" is 4"#),
        ] {
            let error = #expect(throws: ProtocolError.self) {
                try Array("{\"vocab_size\":10,\(json)}".utf8).withUnsafeBytes { try SessionParameters.parse($0, limits: small) }
            }
            #expect(error?.code == .badParameters && error?.message.contains(mentions) == true, "\(String(describing: error))")
        }
        _ = try Array(#"{"vocab_size":10,"prompt_token_ids":[1,2,3],"stop_sequences":[[1,2,3]]}"#.utf8).withUnsafeBytes { try SessionParameters.parse($0, limits: small) }
    }

    @Test("an empty parameters frame means every default")
    func defaultParameters() throws {
        let parameters = try [UInt8]().withUnsafeBytes(DecodeParameters.parse)
        #expect(parameters == DecodeParameters())
        #expect(try parameters.encoded.withUnsafeBytes(DecodeParameters.parse) == parameters)
    }

    @Test("the request id of a broken header is recovered when the header starts right")
    func bestEffortRequestID() {
        var bytes = Header(type: .hello, requestID: 991).encoded
        bytes[4] = 9
        #expect(bytes.withUnsafeBytes(Header.bestEffortRequestID) == 991)
        #expect(Array(bytes.prefix(8)).withUnsafeBytes(Header.bestEffortRequestID) == 0)
        bytes[0] = 0
        #expect(bytes.withUnsafeBytes(Header.bestEffortRequestID) == 0)
    }

    @Test("TOKENS, ERROR and WELCOME bodies round-trip")
    func replyBodies() throws {
        let choices = [TokenChoice(token: 7, logprob: -0.25), TokenChoice(token: 262_143, logprob: -12.5)]
        let tokens = TokensBody.encode(choices)
        #expect(tokens.count == 16)
        #expect(Array(tokens.prefix(8)) == [7, 0, 0, 0, 0, 0, 0x80, 0xBE])
        #expect(try tokens.withUnsafeBytes(TokensBody.parse) == choices)

        let error = ProtocolError(.sizeMismatch, "row 3 is short — by 4 bytes")
        let errorBytes = ErrorBody.encode(error)
        #expect(Array(errorBytes.prefix(4)) == [9, 0, 0, 0])
        #expect(try errorBytes.withUnsafeBytes(ErrorBody.parse) == error)

        let welcome = Welcome(server: "9.9.9", workers: 3, limits: limits)
        let decoded = try welcome.encoded.withUnsafeBytes(Welcome.parse)
        #expect(decoded == welcome)
        #expect(decoded.dtypes == ["f32", "f16", "bf16"])
        #expect(decoded.strategies == ["greedy", "sample", "beam"])
        #expect(String(decoding: welcome.encoded, as: UTF8.self).contains(#""max_vocab":1000"#))
    }

    @Test("reply types are request types with the high bit set")
    func typeNumbering() {
        let pairs: [(MessageType, MessageType)] = [(.hello, .welcome), (.ping, .pong), (.decode, .tokens)]
        for (request, reply) in pairs {
            #expect(reply.rawValue == request.rawValue | 0x80)
            #expect(request.isRequest && !reply.isRequest)
        }
        #expect(ErrorCode.invalidLogits.name == "INVALID_LOGITS")
        #expect(ErrorCode(rawValue: 999).name == "UNKNOWN_ERROR_999")
    }

    @Test("row errors from the decoding engine map to codes naming the row")
    func rowErrors() {
        #expect(ProtocolError(row: 4, .notANumber(index: 9)) == ProtocolError(.invalidLogits, "row 4: logit 9 is NaN"))
        #expect(ProtocolError(row: 0, .positiveInfinity(index: 1)).code == .invalidLogits)
        #expect(ProtocolError(row: 2, .allMasked) == ProtocolError(.allMasked, "row 2: every logit in the row is -inf"))
    }
}
