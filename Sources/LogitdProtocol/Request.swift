import Decoding

/// A DECODE request, read in place from its frames: valid only while the frames are.
public struct DecodeRequest: @unchecked Sendable {
    public let descriptor: RowsDescriptor
    public let parameters: DecodeParameters
    public let logits: UnsafeRawBufferPointer
    /// The mask frame, when the header's flag said one follows.
    public var masks: RowMasks?

    /// Row `index` of the logits frame, read through its mask if there is one.
    public func row(_ index: Int) -> LogitRow {
        let rowBytes = descriptor.vocab * descriptor.dtype.byteWidth
        let bytes = UnsafeRawBufferPointer(rebasing: logits[(index * rowBytes)..<((index + 1) * rowBytes)])
        guard let masks else { return LogitRow(bytes: bytes, dtype: descriptor.dtype) }
        return LogitRow(bytes: bytes, dtype: descriptor.dtype, mask: masks.mask(forRow: index))
    }
}

/// A request as the daemon receives it, after every check that does not need to read the logits.
public enum Request: @unchecked Sendable {
    /// HELLO: one frame, the header.
    case hello
    /// PING: the header and optionally one payload frame, which PONG echoes.
    case ping(payload: UnsafeRawBufferPointer?)
    /// DECODE: header, rows descriptor, parameters (JSON, may be empty), logits.
    case decode(DecodeRequest)
    /// PROBS: header, rows descriptor, parameters (JSON, may be empty), logits.
    case probs(ProbsRequest)
    /// OPEN: header, parameters (JSON).
    case open(SessionParameters)
    /// STEP: header, step descriptor, logits.
    case step(StepRequest)
    /// CLOSE: header, 8-byte session id.
    case close(session: UInt64)
    /// BATCH STEP: header, batch table, logits (, mask); one STEP per table entry.
    case batchStep([StepRequest])
    /// VERIFY: header, verify descriptor, draft tokens, target rows, draft rows (, mask).
    case verify(VerifyRequest)
    /// BATCH VERIFY: header, verify table, draft tokens, target rows, draft rows (, mask).
    case batchVerify([VerifyRequest])
    /// SCORE: header, rows descriptor, parameters (JSON, may be empty), logits, observed tokens (, mask).
    case score(ScoreRequest)
    /// CLASSIFY: header, rows descriptor, parameters (JSON), logits (, mask).
    case classify(ClassifyRequest)

