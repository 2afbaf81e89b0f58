import Decoding
import LogitdProtocol
import Testing
import LogitdServer

@Suite("Session ids: a secret permutation of the issue counter")
struct SessionIDsTests {
    @Test("ids decode back to their counter, are distinct, below 2^62 and never 0")
    func permutation() {
        var ids = SessionIDs(key: 0xC0FFEE)
        var seen = Set<UInt64>()
        for counter in UInt64(1)...20_000 {
            let id = ids.issue()
            #expect(id != 0 && id < 1 << 62)
            #expect(seen.insert(id).inserted)
            #expect(ids.counter(ofID: id) == counter || ids.id(ofCounter: counter) == 0)
            #expect(ids.issued(id))
        }
        // Consecutive ids look unrelated: no two share their high 31 bits in this run.
        #expect(Set(seen.map { $0 >> 31 }).count > 19_900)
        #expect(!ids.issued(ids.id(ofCounter: 20_001)), "not issued yet")
        #expect(!ids.issued(1 << 63), "outside the id space")
        #expect(SessionIDs(key: 1).id(ofCounter: 5) != SessionIDs(key: 2).id(ofCounter: 5), "another daemon, other ids")
    }

    @Test("a closed session's id answers SESSION_CLOSED after its reason is forgotten; an id never issued, UNKNOWN_SESSION")
    func closedStaysClosed() throws {
        let handler = RequestHandler(welcome: Welcome(server: "test", workers: 1, limits: ProtocolLimits(maxVocab: 100, maxRows: 4, maxMessageBytes: 10_000)),
                                     maxSessions: 10, endedSessionMemory: 4)
        let workspace = Workspace()
        func request(_ frames: [[UInt8]]) -> RequestHandler.Reply { frames.withUnsafeFrames { handler.handle($0, workspace: workspace) } }
        func open() throws -> UInt64 {
            let reply = request([Header(type: .open, requestID: 1).encoded, Array("{\"vocab_size\": 8}".utf8)])
            return try reply.frames[1].withUnsafeBytes(OpenedReply.parse).session
        }
        func close(_ id: UInt64) -> RequestHandler.Reply {
            var body: [UInt8] = []
            withUnsafeBytes(of: id.littleEndian) { body += $0 }
            return request([Header(type: .close, requestID: 2).encoded, body])
        }
        let first = try open()
        #expect(close(first).error == nil)
        for _ in 0..<20 { _ = close(try open()) }
        #expect(close(first).error?.code == .sessionClosed, "forgotten, but still known to have ended")
        #expect(close(first).error?.message.contains("has ended") == true)
        #expect(close(12345).error?.code == .unknownSession)
    }
}
