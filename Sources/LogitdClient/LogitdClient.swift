import Decoding
import LogitdProtocol
import ZeroMQ

/// What went wrong with a request.
public enum LogitdClientError: Error, CustomStringConvertible {
    /// The daemon answered with ERROR.
    case server(ProtocolError)
    /// No reply within the client's timeout.
    case timeout(Duration)
    /// The ZeroMQ socket failed.
    case transport(ZMQError)
    /// The daemon's reply did not follow the protocol.
    case unexpectedReply(String)

    public var description: String {
        switch self {
        case .server(let error): "logitd refused the request: \(error)"
        case .timeout(let duration): "no reply from logitd within \(duration)"
        case .transport(let error): "ZeroMQ: \(error)"
        case .unexpectedReply(let what): "unexpected reply from logitd: \(what)"
        }
    }
}

/// A connection to one or more logitd daemons over a DEALER socket (requests are spread over the
/// endpoints round-robin by ZeroMQ). Not thread-safe: use one client per thread.
public final class LogitdClient {
    private let socket: Socket
    /// How long a request waits for its reply.
    public var timeout: Duration
    private var nextRequestID: UInt64 = 1

    /// Connects to `endpoints`. ZeroMQ connects lazily, so a daemon that starts later is still reached;
    /// a request that gets no reply within `timeout` throws `.timeout`.
    /// With `serverKey` (the daemon's CURVE public key, Z85) and this client's `keyPair`, the
    /// connection is CURVE-encrypted and the daemon knows this client by its public key.
    public init(endpoints: [String], timeout: Duration = .seconds(10), context: Context? = nil,
                serverKey: String? = nil, keyPair: CurveKeyPair? = nil) throws(LogitdClientError) {
        do throws(ZMQError) {
            let owner: Context
            if let context { owner = context } else { owner = try Context() }
            socket = try owner.socket(.dealer)
            try socket.setLinger(.zero)
            if let serverKey, let keyPair { try socket.makeCurveClient(serverKey: serverKey, keyPair: keyPair) }
            for endpoint in endpoints { try socket.connect(endpoint) }
        } catch {
            throw .transport(error)
        }
        self.timeout = timeout
    }

    public convenience init(endpoint: String, timeout: Duration = .seconds(10), serverKey: String? = nil, keyPair: CurveKeyPair? = nil) throws(LogitdClientError) {
        try self.init(endpoints: [endpoint], timeout: timeout, serverKey: serverKey, keyPair: keyPair)
    }

    public func close() { socket.close() }

    /// HELLO: what the daemon speaks and accepts.
    public func hello() throws(LogitdClientError) -> Welcome {
        let body = try request(.hello, frames: [], expecting: .welcome, bodyFrames: 1)
        do { return try body[0].withUnsafeBytes(Welcome.parse) } catch { throw .unexpectedReply("\(error)") }
    }

    /// PING: returns the payload the daemon echoed.
    @discardableResult
    public func ping(payload: [UInt8]? = nil) throws(LogitdClientError) -> [UInt8]? {
        let frames = try payload.map { (bytes) throws(LogitdClientError) in [try message(bytes)] } ?? []
        let body = try request(.ping, frames: frames, expecting: .pong, bodyFrames: payload == nil ? 0 : 1)
        return body.first?.bytes
    }

    /// DECODE: one token per row of `logits` (`rows × vocab` float32, row-major).
    public func decode(_ logits: [Float], vocab: Int, parameters: DecodeParameters = DecodeParameters()) throws(LogitdClientError) -> [TokenChoice] {
        try logits.withUnsafeBytes { bytes in
            Result { () throws(LogitdClientError) in try decode(bytes: bytes, dtype: .float32, vocab: vocab, parameters: parameters) }
        }.get()
    }

