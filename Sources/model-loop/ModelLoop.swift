import ArgumentParser
import Foundation
import LogitdClient
import LogitdProtocol

/// A complete model loop against logitd: a toy model produces logits from the prefix, logitd picks
/// the tokens. Clients/python/examples/model_loop.py does the same with the same toy model, so the
/// two must print the same thing.
@main
struct ModelLoop: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "model-loop", abstract: "A toy model decoded by logitd, step by step.")

    @Option(help: "The daemon's endpoint.")
    var endpoint = "tcp://127.0.0.1:5555"

    @Option(help: "greedy, sample or beam.")
    var strategy = "greedy"

    @Option(help: "Beam width.")
    var beamWidth = 4

    @Option(help: "Random seed.")
    var seed: UInt64 = 1

    @Option(help: "Max new tokens.")
    var steps = 16

    static let vocab = 64
    static let eos = 0

    /// Logits from an integer hash of the prefix; the Python example computes the same floats.
    static func toyLogits(_ prefix: [Int]) -> [Float] {
        var state: UInt64 = 1_469_598_103_934_665_603
        for token in prefix { state = (state ^ UInt64(token + 1)) &* 1_099_511_628_211 }
        return (0..<vocab).map { index in
            let mixed = (state ^ (UInt64(index) &* 0x9E37_79B9_7F4A_7C15)) &* 0xBF58_476D_1CE4_E5B9
            var value = Double(mixed >> 40) / 16_777_216 * 8 - 4
            if index == eos { value += 0.5 * Double(prefix.count) - 3 }
            return Float(value)
        }
    }

    func run() throws {
        guard let kind = Strategy(rawValue: strategy) else { throw ValidationError("--strategy must be greedy, sample or beam") }
        var parameters = SessionParameters(strategy: kind, vocabSize: Self.vocab)
        parameters.maxNewTokens = steps
        parameters.processors.eosTokens = [Self.eos]
        parameters.seed = seed
        if kind == .sample {
            parameters.processors.temperature = 0.9
            parameters.processors.topP = 0.95
            parameters.n = 2
        }
        if kind == .beam {
            parameters.beamWidth = beamWidth
            parameters.numReturn = min(3, beamWidth)
        }
        let session = try LogitdClient(endpoint: endpoint).open(parameters)
        _ = try session.run { session in
            kind == .beam
                ? session.livePrefixes.flatMap(Self.toyLogits)
                : session.liveSequences.flatMap { Self.toyLogits(session.sequences[$0]) }
        }
        for (index, sequence) in (session.result?.sequences ?? []).enumerated() {
            let tokens = sequence.tokens.map(String.init).joined(separator: " ")
            if kind == .beam {
                print("hypothesis \(index) score \(String(format: "%.6f", sequence.score ?? 0)): \(tokens)")
            } else {
                print("sequence \(index) (\(sequence.finishReason ?? "None")): \(tokens)")
            }
        }
    }
}
