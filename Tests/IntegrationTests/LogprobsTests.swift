import Decoding
import Foundation
import LogitdClient
import LogitdProtocol
import Testing

/// Reported log-probabilities from the Swift client, over a real daemon.
@Suite("Reported log-probabilities from the Swift client")
struct LogprobsClientTests {
    static let vocab = 64

    static func logSoftmax(_ x: [Double]) -> [Double] {
        let m = x.max()!
        let logTotal = log(x.reduce(0) { $0 + exp($1 - m) })
        return x.map { $0 - m - logTotal }
    }

    @Test("raw-mode records, ranks, named tokens and the support in STEP and BATCH STEP replies")
    func details() throws {
        let daemon = try DaemonProcess()
        let client = try LogitdClient(endpoint: daemon.endpoint)
        defer { client.close() }
        var parameters = SessionParameters(strategy: .sample, vocabSize: Self.vocab)
        parameters.seed = 5
        parameters.processors.topK = 8
        parameters.processors.temperature = 0.6
        parameters.maxNewTokens = 4
        parameters.logprobsMode = .raw
        parameters.returnRank = true
        parameters.logprobTokenIDs = [0, 63]
        parameters.returnSupport = .mask
        let row = (0..<Self.vocab).map { Float(sin(Double($0) * 1.7) * 3) }
        let raw = Self.logSoftmax(row.map(Double.init))
        let topK = Set((0..<Self.vocab).sorted { row[$0] > row[$1] }.prefix(8))

        let session = try client.open(parameters)
        let event = try session.step(row)
        let token = event.tokens[0].token
        #expect(topK.contains(token))
        #expect(abs(Double(event.tokens[0].logprob) - raw[token]) < 1e-5)
        #expect(event.details.count == 1)
        #expect(event.details[0].rank == row.filter { $0 >= row[token] }.count)
        #expect(zip(event.details[0].tokenLogprobs, [raw[0], raw[63]]).allSatisfy { abs(Double($0) - $1) < 1e-5 })
        #expect(event.details[0].support == topK.sorted())

        var plain = SessionParameters(strategy: .greedy, vocabSize: Self.vocab)
        plain.maxNewTokens = 4
        let results = try client.batchStep([(try client.open(plain), row), (try client.open(parameters), row), (try client.open(plain), row)])
        let events = try results.map { try $0.get() }
        #expect(events.map { $0.details.count } == [0, 1, 0])
        #expect(events[1].details == event.details && events[1].tokens == event.tokens)
        #expect(events[0].tokens[0].token == (0..<Self.vocab).max { row[$0] < row[$1] })
    }

    @Test("SCORE under a repetition penalty and CLASSIFY, against Float64")
    func scoreAndClassify() throws {
        let daemon = try DaemonProcess()
        let client = try LogitdClient(endpoint: daemon.endpoint)
        defer { client.close() }
        let rows = (0..<3).flatMap { row in (0..<Self.vocab).map { Float(cos(Double($0 * (row + 2)) * 0.9) * 2) } }
        let tokens = [4, 4, 9]
        var parameters = ScoreParameters()
        parameters.processors.repetitionPenalty = 2
        parameters.promptTokenIDs = [9]
        let scores = try client.score(rows, vocab: Self.vocab, tokens: tokens, parameters: parameters)
        #expect(scores.count == 3)
        for (index, token) in tokens.enumerated() {
            var row = rows[(index * Self.vocab)..<((index + 1) * Self.vocab)].map(Double.init)
            let raw = Self.logSoftmax(row)
            for seen in Set([9] + tokens.prefix(index)) { row[seen] = row[seen] < 0 ? row[seen] * 2 : row[seen] / 2 }
            let processed = Self.logSoftmax(row)
            #expect(abs(Double(scores[index].logprob) - processed[token]) < 1e-5)
            #expect(abs(Double(scores[index].rawLogprob) - raw[token]) < 1e-5)
            let entropy = -processed.reduce(0) { $0 + exp($1) * $1 }
            #expect(abs(Double(scores[index].entropy) - entropy) < 1e-4)
        }
        let classes = try client.classify(rows, vocab: Self.vocab, tokens: [1, 2], temperature: 0.5)
        for (index, result) in classes.enumerated() {
            let a = Double(rows[index * Self.vocab + 1]) / 0.5, b = Double(rows[index * Self.vocab + 2]) / 0.5
            #expect(abs(Double(result.probabilities[0]) - 1 / (1 + exp(b - a))) < 1e-6)
        }
    }

    @Test("the thinking budget's forced tokens, a mirostat session's μ and the samplers' options from the Swift client")
    func thinkingAndSamplers() throws {
        let daemon = try DaemonProcess()
        let client = try LogitdClient(endpoint: daemon.endpoint)
        defer { client.close() }
        var parameters = SessionParameters(strategy: .sample, vocabSize: Self.vocab)
        parameters.seed = 3
        parameters.maxNewTokens = 5
        parameters.promptTokenIDs = [60]
        parameters.thinking = ThinkingBudget(start: [60], end: [61, 62], budget: 2)
        parameters.processors.dryMultiplier = 0.5
        parameters.processors.topNSigma = 2
        parameters.processors.xtcProbability = 0.5
        parameters.processors.mirostatTau = 3
        let row = (0..<Self.vocab).map { Float(sin(Double($0) * 0.7)) }
        let session = try client.open(parameters)
        var forced: [Bool] = []
        while !session.isDone { forced += try session.step(row).tokens.map(\.forced) }
        #expect(forced == [false, false, true, true, false])
        #expect(Array(session.sequences[0][2...3]) == [61, 62])
        #expect(session.mirostatMu?.count == 1)
    }

    @Test("sparse rows with their log-sum-exp: exact raw log-probabilities from the Swift client")
    func sparseWithLogSumExp() throws {
        let daemon = try DaemonProcess()
        let client = try LogitdClient(endpoint: daemon.endpoint)
        defer { client.close() }
        let row = (0..<Self.vocab).map { Double(sin(Double($0) * 2.3) * 3) }
        let full = Self.logSoftmax(row)
        let top = (0..<Self.vocab).sorted { row[$0] > row[$1] }.prefix(8)
        let candidates = top.map { Candidate(token: $0, logit: Float(row[$0])) }
        let maximum = row.max()!
        let lse = Float(maximum + log(row.reduce(0) { $0 + exp($1 - maximum) }))
        var parameters = SessionParameters(strategy: .greedy, vocabSize: Self.vocab)
        parameters.logprobsMode = .raw
        parameters.maxNewTokens = 2
        let exact = try client.open(parameters).stepSparse([candidates], logNormalisers: [lse])
        let renormalised = try client.open(parameters).stepSparse([candidates])
        let token = exact.tokens[0].token
        #expect(token == top.first && renormalised.tokens[0].token == token)
        #expect(abs(Double(exact.tokens[0].logprob) - full[token]) < 1e-5)
        #expect(renormalised.tokens[0].logprob > exact.tokens[0].logprob)
    }
}
