import Decoding
import Foundation
import LogitdClient
import LogitdProtocol
import Testing

/// Allowed-token masks from the Swift client, over a real daemon.
@Suite("Masks from the Swift client")
struct MaskClientTests {
    static let vocab = 70 // three words per mask row, the last one partial

    static func words(allowing tokens: Set<Int>) -> [UInt32] {
        var words = [UInt32](repeating: 0, count: (vocab + 31) / 32)
        for token in tokens { words[token / 32] |= 1 << UInt32(token % 32) }
        return words
    }

    @Test("DECODE and STEP choose only allowed tokens, with the constrained log-probability")
    func allowedOnly() throws {
        let daemon = try DaemonProcess()
        let client = try LogitdClient(endpoint: daemon.endpoint)
        defer { client.close() }
        let logits = (0..<(2 * Self.vocab)).map { Float(($0 * 37) % 23) / 4 }
        let allowed: Set<Int> = [5, 33, 64]
        let mask = Self.words(allowing: allowed)
        let choices = try logits.withUnsafeBytes { try client.decode(bytes: $0, dtype: .float32, vocab: Self.vocab, mask: mask) }
        for (row, choice) in choices.enumerated() {
            let values = allowed.sorted().map { Double(logits[row * Self.vocab + $0]) }
            let best = allowed.sorted().max { logits[row * Self.vocab + $0] < logits[row * Self.vocab + $1] || (logits[row * Self.vocab + $0] == logits[row * Self.vocab + $1] && $0 > $1) }!
            let top = values.max()!
            let reference = Double(logits[row * Self.vocab + best]) - (top + log(values.reduce(0) { $0 + exp($1 - top) }))
            #expect(choice.token == best)
            #expect(abs(Double(choice.logprob) - reference) < 1e-5)
        }
        var parameters = SessionParameters(strategy: .sample, vocabSize: Self.vocab)
        parameters.seed = 11
        parameters.maxNewTokens = 3
        let session = try client.open(parameters)
        while !session.isDone {
            let event = try session.step(Array(logits.prefix(Self.vocab)), mask: mask)
            #expect(event.tokens.allSatisfy { allowed.contains($0.token) })
        }
    }

    @Test("a mask that allows nothing is ALL_MASKED, and a wrong size BAD_SHAPE")
    func refused() throws {
        let daemon = try DaemonProcess()
        let client = try LogitdClient(endpoint: daemon.endpoint)
        defer { client.close() }
        let logits = [Float](repeating: 0, count: Self.vocab)
        let nothing = #expect(throws: LogitdClientError.self) { try logits.withUnsafeBytes { try client.decode(bytes: $0, dtype: .float32, vocab: Self.vocab, mask: Self.words(allowing: [])) } }
        #expect("\(String(describing: nothing))".contains("row 0: every logit in the row is -inf"), "\(String(describing: nothing))")
        let wrong = #expect(throws: LogitdClientError.self) { try logits.withUnsafeBytes { try client.decode(bytes: $0, dtype: .float32, vocab: Self.vocab, mask: [1, 2]) } }
        #expect("\(String(describing: wrong))".contains("the mask frame has 8 bytes"), "\(String(describing: wrong))")
    }

    @Test("BATCH STEP masks each entry's rows (an entry without a mask allows every token), and PROBS its rows")
    func batch() throws {
        let daemon = try DaemonProcess()
        let client = try LogitdClient(endpoint: daemon.endpoint)
        defer { client.close() }
        var parameters = SessionParameters(strategy: .greedy, vocabSize: Self.vocab)
        parameters.maxNewTokens = 2
        let masked = try client.open(parameters)
        let plain = try client.open(parameters)
        let logits = (0..<Self.vocab).map { Float(($0 * 37) % 23) / 4 }
        let best = logits.indices.max { logits[$0] < logits[$1] || (logits[$0] == logits[$1] && $0 > $1) }!
        let allowed: Set<Int> = [2, 40, 69]
        let results = try client.batchStep([(masked, logits), (plain, logits)], masks: [Self.words(allowing: allowed), nil])
        let events = try results.map { try $0.get() }
        #expect(events[0].tokens.map(\.token) == [allowed.max { logits[$0] < logits[$1] }!])
        #expect(events[1].tokens.map(\.token) == [best])
        let probabilities = try client.probabilities(logits, vocab: Self.vocab, mask: Self.words(allowing: allowed)).rows[0]
        let top = allowed.map { Double(logits[$0]) }.max()!
        let total = allowed.reduce(0.0) { $0 + exp(Double(logits[$1]) - top) }
        for token in 0..<Self.vocab {
            let expected = allowed.contains(token) ? exp(Double(logits[token]) - top) / total : 0
            #expect(abs(Double(probabilities[token]) - expected) < 1e-6, "token \(token)")
        }
    }
}