    /// DECODE: one token per row of `bytes`, rows of `vocab` elements of `dtype`, little-endian.
    /// With `mask` (ceil(vocab / 32) words per row, or one row of them for every row; bit j of word
    /// w allows token 32·w + j), each token is chosen among those its row's mask allows.
    public func decode(bytes: UnsafeRawBufferPointer, dtype: LogitDType, vocab: Int, parameters: DecodeParameters = DecodeParameters(), mask: [UInt32]? = nil) throws(LogitdClientError) -> [TokenChoice] {
        let rowBytes = vocab * dtype.byteWidth
        guard rowBytes > 0, bytes.count % rowBytes == 0 else {
            preconditionFailure("logits must hold whole rows of \(vocab) \(dtype) elements")
        }
        let descriptor = RowsDescriptor(dtype: dtype, rows: bytes.count / rowBytes, vocab: vocab)
        let logits: Message
        do { logits = try Message(copying: bytes) } catch { throw .transport(error) }
        var maskFrames: [Message] = []
        if let mask { maskFrames.append(try message(Self.maskBytes(mask))) }
        let (_, body) = try exchange(.decode, frames: [try message(descriptor.encoded), try message(parameters.encoded), logits] + maskFrames, expecting: [.tokens], masked: mask != nil)
        guard body.count == 1 else { throw .unexpectedReply("TOKENS with \(body.count) body frames, expected 1") }
        let choices: [TokenChoice]
        do { choices = try body[0].withUnsafeBytes(TokensBody.parse) } catch { throw .unexpectedReply("\(error)") }
        guard choices.count == descriptor.rows else {
            throw .unexpectedReply("\(choices.count) tokens for \(descriptor.rows) rows")
        }
        return choices
    }

    /// PROBS: softmax(row / temperature) of each row of `logits` (float32, row-major): the whole row
    /// when `topN` is 0, else the `topN` most probable tokens of each row (`logprob` holds the
    /// probability itself), most probable first. With `mask` (as for `decode`), over the tokens each
    /// row's mask allows.
    public func probabilities(_ logits: [Float], vocab: Int, temperature: Float = 1, topN: Int = 0, mask: [UInt32]? = nil) throws(LogitdClientError) -> (rows: [[Float]], top: [[TokenChoice]]) {
        let descriptor = RowsDescriptor(dtype: .float32, rows: logits.count / vocab, vocab: vocab)
        let payload: Message
        do { payload = try Message(logits.withUnsafeBytes { Array($0) }) } catch { throw .transport(error) }
        var frames = [try message(descriptor.encoded), try message(ProbsParameters(temperature: temperature, topN: topN).encoded), payload]
        if let mask { frames.append(try message(Self.maskBytes(mask))) }
        let body = try request(.probs, frames: frames, expecting: .probabilities, bodyFrames: 2, masked: mask != nil)
        if topN == 0 {
            let values = body[1].withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            return (stride(from: 0, to: values.count, by: vocab).map { Array(values[$0..<($0 + vocab)]) }, [])
        }
        let flat: [TokenChoice]
        do { flat = try body[1].withUnsafeBytes(TokensBody.parse) } catch { throw .unexpectedReply("\(error)") }
        return ([], stride(from: 0, to: flat.count, by: topN).map { Array(flat[$0..<($0 + topN)]) })
    }

    /// SCORE: row i of `logits` (float32, row-major) scored as the distribution of `tokens[i]` after
    /// the prompt and `tokens[..<i]`, under `parameters`' processors (none: the raw rows).
    public func score(_ logits: [Float], vocab: Int, tokens: [Int], parameters: ScoreParameters = ScoreParameters(), mask: [UInt32]? = nil) throws(LogitdClientError) -> [TokenScore] {
        let descriptor = RowsDescriptor(dtype: .float32, rows: logits.count / vocab, vocab: vocab)
        var observed: [UInt8] = []
        for token in tokens { withUnsafeBytes(of: UInt32(token).littleEndian) { observed += $0 } }
        var frames = [try message(descriptor.encoded), try message(parameters.encoded), try message(logits.withUnsafeBytes { Array($0) }), try message(observed)]
        if let mask { frames.append(try message(Self.maskBytes(mask))) }
        let body = try request(.score, frames: frames, expecting: .scored, bodyFrames: 1, masked: mask != nil)
        do { return try body[0].withUnsafeBytes(ScoredBody.parse) } catch { throw .unexpectedReply("\(error)") }
    }

