#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Decoding

/// A session's state, for OPEN to continue it: the generated tokens of every sequence (greedy /
/// sample), or the live beams and kept hypotheses (beam).
public enum SessionHistory: Equatable, Sendable, Encodable {
    /// `mirostatMu`: each sequence's μ, for sessions with mirostat (the last STEP reply's).
    case sequences(tokens: [[Int]], logprobSums: [Double], mirostatMu: [Float]? = nil)
    case beam(beams: [Beam], finished: [Hypothesis])

    /// The step the recovered session continues with.
    public var step: Int {
        switch self {
        case .sequences(let tokens, _, _): tokens.map(\.count).max() ?? 0
        case .beam(let beams, let finished): beams.first?.tokens.count ?? finished.map(\.tokens.count).max() ?? 0
        }
    }

    enum Key: String, CodingKey {
        case sequences, logprobSums = "logprob_sums", mirostatMu = "mirostat_mu", beams, finished
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        switch self {
        case .sequences(let tokens, let sums, let mu):
            try container.encode(tokens, forKey: .sequences)
            try container.encode(sums, forKey: .logprobSums)
            try container.encodeIfPresent(mu, forKey: .mirostatMu)
        case .beam(let beams, let finished):
            try container.encode(beams.map { BeamState(tokens: $0.tokens, score: $0.score) }, forKey: .beams)
            try container.encode(finished.map { FinishedSequence(tokens: $0.tokens, finishReason: $0.finishReason, logprobSum: $0.logprobSum, score: $0.score) }, forKey: .finished)
        }
    }

    private struct BeamState: Encodable {
        let tokens: [Int]
        let score: Double
    }

    static func parse(_ reader: ParameterReader, strategy: Strategy) throws(ProtocolError) -> SessionHistory {
        if strategy == .beam {
            try reader.refuseUnknownKeys(known: ["beams", "finished"])
            var beams: [Beam] = []
            if case .array(let items)? = reader.object["beams"] {
                for item in items {
                    guard case .object(let object) = item else { throw ProtocolError(.badParameters, "\"history.beams\" must hold objects") }
                    let beam = ParameterReader(object: object)
                    guard let tokens = try beam.ints("tokens"), let score = try beam.double("score") else {
                        throw ProtocolError(.badParameters, "each of \"history.beams\" needs \"tokens\" and \"score\"")
                    }
                    beams.append(Beam(tokens: tokens, score: score))
                }
            }
            var finished: [Hypothesis] = []
            if case .array(let items)? = reader.object["finished"] {
                for item in items {
                    guard case .object(let object) = item else { throw ProtocolError(.badParameters, "\"history.finished\" must hold objects") }
                    let hypothesis = ParameterReader(object: object)
                    guard let tokens = try hypothesis.ints("tokens"), let score = try hypothesis.double("score"),
                          let sum = try hypothesis.double("logprob_sum"), let reasonName = try hypothesis.string("finish_reason"),
                          let reason = FinishReason(rawValue: reasonName) else {
                        throw ProtocolError(.badParameters, "each of \"history.finished\" needs \"tokens\", \"score\", \"logprob_sum\" and \"finish_reason\"")
                    }
                    finished.append(Hypothesis(tokens: tokens, score: score, logprobSum: sum, finishReason: reason))
                }
            }
            return .beam(beams: beams, finished: finished)
        }
        try reader.refuseUnknownKeys(known: ["sequences", "logprob_sums", "mirostat_mu"])
        guard let tokens = try reader.intArrays("sequences") else {
            throw ProtocolError(.badParameters, "\"history.sequences\" is required: the generated tokens of every sequence")
        }
        var sums = [Double](repeating: 0, count: tokens.count)
        if case .array(let values)? = reader.object["logprob_sums"] {
            sums = []
            for value in values {
                guard let number = value.double else { throw ProtocolError(.badParameters, "\"history.logprob_sums\" must hold numbers") }
                sums.append(number)
            }
        }
        var mu: [Float]?
        if case .array(let values)? = reader.object["mirostat_mu"] {
            mu = []
            for value in values {
                guard let number = value.double, number.isFinite else { throw ProtocolError(.badParameters, "\"history.mirostat_mu\" must hold finite numbers") }
                mu?.append(Float(number))
            }
        }
        return .sequences(tokens: tokens, logprobSums: sums, mirostatMu: mu)
    }

    func validate(_ parameters: SessionParameters) throws(ProtocolError) {
        func refuse(_ message: String) -> ProtocolError { ProtocolError(.badParameters, "\"history\": \(message)") }
        let vocab = parameters.vocabSize
        switch self {
        case .sequences(let tokens, let sums, let mu):
            if let mu, mu.count != tokens.count { throw refuse("\"mirostat_mu\" needs one μ per sequence") }
            if tokens.count != parameters.n { throw refuse("has \(tokens.count) sequences; the session has n = \(parameters.n)") }
            if sums.count != tokens.count { throw refuse("\"logprob_sums\" needs one sum per sequence") }
            // Sequences may differ in length (VERIFY advances one sequence at a time); each
            // continues from its own tokens.
            for sequence in tokens where sequence.contains(where: { $0 < 0 || $0 >= vocab }) {
                throw refuse("token ids must be below vocab_size")
            }
        case .beam(let beams, let finished):
            if beams.count > parameters.beamWidth || finished.count > parameters.beamWidth {
                throw refuse("holds more beams or hypotheses than beam_width")
            }
            if beams.isEmpty { throw refuse("a beam search with no live beam is finished; nothing to continue") }
            if Set(beams.map(\.tokens.count)).count > 1 { throw refuse("all live beams must have the same length") }
            if (beams.flatMap(\.tokens) + finished.flatMap(\.tokens)).contains(where: { $0 < 0 || $0 >= vocab }) {
                throw refuse("token ids must be below vocab_size")
            }
        }
    }
}
