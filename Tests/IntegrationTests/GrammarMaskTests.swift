import Foundation
import LogitdClient
import LogitdProtocol
import Testing

/// llguidance's masks, served by Clients/python/examples/grammar_masks.py over stdin and stdout (the
/// tokenizer of examples/json_output.py), for one grammar.
final class GrammarMasks {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private var buffered = Data()
    private(set) var vocab = 0
    private(set) var eos = 0

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Clients/python/examples/grammar_masks.py")

    init(schema: String) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [ProcessInfo.processInfo.environment["PYTHON"] ?? "python3", Self.script.path, "--schema", schema]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let hello = try Self.object(readLine())
        vocab = hello["vocab"] as! Int
        eos = hello["eos"] as! Int
    }

    deinit {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }

    private func readLine() throws -> Data {
        while true {
            if let newline = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                defer { buffered.removeSubrange(...newline) }
                return buffered.subdata(in: buffered.startIndex..<newline)
            }
            let more = output.fileHandleForReading.availableData
            guard !more.isEmpty else { throw GrammarMaskError.serviceEnded }
            buffered.append(more)
        }
    }

    private static func object(_ line: Data) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: line) as? [String: Any] else { throw GrammarMaskError.badReply(line) }
        if let error = object["error"] as? String { throw GrammarMaskError.refused(error) }
        return object
    }

    private func ask(_ request: [String: Any]) throws -> [String: Any] {
        try input.fileHandleForWriting.write(contentsOf: JSONSerialization.data(withJSONObject: request) + Data("\n".utf8))
        return try Self.object(readLine())
    }

    /// One mask row per prefix: ceil(vocab / 32) words each, concatenated.
    func masks(_ prefixes: [[Int]]) throws -> [UInt32] {
        (try ask(["prefixes": prefixes])["masks"] as! [[Int]]).flatMap { $0.map(UInt32.init) }
    }

    /// Whether `tokens` is a whole sentence of the grammar, and its text (EOS removed).
    func check(_ tokens: [Int]) throws -> (complete: Bool, text: String) {
        let reply = try ask(["check": tokens])
        return (reply["complete"] as! Bool, reply["text"] as! String)
    }
}

enum GrammarMaskError: Error {
    case serviceEnded
    case badReply(Data)
    case refused(String)
}

/// A toy model: logits from a seeded hash of the prefix (FNV-1a, then SplitMix64 per token).
func hashedLogits(_ prefix: [Int], vocab: Int, eos: Int) -> [Float] {
    var state: UInt64 = 1_469_598_103_934_665_603
    for token in prefix { state = (state ^ UInt64(token + 1)) &* 1_099_511_628_211 }
    return (0..<vocab).map { index in
        var z = state &+ UInt64(index + 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        let value = Float(z >> 40) / Float(1 << 24) * 8 - 4
        return index == eos ? value + 0.25 * Float(prefix.count) - 4 : value
    }
}

@Suite("Structured output from the Swift client, masks by llguidance")
struct GrammarMaskTests {
    static let schema = #"{"type": "object", "properties": {"id": {"type": "integer", "minimum": 10, "maximum": 99}, "# +
        #""color": {"enum": ["red", "green", "blue"]}, "tags": {"type": "array", "items": {"enum": ["cat", "dog"]}, "maxItems": 2}}, "# +
        #""required": ["id", "color", "tags"], "additionalProperties": false}"#

    /// Runs one session to its end, masked by `grammar` when given; returns its result's token lists.
    static func run(_ client: LogitdClient, _ grammar: GrammarMasks, _ parameters: SessionParameters, masked: Bool) throws -> [[Int]] {
        let session = try client.open(parameters)
        while !session.isDone {
            let prefixes = parameters.strategy == .beam ? session.livePrefixes : session.liveSequences.map { session.sequences[$0] }
            let logits = prefixes.flatMap { hashedLogits($0, vocab: grammar.vocab, eos: grammar.eos) }
            try session.step(logits, mask: masked ? try grammar.masks(prefixes) : nil)
        }
        return session.result!.sequences.map(\.tokens)
    }

    static func parameters(_ strategy: Strategy, vocab: Int, eos: Int, seed: UInt64 = 1) -> SessionParameters {
        var parameters = SessionParameters(strategy: strategy, vocabSize: vocab)
        parameters.processors.eosTokens = [eos]
        parameters.maxNewTokens = 48
        parameters.seed = seed
        if strategy == .sample { parameters.n = 2; parameters.processors.temperature = 0.8 }
        if strategy == .beam { parameters.beamWidth = 3; parameters.numReturn = 2 }
        return parameters
    }

    /// The checks a JSON-schema validator makes for `schema`, by hand.
    static func valid(_ text: String) -> Bool {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              Set(object.keys) == ["id", "color", "tags"],
              let id = object["id"] as? Int, (10...99).contains(id),
              let color = object["color"] as? String, ["red", "green", "blue"].contains(color),
              let tags = object["tags"] as? [String], tags.count <= 2, tags.allSatisfy({ ["cat", "dog"].contains($0) })
        else { return false }
        return true
    }

    @Test("greedy, sampling over seeds and beam search write valid JSON under llguidance's masks; unmasked, none")
    func jsonUnderMasks() throws {
        let daemon = try DaemonProcess()
        let client = try LogitdClient(endpoint: daemon.endpoint)
        defer { client.close() }
        let grammar = try GrammarMasks(schema: Self.schema)
        var runs: [SessionParameters] = [Self.parameters(.greedy, vocab: grammar.vocab, eos: grammar.eos)]
        runs += (1...6).map { Self.parameters(.sample, vocab: grammar.vocab, eos: grammar.eos, seed: $0) }
        runs.append(Self.parameters(.beam, vocab: grammar.vocab, eos: grammar.eos))
        var texts: [String] = []
        for parameters in runs {
            for tokens in try Self.run(client, grammar, parameters, masked: true) {
                let (complete, text) = try grammar.check(tokens)
                #expect(complete && tokens.last == grammar.eos, "\(parameters.strategy): \(text)")
                #expect(Self.valid(text), "\(parameters.strategy): \(text)")
                texts.append(text)
            }
        }
        #expect(texts.count == 1 + 12 + 2)
        #expect(Set(texts).count > 1)
        for parameters in runs {
            for tokens in try Self.run(client, grammar, parameters, masked: false) {
                let (complete, text) = try grammar.check(tokens)
                #expect(!complete && !Self.valid(text), "unmasked \(parameters.strategy) wrote \(text)")
            }
        }
    }
}
