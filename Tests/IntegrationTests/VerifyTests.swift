import Decoding
import Foundation
import LogitdClient
import LogitdProtocol
import Testing

/// VERIFY from the Swift client, over a real daemon.
@Suite("Speculative verification from the Swift client")
struct VerifyClientTests {
    static let vocab = 16

    /// A toy target model: logits from a hash of the prefix.
    static func target(_ prefix: [Int]) -> [Float] { hashedLogits(prefix, vocab: vocab, eos: -1) }

    @Test("greedy VERIFY returns plain greedy's tokens; a seeded one repeats on a second daemon; beam is refused")
    func verify() throws {
        let daemon = try DaemonProcess()
        let other = try DaemonProcess()
        let client = try LogitdClient(endpoint: daemon.endpoint)
        let otherClient = try LogitdClient(endpoint: other.endpoint)
        defer { client.close(); otherClient.close() }
        var parameters = SessionParameters(strategy: .greedy, vocabSize: Self.vocab)
        parameters.maxNewTokens = 12
        parameters.processors.repetitionPenalty = 1.3
        let plain = try client.open(parameters)
        while !plain.isDone { try plain.step(Self.target(plain.sequences[0])) }
        let verified = try client.open(parameters)
        var round = 0
        while !verified.isDone {
            let prefix = verified.sequences[0]
            // Right for `round % 4` tokens, then wrong.
            let right = Array(plain.sequences[0].dropFirst(prefix.count).prefix(3))
            let draft = (0..<3).map { $0 < round % 4 && $0 < right.count ? right[$0] : ((right.indices.contains($0) ? right[$0] : 0) + 1) % Self.vocab }
            let rows = (0...3).flatMap { Self.target(prefix + draft.prefix($0)) }
            let event = try verified.verify(draftTokens: draft, targetRows: rows)
            #expect(event.tokens.allSatisfy { $0.sequence == 0 } && event.accepted <= 3)
            round += 1
        }
        #expect(verified.sequences == plain.sequences)
        #expect(verified.result?.sequences.map(\.tokens) == plain.result?.sequences.map(\.tokens))

        var sampling = SessionParameters(strategy: .sample, vocabSize: Self.vocab)
        sampling.seed = 17
        sampling.maxNewTokens = 10
        let runs = try [client, otherClient].map { (client) throws -> [[Int]] in
            let session = try client.open(sampling)
            while !session.isDone {
                let prefix = session.sequences[0]
                let draft = [(prefix.count * 5) % Self.vocab, 3]
                let q = [Float](repeating: 1 / Float(Self.vocab), count: 2 * Self.vocab)
                let rows = (0...2).flatMap { Self.target(prefix + draft.prefix($0)) }
                try session.verify(draftTokens: draft, targetRows: rows, draftProbabilities: q)
            }
            return session.sequences
        }
        #expect(runs[0] == runs[1])

        var beam = SessionParameters(strategy: .beam, vocabSize: Self.vocab)
        beam.beamWidth = 2
        let refused = #expect(throws: LogitdClientError.self) {
            try client.open(beam).verify(draftTokens: [1], targetRows: Self.target([]) + Self.target([1]))
        }
        #expect("\(String(describing: refused))".contains("beam search"), "\(String(describing: refused))")
    }
}
