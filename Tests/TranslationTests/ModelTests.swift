import Decoding
import Foundation
import Testing
import TranslationModel

let dataDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Demos/Translation/data")

/// The model decoded in-process with the Decoding library (the demo does the same through logitd).
func translate(_ model: TranslationModel, _ sentence: String, beamWidth: Int?) throws -> [Int] {
    let source = TranslationModel.tokens(sentence)
    let maxTokens = 2 * source.count + 2
    var processors = ProcessorSettings()
    processors.bannedTokens = TranslationModel.bannedTokens
    let pipeline = LogitsPipeline(settings: processors)
    guard let width = beamWidth else {
        var prefix: [Int] = []
        while prefix.last != 0 && prefix.count < maxTokens {
            var logits = model.logits(source: source, prefix: prefix)
            for token in TranslationModel.bannedTokens { logits[token] = -.infinity }
            prefix.append(try logits.withUnsafeBytes { try Greedy.choose(from: LogitRow(bytes: $0, dtype: .float32)).token })
        }
        return prefix
    }
    var settings = BeamSearchSettings(width: width, stop: StopConditions(eosTokens: [0], maxNewTokens: maxTokens))
    settings.lengthPenalty = 0
    var search = BeamSearch(settings: settings)
    let workspace = Workspace()
    while !search.isDone {
        let rows = search.beams.map { model.logits(source: source, prefix: $0.tokens) }
        let flat = rows.flatMap { $0 }
        let vocab = model.vocabularySize
        _ = try flat.withUnsafeBytes { bytes in
            try search.advance(rows: rows.indices.map { LogitRow(bytes: UnsafeRawBufferPointer(rebasing: bytes[($0 * vocab * 4)..<(($0 + 1) * vocab * 4)]), dtype: .float32) },
                               pipeline: pipeline, workspace: workspace)
        }
    }
    return search.best.first?.tokens ?? []
}

@Suite("The translation demo's model")
struct ModelTests {
    let model: TranslationModel

    init() throws {
        model = try TranslationModel(directory: dataDirectory)
    }

    func id(_ word: String) -> Int { model.vocabulary.firstIndex(of: word)! }

    @Test("each phrase is aligned to the leftmost untranslated source words it translates")
    func coverage() throws {
        let source = TranslationModel.tokens("the black cat sees the cat")
        let state = model.state(source: source, prefix: ["el", "gato", "negro"].map(id))
        #expect(state.covered == [true, true, true, false, false, false])
        #expect(state.last == 1, "\"negro\" translated \"black\", position 1")
        #expect(state.continuations.isEmpty)
    }

    @Test("a prefix inside a two-word phrase can only continue it")
    func phrases() throws {
        let source = TranslationModel.tokens("the cat sleeps near the house")
        let prefix = ["el", "gato", "duerme", "cerca"].map(id)
        let state = model.state(source: source, prefix: prefix)
        #expect(state.covered == [true, true, true, true, true, false], "\"near the\" is one phrase")
        #expect(Set(state.continuations) == [[id("del")], [id("de"), id("la")], [id("de"), id("los")], [id("de"), id("las")]])
        let logits = model.logits(source: source, prefix: prefix)
        #expect(Set(logits.indices.filter { $0 != 1 && logits[$0] > -.infinity }) == [id("del"), id("de")])
    }

    @Test("only untranslated words score; the end of sentence only once everything is translated")
    func masking() throws {
        let source = TranslationModel.tokens("the cat sleeps")
        let first = model.logits(source: source, prefix: [])
        #expect(first[id("gato")] > -.infinity)
        #expect(first[id("casa")] == -.infinity)
        #expect(first[0] == -.infinity)
        let last = model.logits(source: source, prefix: ["el", "gato", "duerme"].map(id))
        #expect(last[0] > -.infinity)
        #expect(last.enumerated().allSatisfy { $0.offset <= 1 || $0.element == -.infinity })
    }

    @Test("<other> holds the language model's mass on every word the source does not allow")
    func otherWords() throws {
        let source = TranslationModel.tokens("the new girl plays on the tables")
        let prefix = ["la", "niña", "nueva", "juega", "sobre"].map(id)
        let logits = model.logits(source: source, prefix: prefix)
        let allowed = logits.indices.filter { $0 != 1 && logits[$0] > -.infinity }  // inside "on the"
        #expect(Set(allowed) == Set(["el", "la", "los", "las"].map(id)))
        let allowedMass = allowed.reduce(0.0) { $0 + exp(model.languageModel($1, after: id("sobre"))) }
        #expect(abs(Double(logits[1]) - log(1 - allowedMass)) < 1e-5)
        // After "la", "mesas" is the only word left, but a log-softmax that keeps <other> makes it
        // cost what the language model thinks of "la mesas"; after "las" it is cheap.
        func logSoftmax(_ row: [Float], _ token: Int) -> Double {
            let scores = row.map(Double.init)
            let top = scores.max()!
            return scores[token] - top - log(scores.reduce(0) { $0 + exp($1 - top) })
        }
        let afterLa = logSoftmax(model.logits(source: source, prefix: prefix + [id("la")]), id("mesas"))
        let afterLas = logSoftmax(model.logits(source: source, prefix: prefix + [id("las")]), id("mesas"))
        #expect(afterLa < afterLas - 5)
    }

    @Test("the score is the bigram language model plus the lexicon, minus the distortion")
    func scoreDefinition() throws {
        let source = TranslationModel.tokens("the black cat")
        let el = id("el"), gato = id("gato"), negro = id("negro")
        let logits = model.logits(source: source, prefix: [el])
        // After "el": "gato" translates position 2, one past the expected next position (1).
        #expect(abs(Double(logits[gato]) - (model.languageModel(gato, after: el) + log(1.0) - model.distortion)) < 1e-5)
        // "negro" translates position 1 with P = 1/4 (negro, negra, negros, negras).
        #expect(abs(Double(logits[negro]) - (model.languageModel(negro, after: el) + log(0.25))) < 1e-5)
    }

    @Test("on the held-out test set, beam search beats greedy decoding")
    func beamBeatsGreedy() throws {
        let pairs = try TranslationModel.testSet(directory: dataDirectory)
        #expect(pairs.count >= 60)
        let references = pairs.map(\.reference)
        let greedy = try pairs.map { model.text(try translate(model, $0.source, beamWidth: nil)) }
        let beam = try pairs.map { model.text(try translate(model, $0.source, beamWidth: 8)) }
        let greedyBLEU = TranslationMetrics.bleu(hypotheses: greedy, references: references)
        let beamBLEU = TranslationMetrics.bleu(hypotheses: beam, references: references)
        print("greedy BLEU \(greedyBLEU), beam BLEU \(beamBLEU); exact: greedy \(zip(greedy, references).filter { $0 == $1 }.count), beam \(zip(beam, references).filter { $0 == $1 }.count)")
        #expect(beamBLEU > greedyBLEU + 5)
    }
}
