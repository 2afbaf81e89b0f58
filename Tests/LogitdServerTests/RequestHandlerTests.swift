import Decoding
import LogitdProtocol
import Testing
import LogitdServer

@Suite("Request handling, without sockets")
struct RequestHandlerTests {
    let handler = RequestHandler(welcome: Welcome(server: "test", workers: 1, limits: ProtocolLimits(maxVocab: 100, maxRows: 4, maxMessageBytes: 10_000)))

    let workspace = Workspace()

    func handle(_ frames: [[UInt8]]) -> RequestHandler.Reply {
        frames.withUnsafeFrames { handler.handle($0, workspace: workspace) }
    }

    func decodeFrames(_ logits: [Float], vocab: Int, requestID: UInt64 = 3) -> [[UInt8]] {
        [
            Header(type: .decode, requestID: requestID).encoded,
            RowsDescriptor(dtype: .float32, rows: logits.count / vocab, vocab: vocab).encoded,
            [],
            logits.withUnsafeBytes { Array($0) },
        ]
    }

    @Test("DECODE answers TOKENS with one greedy choice per row")
    func decode() throws {
        let reply = handle(decodeFrames([1, 3, 2, 3, 0, 0, 9, -1], vocab: 4))
        #expect(reply.error == nil)
        #expect(reply.frames.count == 2)
        let header = try reply.frames[0].withUnsafeBytes(Header.parse)
        #expect(header.type == .tokens && header.requestID == 3)
        let choices = try reply.frames[1].withUnsafeBytes(TokensBody.parse)
        #expect(choices.map(\.token) == [1, 2])
        let expected = try [Float]([1, 3, 2, 3]).withUnsafeBytes { try Greedy.choose(from: LogitRow(bytes: $0, dtype: .float32)) }
        #expect(choices[0] == expected)
    }

    @Test("a bad row refuses the whole request, naming row and token")
    func badRow() throws {
        let reply = handle(decodeFrames([1, 2, 3, 4, 0, .nan, 0, 0], vocab: 4, requestID: 12))
        #expect(reply.error == ProtocolError(.invalidLogits, "row 1: logit 1 is NaN"))
        #expect(reply.requestID == 12)
        let header = try reply.frames[0].withUnsafeBytes(Header.parse)
        #expect(header.type == .error && header.requestID == 12)
        #expect(try reply.frames[1].withUnsafeBytes(ErrorBody.parse) == reply.error)
    }

    @Test("HELLO answers the configured WELCOME; PING echoes its payload")
    func helloAndPing() throws {
        let welcome = handle([Header(type: .hello, requestID: 1).encoded])
        let body = try welcome.frames[1].withUnsafeBytes(Welcome.parse)
        #expect(body.server == "test" && body.limits.maxRows == 4)
        let pong = handle([Header(type: .ping, requestID: 2).encoded, [9, 8, 7]])
        #expect(try pong.frames[0].withUnsafeBytes(Header.parse).type == .pong)
        #expect(pong.frames[1] == [9, 8, 7])
        #expect(handle([Header(type: .ping, requestID: 2).encoded]).frames.count == 1)
    }

    @Test("an unreadable header still gets an ERROR, with request id 0")
    func garbage() throws {
        let reply = handle([[1, 2, 3]])
        #expect(reply.requestID == 0)
        #expect(reply.error?.code == .malformedHeader)
        #expect(try reply.frames[0].withUnsafeBytes(Header.parse).requestID == 0)
    }
}