    /// Parses the frames of one request (without any routing envelope). Throws the ERROR to send back;
    /// `header` is set whenever the header itself was valid, for the reply's request id.
    public static func parse(_ frames: [UnsafeRawBufferPointer], limits: ProtocolLimits) throws(ProtocolError) -> (Header, Request) {
        guard let first = frames.first else {
            throw ProtocolError(.badFrameCount, "the message has no frames")
        }
        let header = try Header.parse(first)
        let total = frames.reduce(0) { $0 + $1.count }
        guard total <= limits.maxMessageBytes else {
            throw ProtocolError(.messageTooLarge, "the message has \(total) bytes; the limit is \(limits.maxMessageBytes)")
        }
        func expectFrames(_ allowed: ClosedRange<Int>, _ layout: String) throws(ProtocolError) {
            guard allowed.contains(frames.count) else {
                throw ProtocolError(.badFrameCount, "\(header.type) takes \(layout); got \(frames.count) frames")
            }
        }
        switch header.type {
        case .hello:
            try expectFrames(1...1, "1 frame (header)")
            return (header, .hello)
        case .ping:
            try expectFrames(1...2, "1 or 2 frames (header, optional payload)")
            return (header, .ping(payload: frames.count == 2 ? frames[1] : nil))
        case .decode, .probs:
            let count = header.hasMask ? 5 : 4
            try expectFrames(count...count, header.hasMask ? "5 frames (header, rows descriptor, parameters, logits, mask) with the mask flag" : "4 frames (header, rows descriptor, parameters, logits)")
            let descriptor = try RowsDescriptor.parse(frames[1], limits: limits)
            try checkPayload(frames[3], rows: descriptor.rows, vocab: descriptor.vocab, dtype: descriptor.dtype)
            let masks = header.hasMask ? try RowMasks.parse(frames[4], rows: descriptor.rows, vocab: descriptor.vocab) : nil
            if header.type == .decode {
                return (header, .decode(DecodeRequest(descriptor: descriptor, parameters: try DecodeParameters.parse(frames[2]), logits: frames[3], masks: masks)))
            }
            let parameters = try ProbsParameters.parse(frames[2], vocab: descriptor.vocab)
            return (header, .probs(ProbsRequest(rows: DecodeRequest(descriptor: descriptor, parameters: DecodeParameters(), logits: frames[3], masks: masks), parameters: parameters)))
        case .score:
            let count = header.hasMask ? 6 : 5
            try expectFrames(count...count, header.hasMask ? "6 frames (header, rows descriptor, parameters, logits, observed tokens, mask) with the mask flag" : "5 frames (header, rows descriptor, parameters, logits, observed tokens)")
            let descriptor = try RowsDescriptor.parse(frames[1], limits: limits)
            try checkPayload(frames[3], rows: descriptor.rows, vocab: descriptor.vocab, dtype: descriptor.dtype)
            let masks = header.hasMask ? try RowMasks.parse(frames[5], rows: descriptor.rows, vocab: descriptor.vocab) : nil
            let parameters = try ScoreParameters.parse(frames[2], vocab: descriptor.vocab, limits: limits)
            let tokens = try ScoreRequest.tokens(frames[4], rows: descriptor.rows, vocab: descriptor.vocab)
            return (header, .score(ScoreRequest(rows: DecodeRequest(descriptor: descriptor, parameters: DecodeParameters(), logits: frames[3], masks: masks), tokens: tokens, parameters: parameters)))
        case .classify:
            let count = header.hasMask ? 5 : 4
            try expectFrames(count...count, header.hasMask ? "5 frames (header, rows descriptor, parameters, logits, mask) with the mask flag" : "4 frames (header, rows descriptor, parameters, logits)")
            let descriptor = try RowsDescriptor.parse(frames[1], limits: limits)
            try checkPayload(frames[3], rows: descriptor.rows, vocab: descriptor.vocab, dtype: descriptor.dtype)
            let masks = header.hasMask ? try RowMasks.parse(frames[4], rows: descriptor.rows, vocab: descriptor.vocab) : nil
            let parameters = try ClassifyParameters.parse(frames[2], vocab: descriptor.vocab, limits: limits)
            return (header, .classify(ClassifyRequest(rows: DecodeRequest(descriptor: descriptor, parameters: DecodeParameters(), logits: frames[3], masks: masks), parameters: parameters)))
        case .open:
            try expectFrames(2...2, "2 frames (header, parameters)")
            return (header, .open(try SessionParameters.parse(frames[1], limits: limits)))
        case .step:
            let count = header.hasMask ? 4 : 3
            try expectFrames(count...count, header.hasMask ? "4 frames (header, step descriptor, logits, mask) with the mask flag" : "3 frames (header, step descriptor, logits)")
            let descriptor = try StepDescriptor.parse(frames[1], limits: limits)
            guard frames[2].count == descriptor.payloadBytes else {
                let shape = descriptor.sparse ? "\(descriptor.rows) rows × (\(descriptor.vocab) pairs × 8 bytes\(descriptor.logNormaliser ? " + 4 for the log-sum-exp" : ""))" : "\(descriptor.rows) rows × \(descriptor.vocab) vocab × \(descriptor.dtype.byteWidth) bytes (\(descriptor.dtype))"
                throw ProtocolError(.sizeMismatch, "the logits frame has \(frames[2].count) bytes; \(shape) is \(descriptor.payloadBytes)")
            }
            return (header, .step(StepRequest(descriptor: descriptor, logits: frames[2], mask: header.hasMask ? frames[3] : nil)))
        case .batchStep:
            let count = header.hasMask ? 4 : 3
            try expectFrames(count...count, header.hasMask ? "4 frames (header, batch table, logits, mask) with the mask flag" : "3 frames (header, batch table, logits)")
            return (header, .batchStep(try BatchTable.parse(frames[1], logits: frames[2], mask: header.hasMask ? frames[3] : nil, limits: limits)))
        case .verify:
            let count = header.hasMask ? 6 : 5
            try expectFrames(count...count, header.hasMask ? "6 frames (header, verify descriptor, draft tokens, target rows, draft rows, mask) with the mask flag" : "5 frames (header, verify descriptor, draft tokens, target rows, draft rows)")
            let descriptor = try VerifyDescriptor.parse(frames[1], limits: limits)
            return (header, .verify(try VerifyRequest(descriptor: descriptor, tokens: frames[2], targets: frames[3], drafts: frames[4], mask: header.hasMask ? frames[5] : nil)))
        case .batchVerify:
            let count = header.hasMask ? 6 : 5
            try expectFrames(count...count, header.hasMask ? "6 frames (header, verify table, draft tokens, target rows, draft rows, mask) with the mask flag" : "5 frames (header, verify table, draft tokens, target rows, draft rows)")
            return (header, .batchVerify(try VerifyTable.parse(frames[1], tokens: frames[2], targets: frames[3], drafts: frames[4], mask: header.hasMask ? frames[5] : nil, limits: limits)))
        case .close:
            try expectFrames(2...2, "2 frames (header, session id)")
            guard frames[1].count == 8 else {
                throw ProtocolError(.badDescriptor, "CLOSE's session frame has \(frames[1].count) bytes; it must have 8")
            }
            return (header, .close(session: frames[1].littleEndian(at: 0, as: UInt64.self)))
        case .welcome, .pong, .tokens, .probabilities, .opened, .stepTokens, .batchTokens, .done, .closed, .verified, .batchVerified, .scored, .classified, .error:
            throw ProtocolError(.unknownType, "\(header.type) is a reply type, not a request")
        }
    }
}