    /// CLASSIFY: per row, softmax over `tokens` at `temperature`, and ln of their total probability.
    public func classify(_ logits: [Float], vocab: Int, tokens: [Int], temperature: Float = 1, mask: [UInt32]? = nil) throws(LogitdClientError) -> [(probabilities: [Float], logMass: Float)] {
        let descriptor = RowsDescriptor(dtype: .float32, rows: logits.count / vocab, vocab: vocab)
        var frames = [try message(descriptor.encoded), try message(ClassifyParameters(tokenIDs: tokens, temperature: temperature).encoded), try message(logits.withUnsafeBytes { Array($0) })]
        if let mask { frames.append(try message(Self.maskBytes(mask))) }
        let body = try request(.classify, frames: frames, expecting: .classified, bodyFrames: 2, masked: mask != nil)
        do {
            return try body[0].withUnsafeBytes { (probabilities) throws(ProtocolError) in
                try body[1].withUnsafeBytes { (masses) throws(ProtocolError) in try ClassifiedBody.parse(probabilities, masses, classes: tokens.count) }
            }
        } catch {
            throw .unexpectedReply("\(error)")
        }
    }

    /// Sends raw frames after a header of `type` and returns the reply's frames after its header.
    /// Exposed for tests and tools that need to send what the typed calls would not. `masked`: the
    /// last frame is a mask frame, and the header says so.
    public func request(_ type: MessageType, frames: [Message], expecting replyType: MessageType, bodyFrames: Int, masked: Bool = false) throws(LogitdClientError) -> [Message] {
        let (_, body) = try exchange(type, frames: frames, expecting: [replyType], masked: masked)
        guard body.count == bodyFrames else {
            throw .unexpectedReply("\(replyType) with \(body.count) body frames, expected \(bodyFrames)")
        }
        return body
    }

    /// One request and its reply: ERROR becomes `.server`, any type outside `expecting` is refused.
    /// `masked`: the last frame is a mask frame, and the header says so.
    func exchange(_ type: MessageType, frames: [Message], expecting: Set<MessageType>, masked: Bool = false) throws(LogitdClientError) -> (MessageType, [Message]) {
        let requestID = nextRequestID
        nextRequestID &+= 1
        do {
            let header = Header(type: type, requestID: requestID, flags: masked ? Header.maskFollows : 0)
            try socket.send(multipart: [try Message(header.encoded)] + frames)
        } catch {
            throw .transport(error)
        }
        let reply = try receiveReply(to: requestID)
        let header: Header
        do { header = try reply[0].withUnsafeBytes(Header.parse) } catch { throw .unexpectedReply("\(error)") }
        let body = Array(reply.dropFirst())
        if header.type == .error {
            guard body.count == 1, let error = try? body[0].withUnsafeBytes(ErrorBody.parse) else {
                throw .unexpectedReply("an ERROR without a well-formed body")
            }
            throw .server(error)
        }
        guard expecting.contains(header.type) else {
            throw .unexpectedReply("\(header.type), expected one of \(expecting.map { "\($0)" }.sorted())")
        }
        return (header.type, body)
    }

    /// Waits for the reply carrying `requestID`, dropping late replies to earlier requests that timed out.
    private func receiveReply(to requestID: UInt64) throws(LogitdClientError) -> [Message] {
        let deadline = ContinuousClock.now + timeout
        let poller = Poller()
        poller.register(socket)
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { throw .timeout(timeout) }
            do {
                guard try poller.poll(timeout: remaining) > 0 else { continue }
                let frames = try socket.receiveMultipart()
                if frames[0].withUnsafeBytes(Header.bestEffortRequestID) == requestID { return frames }
            } catch {
                throw .transport(error)
            }
        }
    }

    /// Mask words as the mask frame carries them: little-endian.
    static func maskBytes(_ words: [UInt32]) -> [UInt8] {
        words.flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> (8 * $0)) } }
    }

    func message(_ bytes: [UInt8]) throws(LogitdClientError) -> Message {
        do { return try Message(bytes) } catch { throw .transport(error) }
    }
}
