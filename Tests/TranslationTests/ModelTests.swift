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
        #expect(state.continuations.isEmpty)
    }

    @Test("a prefix inside a two-word phrase can only continue it")
    func phrases() throws {
        let source = TranslationModel.tokens("the cat sleeps near the house")
        let prefix = ["el", "gato", "duerme", "cerca"].map(id)
        let state = model.state(source: source, prefix: prefix)
        #expect(state.covered == [true, true, true, true, true, false], "\"near the\" is one phrase")
        #expect(Set(state.continuations.map(\.words)) == [[id("del")], [id("de"), id("la")], [id("de"), id("los")], [id("de"), id("las")]])
        let logits = model.logits(source: source, prefix: prefix)
        #expect(Set(logits.indices.filter { $0 != 1 && logits[$0] > -.infinity }) == [id("del"), id("de")])
    }

    @Test("a phrase that would strand a word is not offered: \"the\" of \"near the\" alone leaves \"near\" untranslatable")
    func stranding() throws {
        let source = TranslationModel.tokens("the man walks near the bank of the city")
        let logits = model.logits(source: source, prefix: ["el", "hombre", "camina"].map(id))
        for article in ["el", "la", "los", "las"] { #expect(logits[id(article)] == -.infinity, "\(article)") }
        #expect(logits[id("cerca")] > -.infinity)
        #expect(logits[id("banco")] > -.infinity, "\"bank\" alone strands nothing: \"near the\" and \"of the\" stay whole")
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
        let source = TranslationModel.tokens("the black cat sleeps")
        let el = id("el"), gato = id("gato"), negro = id("negro"), duerme = id("duerme")
        let afterEl = model.logits(source: source, prefix: [el])
        // After "el": "gato" (position 2) starts one word past the first untranslated one, "black".
        #expect(abs(Double(afterEl[gato]) - (model.languageModel(gato, after: el) + log(1.0) - model.distortion)) < 1e-5)
        // "negro" translates position 1 with P = 1/4 (negro, negra, negros, negras).
        #expect(abs(Double(afterEl[negro]) - (model.languageModel(negro, after: el) + log(0.25))) < 1e-5)
        // After "el gato": "duerme" (position 3) starts two past "black"; "negro" translates it.
        let afterGato = model.logits(source: source, prefix: [el, gato])
        #expect(abs(Double(afterGato[duerme]) - (model.languageModel(duerme, after: gato) - 2 * model.distortion)) < 1e-5)
        #expect(abs(Double(afterGato[negro]) - (model.languageModel(negro, after: gato) + log(0.25))) < 1e-5)
    }

    /// log P_lex of `word` in a row: the logit minus the language model (no distortion involved).
    func lexical(_ logits: [Float], _ word: String, after previous: Int) -> Double {
        Double(logits[id(word)]) - model.languageModel(id(word), after: previous)
    }

    @Test("\"the\" agrees with the noun it introduces, past its adjectives")
    func articleAgreement() throws {
        let cat = model.logits(source: TranslationModel.tokens("the black cat sleeps"), prefix: [])
        #expect(lexical(cat, "el", after: -1) > log(0.99))
        for other in ["la", "los", "las"] { #expect(lexical(cat, other, after: -1) < log(0.01)) }
        let houses = model.logits(source: TranslationModel.tokens("the small houses see the red car"), prefix: [])
        #expect(lexical(houses, "las", after: -1) > log(0.99))
    }

    @Test("an ambiguous noun leaves its article open; a two-word phrase's probability is spread over its words")
    func ambiguousArticle() throws {
        let source = TranslationModel.tokens("the cat sleeps near the bank of the river")
        let prefix = ["el", "gato", "duerme"].map(id)
        // "cerca" starts all four translations of "near the": together they hold P_lex = 1.
        let first = model.logits(source: source, prefix: prefix)
        #expect(abs(lexical(first, "cerca", after: id("duerme"))) < 1e-5)
        // Then "del" (banco) and "de" (la orilla) share it: both senses stay possible.
        let second = model.logits(source: source, prefix: prefix + [id("cerca")])
        let del = lexical(second, "del", after: id("cerca")), de = lexical(second, "de", after: id("cerca"))
        #expect(del > log(0.2) && de > log(0.2))
        #expect(abs(exp(del) + exp(de) - 1) < 1e-4, "del + de la + de los + de las")
        // After "de", "la" carries what "de la" had (the orilla sense); "los" and "las" almost nothing.
        let third = model.logits(source: source, prefix: prefix + [id("cerca"), id("de")])
        #expect(lexical(third, "la", after: id("de")) > log(0.99))
    }

    @Test("fluent: every word pair of a finished sentence occurs in the corpus")
    func fluency() throws {
        // The corpus does not hold every word pair the grammar allows, so a few references fail too.
        let references = try TranslationModel.testSet(directory: dataDirectory).map { TranslationModel.tokens($0.reference).map(id) + [0] }
        let fluentReferences = references.filter(model.isFluent).count
        #expect(fluentReferences >= references.count * 9 / 10, "\(fluentReferences) of \(references.count)")
        let sentence = ["el", "perro", "negro", "duerme", "</s>"].map(id)
        let checks = [sentence, ["la", "perro", "negro", "duerme", "</s>"].map(id), ["el", "negro", "perro", "duerme", "</s>"].map(id),
                      ["el", "perro", "negra", "duerme", "</s>"].map(id), Array(sentence.dropLast())].map(model.isFluent)
        #expect(checks == [true, false, false, false, false], "fluent; article, order, adjective agreement; unfinished")
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