/// The logits frame must hold exactly rows × vocab elements.
private func checkPayload(_ frame: UnsafeRawBufferPointer, rows: Int, vocab: Int, dtype: LogitDType) throws(ProtocolError) {
    let expected = rows * vocab * dtype.byteWidth
    guard frame.count == expected else {
        throw ProtocolError(.sizeMismatch, "the logits frame has \(frame.count) bytes; \(rows) rows × \(vocab) vocab × \(dtype.byteWidth) bytes (\(dtype)) is \(expected)")
    }
}

/// A PROBS request, read in place.
public struct ProbsRequest: @unchecked Sendable {
    public let rows: DecodeRequest
    public let parameters: ProbsParameters
}

/// PROBS's parameters frame: `{"temperature": T, "top_n": n}`, both optional; empty for defaults.
public struct ProbsParameters: Equatable, Sendable {
    /// Divides the logits before the softmax; > 0.
    public var temperature: Float = 1
    /// 0: the whole row of probabilities; n: the n most probable tokens of each row.
    public var topN = 0

    public init(temperature: Float = 1, topN: Int = 0) {
        self.temperature = temperature
        self.topN = topN
    }

    public var encoded: [UInt8] { Array("{\"temperature\":\(temperature),\"top_n\":\(topN)}".utf8) }

    public static func parse(_ frame: UnsafeRawBufferPointer, vocab: Int) throws(ProtocolError) -> ProbsParameters {
        guard !frame.isEmpty else { return ProbsParameters() }
        let reader = ParameterReader(object: try JSONValue.object(from: frame, what: "the PROBS parameters frame"))
        try reader.refuseUnknownKeys(known: ["temperature", "top_n"])
        var parameters = ProbsParameters()
        if let temperature = try reader.float("temperature") {
            guard temperature > 0, temperature.isFinite else { throw ProtocolError(.badParameters, "\"temperature\" must be a finite number > 0") }
            parameters.temperature = temperature
        }
        if let topN = try reader.int("top_n") {
            guard topN >= 0, topN <= vocab else { throw ProtocolError(.badParameters, "\"top_n\" must be between 0 and vocab (\(vocab))") }
            parameters.topN = topN
        }
        return parameters
    }
}

extension ProtocolError {
    /// The ERROR for a row the decoding engine refused.
    public init(row: Int, _ error: LogitRowError) {
        switch error {
        case .allMasked: self.init(.allMasked, "row \(row): \(error)")
        case .noCandidates: self.init(.noCandidates, "row \(row): \(error)")
        case .empty, .notANumber, .positiveInfinity: self.init(.invalidLogits, "row \(row): \(error)")
        }
    }
}
