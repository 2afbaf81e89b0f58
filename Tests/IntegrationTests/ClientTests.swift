import Decoding
import Foundation
import LogitdClient
import LogitdProtocol
import TestSupport
import Testing
import ZeroMQ

@Suite("The Swift client against the real daemon", .serialized)
struct ClientTests {
    @Test("refusals arrive as typed server errors, and the same client carries on")
    func typedErrors() throws {
        let daemon = try DaemonProcess()
        let client = try LogitdClient(endpoint: daemon.endpoint)
        let cases: [([Float], Int, ErrorCode, String)] = [
            ([0, 1, .nan, 3], 4, .invalidLogits, "row 0: logit 2 is NaN"),
            ([0, 1, 2, 3, 0, .infinity, 0, 0], 4, .invalidLogits, "row 1: logit 1 is +inf"),
            ([-.infinity, -.infinity], 2, .allMasked, "row 0: every logit in the row is -inf"),
        ]
        for (logits, vocab, code, message) in cases {
            let error = #expect(throws: LogitdClientError.self) { try client.decode(logits, vocab: vocab) }
            guard case .server(let refusal) = error else {
                Issue.record("expected a server error, got \(String(describing: error))")
                continue
            }
            #expect(refusal == ProtocolError(code, message))
        }
        let unknown = #expect(throws: LogitdClientError.self) {
            _ = try client.request(.decode, frames: [
                try Message(RowsDescriptor(dtype: .float32, rows: 1, vocab: 2).encoded),
                try Message(Array(#"{"strategy":"beam"}"#.utf8)),
                try Message([UInt8](repeating: 0, count: 8)),
            ], expecting: .tokens, bodyFrames: 1)
        }
        guard case .server(let refusal) = unknown else { Issue.record("expected a server error"); return }
        #expect(refusal.code == .unknownStrategy)
        #expect(try client.decode([0, 2, 1], vocab: 3).map(\.token) == [1])
    }

    @Test("PROBS: whole rows and top-n, at a temperature, as the engine computes them")
    func probabilities() throws {
        let daemon = try DaemonProcess()
        let client = try LogitdClient(endpoint: daemon.endpoint)
        let logits: [Float] = [2.5, -1.0, 0.3, 0.1, 0.2, 0.15]
        let whole = try client.probabilities(logits, vocab: 3, temperature: 0.5)
        let expected = try [0, 3].map { start in try Softmax.probabilities(of: logits[start..<(start + 3)].map { $0 / 0.5 }) }
        for (row, reference) in zip(whole.rows, expected) {
            for (p, q) in zip(row, reference) { #expect(abs(p - q) <= 1e-6) }
        }
        let top = try client.probabilities(logits, vocab: 3, topN: 1).top
        #expect(top.map { $0.map(\.token) } == [[0], [1]])
    }

    @Test("no daemon: a request times out with .timeout, after the client's timeout")
    func timeout() throws {
        let client = try LogitdClient(endpoint: TestEndpoint.ipc.make(), timeout: .milliseconds(150))
        let started = ContinuousClock.now
        let error = #expect(throws: LogitdClientError.self) { try client.hello() }
        guard case .timeout(let limit) = error else { Issue.record("expected .timeout, got \(String(describing: error))"); return }
        #expect(limit == .milliseconds(150))
        #expect(ContinuousClock.now - started >= .milliseconds(150))
    }

    @Test("a late reply to a request that timed out is not taken for the next one's")
    func lateRepliesAreSkipped() throws {
        let daemon = try DaemonProcess(workers: 1)
        let client = try LogitdClient(endpoint: daemon.endpoint, timeout: .milliseconds(1))
        let error = #expect(throws: LogitdClientError.self) { try client.decode(rows(count: 64, vocab: 128_256, seed: 2), vocab: 128_256) }
        guard case .timeout = error else { Issue.record("expected .timeout, got \(String(describing: error))"); return }
        // The 64-token reply arrives later; the next request must get its own one-token reply.
        client.timeout = .seconds(10)
        #expect(try client.decode([1, 5], vocab: 2).map(\.token) == [1])
    }

    @Test("a client connected to two daemons gets every answer right")
    func severalEndpoints() throws {
        let first = try DaemonProcess(workers: 1)
        let second = try DaemonProcess(workers: 1)
        let client = try LogitdClient(endpoints: [first.endpoint, second.endpoint])
        for index in 0..<40 {
            var row = [Float](repeating: 0, count: 50)
            row[index] = 1
            #expect(try client.decode(row, vocab: 50).map(\.token) == [index])
        }
        #expect(first.stop() == 0 && second.stop() == 0)
    }
}
