import LogitdServer
import Testing

@Suite("Ordering of session requests in the broker")
struct SessionOrderTests {
    @Test("one request per session in flight; later ones run in arrival order")
    func perSession() {
        var order = SessionOrder<String>()
        #expect(order.admit("a0", sessions: [1]) == "a0")
        #expect(order.admit("b0", sessions: [2]) == "b0", "other sessions are not held up")
        #expect(order.admit("a1", sessions: [1]) == nil)
        #expect(order.admit("a2", sessions: [1]) == nil)
        #expect(order.waiting(for: 1) == 2)
        #expect(order.finish(sessions: [1]) == ["a1"])
        #expect(order.finish(sessions: [1]) == ["a2"])
        #expect(order.finish(sessions: [1]) == [])
        #expect(order.waiting(for: 1) == 0)
        #expect(order.admit("a3", sessions: [1]) == "a3")
    }

    @Test("a batch runs when it is first in line for all its sessions, and holds them all")
    func batches() {
        var order = SessionOrder<String>()
        #expect(order.admit("a0", sessions: [1]) == "a0")
        #expect(order.admit("batch", sessions: [1, 2]) == nil, "session 1 is busy")
        #expect(order.admit("b0", sessions: [2]) == nil, "the batch is ahead of it on session 2")
        #expect(order.admit("c0", sessions: [3]) == "c0")
        #expect(order.finish(sessions: [1]) == ["batch"])
        #expect(order.admit("a1", sessions: [1]) == nil, "the batch holds session 1")
        let released = order.finish(sessions: [1, 2])
        #expect(Set(released) == ["a1", "b0"])
    }

    @Test("draining hands back every held request")
    func drain() {
        var order = SessionOrder<Int>()
        _ = order.admit(0, sessions: [7])
        _ = order.admit(1, sessions: [7])
        _ = order.admit(2, sessions: [7, 8])
        #expect(Set(order.drain()) == [1, 2])
        #expect(order.finish(sessions: [7]) == [])
        #expect(order.admit(3, sessions: [7]) == 3)
    }
}
