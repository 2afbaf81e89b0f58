import ArgumentParser
import Decoding
import Foundation
import LogitdClient
import LogitdProtocol

/// `logitd-bench speculative`: tokens per second through the real daemon, VERIFY with k draft
/// tokens beside plain STEP, on the same toy pair in one run. Rows come from a pool made before
/// timing, so only the daemon's side is measured (request to reply); the target row at each
/// position has one boosted token, which the draft proposes with no probabilities (a point mass),
/// so each draft token is accepted with the target's probability of it: the stated rate.
struct SpeculativeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "speculative", abstract: "VERIFY beside STEP through the daemon: tokens per second.")

    @Option(help: "Vocabulary size.")
    var vocab = 32_000

    @Option(help: "Draft tokens per VERIFY.")
    var k = 4

    @Option(help: "The target's probability of the draft token (the acceptance rate).")
    var acceptance = 0.7

    @Option(help: "Tokens per session.")
    var tokens = 64

    @Option(help: "Sessions per measurement; three alternating rounds each.")
    var sessions = 40

    func run() throws {
        let daemon = try BenchDaemon(workers: 1)
        defer { daemon.stop() }
        let client = try daemon.client(timeout: .seconds(30))
        defer { client.close() }

        // Rows: normal(0, 1) logits, one token per row raised so that its probability is `acceptance`.
        var generator = SystemRandomNumberGenerator()
        let pool = (0..<16).map { index -> (row: [Float], token: Int) in
            var row = (0..<vocab).map { _ in Float.random(in: -1.7...1.7, using: &generator) }
            let token = (index * 7919) % vocab
            let others = row.enumerated().reduce(0.0) { $0 + ($1.offset == token ? 0 : Double.exp(Double($1.element))) }
            row[token] = Float(Double.log(acceptance / (1 - acceptance) * others))
            return (row, token)
        }
        var parameters = SessionParameters(strategy: .sample, vocabSize: vocab)
        parameters.maxNewTokens = tokens

        func plainRound() throws -> (tokens: Int, seconds: Double) {
            var elapsed = Duration.zero
            for index in 0..<sessions {
                parameters.seed = UInt64(index + 1)
                let session = try client.open(parameters)
                while !session.isDone {
                    let row = pool[session.sequences[0].count % pool.count].row
                    let start = ContinuousClock.now
                    try session.step(row)
                    elapsed += ContinuousClock.now - start
                }
            }
            return (sessions * tokens, seconds(elapsed))
        }
        func verifyRound() throws -> (tokens: Int, seconds: Double, accepted: Int, tried: Int, requests: Int) {
            var elapsed = Duration.zero
            var accepted = 0
            var tried = 0
            var requests = 0
            for index in 0..<sessions {
                parameters.seed = UInt64(index + 1)
                let session = try client.open(parameters)
                while !session.isDone {
                    let at = session.sequences[0].count
                    let entries = (0...k).map { pool[(at + $0) % pool.count] }
                    let draft = entries.prefix(k).map(\.token)
                    let rows = entries.flatMap(\.row)
                    let start = ContinuousClock.now
                    let event = try session.verify(draftTokens: draft, targetRows: rows)
                    elapsed += ContinuousClock.now - start
                    accepted += event.accepted
                    requests += 1
                    // Positions tried: the accepted ones and the first rejected one, unless the
                    // token budget ended the run first.
                    tried += event.accepted + (event.accepted < k && event.tokens.count > event.accepted && event.tokens.last?.finishReason == nil ? 1 : 0)
                }
            }
            return (sessions * tokens, seconds(elapsed), accepted, tried, requests)
        }
        var plain: [Double] = []
        var verified: [Double] = []
        var rates: [Double] = []
        var perRequest: [Double] = []
        for _ in 0..<3 {
            let p = try plainRound()
            plain.append(Double(p.tokens) / p.seconds)
            let v = try verifyRound()
            verified.append(Double(v.tokens) / v.seconds)
            rates.append(Double(v.accepted) / Double(v.tried))
            perRequest.append(Double(v.tokens) / Double(v.requests))
        }
        let median = { (values: [Double]) in values.sorted()[values.count / 2] }
        print("V = \(vocab) f32, 1 worker, ipc, kernels \(Kernels.active); k = \(k); acceptance per position \(String(format: "%.3f", median(rates))) (the target's p of each draft token: \(acceptance))")
        print(String(format: "STEP:   %8.0f tokens/s through the daemon, 1 token per request (per target forward pass)", median(plain)))
        print(String(format: "VERIFY: %8.0f tokens/s through the daemon, %.2f tokens per request (%.2f× STEP's tokens/s)", median(verified), median(perRequest), median(verified) / median(plain)))
    }

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
