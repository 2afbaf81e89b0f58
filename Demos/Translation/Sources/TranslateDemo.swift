import ArgumentParser
import Decoding
import Foundation
import LogitdClient
import LogitdProtocol
import TranslationModel

/// `translate-demo`: English → Spanish with a tiny lexicon + bigram model that sends its raw
/// scores to logitd as logits; logitd chooses every token, with greedy, beam or nucleus decoding.
@main
struct TranslateDemo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "translate-demo",
        abstract: "Translate English to Spanish through logitd, with greedy, beam and nucleus decoding side by side."
    )

    @Argument(help: "Sentences to translate (none: read --file, or stdin line by line).")
    var sentences: [String] = []

    @Option(help: "A file with one English sentence per line.")
    var file: String?

    @Option(help: "greedy, beam, nucleus or all.")
    var strategy = "all"

    @Option(help: "Beam width.")
    var beamWidth = 8

    @Option(help: "Nucleus (top-p) mass.")
    var topP: Float = 0.9

    @Option(help: "Sampling temperature.")
    var temperature: Float = 1.0

    @Option(help: "Random seed for nucleus sampling.")
    var seed: UInt64 = 7

    @Option(help: "Nucleus samples per sentence.")
    var samples = 1

    @Option(help: "The daemon's endpoint.")
    var endpoint = "tcp://127.0.0.1:5555"

    @Option(help: "The model's data directory.")
    var data = "Demos/Translation/data"

    @Flag(help: "Show every step: the top candidates, their logits and probabilities, the choice.")
    var explain = false

    @Flag(help: "Show what softmax does to the candidates for \"the cat sat on the ___\".")
    var softmax = false

    @Flag(help: "Translate the whole test set with every strategy and print the scores.")
    var evaluate = false

    @Flag(help: "Reliability of the model's next-word confidence on held-out references, before and after temperature scaling.")
    var calibration = false

    @Flag(help: "With --evaluate: one JSON object per strategy; with --calibration: one JSON object.")
    var json = false

    func run() throws {
        let model = try TranslationModel(directory: URL(fileURLWithPath: data))
        let client = try LogitdClient(endpoint: endpoint, timeout: .seconds(30))
        let strategies = try chosenStrategies()
        if softmax { try softmaxExplainer(client) }
        if calibration {
            try CalibrationReport(model: model, client: client, demo: self).run()
            return
        }
        if evaluate {
            try Evaluation(model: model, client: client, demo: self).run(strategies)
            return
        }
        var inputs = sentences
        if inputs.isEmpty, let file { inputs = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init) }
        let interactive = inputs.isEmpty && !softmax
        if interactive { print("English sentence (empty line to stop):") }
        var index = 0
        while true {
            let sentence: String
            if interactive {
                guard let line = readLine(), !line.isEmpty else { break }
                sentence = line
            } else {
                guard index < inputs.count else { break }
                sentence = inputs[index]
                index += 1
            }
            print("\n\(sentence)")
            for strategy in strategies {
                for translation in try translate(sentence, strategy, model: model, client: client) {
                    print("  \(strategy.label.padding(toLength: 9, withPad: " ", startingAt: 0)) \(translation.text)  (log p \(String(format: "%.2f", translation.logprob)))")
                }
            }
        }
    }

    enum Choice: String, CaseIterable {
        case greedy, beam, nucleus
        var label: String { rawValue }
    }

    func chosenStrategies() throws -> [Choice] {
        if strategy == "all" { return Choice.allCases }
        guard let choice = Choice(rawValue: strategy) else { throw ValidationError("--strategy must be greedy, beam, nucleus or all") }
        return [choice]
    }

    struct Translation {
        let text: String
        let logprob: Double
        let fluent: Bool
    }

    /// One sentence through one strategy: a session on logitd, the model producing each step's rows.
    func translate(_ sentence: String, _ choice: Choice, model: TranslationModel, client: LogitdClient) throws -> [Translation] {
        let source = TranslationModel.tokens(sentence)
        var parameters = SessionParameters(strategy: choice == .beam ? .beam : choice == .nucleus ? .sample : .greedy, vocabSize: model.vocabularySize)
        // A two-word phrase can become three words ("near the" → "cerca de la").
        parameters.maxNewTokens = 2 * source.count + 2
        parameters.processors.eosTokens = [0]
        parameters.processors.bannedTokens = TranslationModel.bannedTokens
        switch choice {
        case .greedy: break
        case .beam:
            parameters.beamWidth = beamWidth
            // Rank hypotheses by their total log-probability: every translation here has about
            // as many words as its source.
            parameters.lengthPenalty = 0
        case .nucleus:
            parameters.processors.topP = topP
            parameters.processors.temperature = temperature
            parameters.seed = seed
            parameters.n = samples
        }
        let session = try client.open(parameters)
        if explain {
            print("  [\(choice.label)]  p: among the words the source allows; with <other>: beside the")
            print("  language model's mass on every other word, the probability beam search adds up")
        }
        _ = try session.run { session in
            let prefixes = choice == .beam ? session.livePrefixes : session.liveSequences.map { session.sequences[$0] }
            let rows = prefixes.map { model.logits(source: source, prefix: $0) }
            if explain { explainStep(model: model, prefixes: prefixes, rows: rows) }
            return rows.flatMap { $0 }
        }
        return (session.result?.sequences ?? []).map {
            Translation(text: model.text($0.tokens), logprob: model.logProbability(source: source, tokens: $0.tokens), fluent: model.isFluent($0.tokens))
        }
    }

    /// One step of --explain: per live prefix, the best candidates with their logit, their
    /// probability among the allowed words (what greedy and nucleus choose from, with a bar) and
    /// their probability with `<other>` in the row (what beam search adds up).
    func explainStep(model: TranslationModel, prefixes: [[Int]], rows: [[Float]]) {
        for (prefix, logits) in zip(prefixes, rows) {
            var allowed = logits
            for token in TranslationModel.bannedTokens { allowed[token] = -.infinity }
            let probabilities = (try? Softmax.probabilities(of: allowed)) ?? []
            let withOther = (try? Softmax.probabilities(of: logits)) ?? []
            let top = allowed.indices.filter { allowed[$0] > -.infinity }.sorted { allowed[$0] > allowed[$1] }.prefix(4)
            print("    \(model.text(prefix).isEmpty ? "·" : model.text(prefix)) →")
            for id in top {
                let bar = String(repeating: "█", count: Int((probabilities[id] * 20).rounded()))
                print("      \(model.vocabulary[id].padding(toLength: 10, withPad: " ", startingAt: 0)) logit \(String(format: "%6.2f", logits[id]))  p \(String(format: "%.2f", probabilities[id]))  with <other> \(String(format: "%.3f", withOther[id])) \(bar)")
            }
        }
    }

    /// The classic picture of softmax: a few candidate next words, their logits, and their
    /// probabilities at three temperatures, computed by logitd's PROBS.
    func softmaxExplainer(_ client: LogitdClient) throws {
        let words = ["mat", "sofa", "floor", "roof", "moon", "keyboard"]
        let logits: [Float] = [3.2, 2.1, 1.9, 0.4, -1.0, 1.2]
        print("the cat sat on the ___        softmax at temperature T (from logitd's PROBS)")
        print("word       logit    T=0.5   T=1     T=2")
        let columns = try [Float(0.5), 1, 2].map { try client.probabilities(logits, vocab: logits.count, temperature: $0).rows[0] }
        for (index, word) in words.enumerated() {
            let cells = columns.map { String(format: "%5.3f", $0[index]) }.joined(separator: "   ")
            print("\(word.padding(toLength: 9, withPad: " ", startingAt: 0)) \(String(format: "%5.1f", logits[index]))    \(cells)  \(String(repeating: "█", count: Int((columns[1][index] * 20).rounded())))")
        }
        print("Low T sharpens the distribution towards the argmax; high T flattens it.\n")
    }
}

/// --evaluate: the test set through every strategy, scored with BLEU and chrF; "fluent" counts the
/// translations whose every word pair occurs in the Spanish corpus, right or wrong.
struct Evaluation {
    let model: TranslationModel
    let client: LogitdClient
    let demo: TranslateDemo

    func run(_ strategies: [TranslateDemo.Choice]) throws {
        let pairs = try TranslationModel.testSet(directory: URL(fileURLWithPath: demo.data))
        let references = pairs.map(\.reference)
        if !demo.json {
            print("strategy  sentences  BLEU   chrF  exact  fluent  mean log p  ms/sentence")
        }
        for strategy in strategies {
            let start = ContinuousClock.now
            var outputs: [String] = []
            var logprobs = 0.0
            var fluent = 0
            for pair in pairs {
                let best = try demo.translate(pair.source, strategy, model: model, client: client).first
                outputs.append(best?.text ?? "")
                logprobs += best?.logprob ?? 0
                if best?.fluent == true { fluent += 1 }
            }
            let elapsed = ContinuousClock.now - start
            let milliseconds = (Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15) / Double(pairs.count)
            let bleu = TranslationMetrics.bleu(hypotheses: outputs, references: references)
            let chrF = TranslationMetrics.chrF(hypotheses: outputs, references: references)
            let exact = zip(outputs, references).filter { $0 == $1 }.count
            let meanLogprob = logprobs / Double(pairs.count)
            if demo.json {
                print("{\"strategy\":\"\(strategy.rawValue)\",\"sentences\":\(pairs.count),\"bleu\":\(String(format: "%.2f", bleu)),\"chrf\":\(String(format: "%.2f", chrF)),\"exact\":\(exact),\"fluent\":\(fluent),\"mean_logprob\":\(String(format: "%.3f", meanLogprob)),\"ms_per_sentence\":\(String(format: "%.2f", milliseconds))}")
            } else {
                print("\(strategy.label.padding(toLength: 9, withPad: " ", startingAt: 0)) \(String(format: "%9d  %4.1f   %4.1f  %5d  %6d  %10.2f  %11.2f", pairs.count, bleu, chrF, exact, fluent, meanLogprob, milliseconds))")
            }
        }
        if !demo.json {
            let fluentReferences = pairs.filter { model.isFluent(TranslationModel.tokens($0.reference).compactMap(model.vocabulary.firstIndex) + [0]) }.count
            print("fluent: every word pair occurs in the corpus (\(fluentReferences) of the \(pairs.count) references do)")
        }
    }
}
