import Foundation
import RealModule

/// A deliberately small English→Spanish translation model: a phrase lexicon (one or two English
/// words to one to three Spanish words, with probabilities) and a bigram language model learned from
/// a Spanish corpus at start-up. At each step it scores every target word from the source sentence,
/// the source words the prefix has already translated, and the prefix itself — and hands those raw
/// scores to logitd as logits. It never decodes: every token is chosen by the daemon.
///
/// The first word of a phrase scores
///     log P_LM(w | previous word) + log P_lex(phrases starting with w | source words) − distortion × jump,
/// where jump is how far the phrase starts from the first untranslated source word; each later
/// word of a phrase scores log P_LM(w | previous word) + log P_lex(w | the phrase's words so far),
/// so a phrase's lexical probability is paid once, spread over its words. The end of sentence
/// scores log P_LM(</s> | previous word) once no source phrase is left to translate. A phrase is
/// only offered if translating it leaves every other untranslated word some phrase (`isOpen`).
///
/// The lexicon cannot choose an article: "the" is el, la, los or las. A translator chooses it by
/// the noun it introduces, and so does the model: for a phrase ending in "the" it finds that noun
/// (the first of the next three source words whose translations the corpus puts right after one
/// of the candidate articles) and scores each candidate by how often the corpus puts its last word
/// before the noun's translations. An unambiguous noun fixes its article; "bank" (banco or orilla)
/// leaves "del" and "de la" open, and only a look further ahead (beam search) can settle it.
///
/// Every other word is masked (−inf) except `<other>`, which holds the language model's mass on
/// all the words the source does not allow: log(1 − Σ P_LM(allowed | previous word)). The demo
/// bans it (`bannedTokens`), so it is never chosen, but beam search log-softmaxes a row before it
/// bans, as Hugging Face does: a step that can only continue with a word the language model finds
/// unlikely ("la" → "mesas") then costs what it should, instead of nothing because it was the only
/// choice. Greedy decoding cannot see that cost coming; beam search can.
/// Demos/Translation/translate_demo.py computes the same floats in Python.
public struct TranslationModel: Sendable {
    public static let endOfSentence = "</s>"
    /// The English article, whose translation agrees with the noun it introduces.
    static let determiner = "the"
    public static let otherWords = "<other>"
    /// The tokens a session must ban: `<other>` is a score, not a word.
    public static let bannedTokens = [1]

    /// Target words; id 0 is the end of sentence, id 1 `<other>`.
    public let vocabulary: [String]
    /// English phrase (space-separated) → (target word ids, log P(target | english)).
    private let lexicon: [String: [(ids: [Int], logProbability: Double)]]
    /// Bigram counts and each context's count; the sentence start is context −1.
    private let bigrams: [Int: [Int: Double]]
    private let contexts: [Int: Double]
    private let smoothing = 0.01
    public var distortion = 1.0

    /// Reads `lexicon.tsv` (english, spanish, probability) and `corpus.txt` from `directory`.
    public init(directory: URL) throws {
        let lexiconLines = try String(contentsOf: directory.appendingPathComponent("lexicon.tsv"), encoding: .utf8).split(separator: "\n")
        let corpus = try String(contentsOf: directory.appendingPathComponent("corpus.txt"), encoding: .utf8).split(separator: "\n")
        var vocabulary = [Self.endOfSentence, Self.otherWords]
        var ids = [Self.endOfSentence: 0, Self.otherWords: 1]
        func id(_ word: String) -> Int {
            if let existing = ids[word] { return existing }
            ids[word] = vocabulary.count
            vocabulary.append(word)
            return vocabulary.count - 1
        }
        var lexicon: [String: [(ids: [Int], logProbability: Double)]] = [:]
        for line in lexiconLines {
            let fields = line.split(separator: "\t").map(String.init)
            guard fields.count == 3, let probability = Double(fields[2]) else { continue }
            lexicon[fields[0], default: []].append((fields[1].split(separator: " ").map { id(String($0)) }, Double.log(probability)))
        }
        var bigrams: [Int: [Int: Double]] = [:]
        var contexts: [Int: Double] = [:]
        for sentence in corpus {
            var previous = -1
            for word in sentence.split(separator: " ").map(String.init) + [Self.endOfSentence] {
                let current = id(word)
                bigrams[previous, default: [:]][current, default: 0] += 1
                contexts[previous, default: 0] += 1
                previous = current
            }
        }
        self.vocabulary = vocabulary
        self.lexicon = lexicon
        self.bigrams = bigrams
        self.contexts = contexts
    }

    public var vocabularySize: Int { vocabulary.count }

    /// log P_LM(word | previous), add-k smoothed; previous −1 is the start of the sentence.
    public func languageModel(_ word: Int, after previous: Int) -> Double {
        let count = bigrams[previous]?[word] ?? 0
        let total = contexts[previous] ?? 0
        return Double.log((count + smoothing) / (total + smoothing * Double(vocabulary.count)))
    }

    public static func tokens(_ sentence: String) -> [String] {
        sentence.lowercased().split(whereSeparator: { $0.isWhitespace }).map(String.init)
    }

    /// A way to translate source words `start ..< start + length`.
    struct Option {
        let start: Int
        let length: Int
        let phrases: [(ids: [Int], logProbability: Double)]
    }

    /// Every lexicon phrase of one or two words found in the source, leftmost first, longer first;
    /// the phrases of one ending in "the" carry their agreement with its noun as their probability.
    func options(_ source: [String]) -> [Option] {
        var found: [Option] = []
        for start in source.indices {
            for length in [2, 1] where start + length <= source.count {
                guard var phrases = lexicon[source[start..<(start + length)].joined(separator: " ")] else { continue }
                if source[start + length - 1] == Self.determiner {
                    phrases = agreeing(phrases, nounCandidates: source[(start + length)...].prefix(3))
                }
                found.append(Option(start: start, length: length, phrases: phrases))
            }
        }
        return found
    }

    /// `phrases` (each ending in an article) rescored by how often the corpus puts their last word
    /// right before a translation of the noun: the first of `nounCandidates` that the corpus ever
    /// puts after one of those articles (adjectives never follow an article in Spanish).
    private func agreeing(_ phrases: [(ids: [Int], logProbability: Double)], nounCandidates: ArraySlice<String>) -> [(ids: [Int], logProbability: Double)] {
        for word in nounCandidates {
            let nouns = Set((lexicon[word] ?? []).map { $0.ids[0] })
            let counts = phrases.map { phrase in nouns.reduce(0.0) { $0 + (bigrams[phrase.ids.last!]?[$1] ?? 0) } }
            let total = counts.reduce(0, +)
            guard total > 0 else { continue }
            let denominator = total + smoothing * Double(phrases.count)
            return zip(phrases, counts).map { phrase, count in (phrase.ids, Double.log((count + smoothing) / denominator)) }
        }
        return phrases
    }

    /// Whether `option` can be translated next: its words are all untranslated, and translating
    /// them leaves every other untranslated word some option still (taking "the" of "near the"
    /// alone would strand "near", which the lexicon only knows as part of "near the").
    static func isOpen(_ option: Option, covered: [Bool], options: [Option]) -> Bool {
        let words = option.start..<(option.start + option.length)
        guard words.allSatisfy({ !covered[$0] }) else { return false }
        var after = covered
        for position in words { after[position] = true }
        return after.indices.allSatisfy { position in
            after[position] || options.contains { other in
                other.start <= position && position < other.start + other.length
                    && (other.start..<(other.start + other.length)).allSatisfy { !after[$0] }
            }
        }
    }

    /// Where the prefix stands: which source words it translated (words the lexicon does not know
    /// count as translated) and, when it ends inside a phrase, the phrases that can still continue
    /// it. Each phrase is aligned to the leftmost untranslated source words whose translation starts
    /// with its first word.
    public struct State: Equatable {
        public var covered: [Bool]
        /// The phrases the prefix may be in the middle of.
        public var continuations: [Continuation]
    }

    /// The words still to come of a phrase, and the whole phrase's log P_lex.
    public struct Continuation: Equatable, Hashable {
        public var words: [Int]
        public var logProbability: Double
    }

    public func state(source: [String], prefix: [Int]) -> State {
        state(options: options(source), sourceLength: source.count, prefix: prefix)
    }

    private func state(options: [Option], sourceLength: Int, prefix: [Int]) -> State {
        var covered = (0..<sourceLength).map { position in !options.contains { $0.start <= position && position < $0.start + $0.length } }
        var continuations: [Continuation] = []
        for token in prefix {
            if !continuations.isEmpty {
                continuations = continuations.filter { $0.words.first == token }
                    .map { Continuation(words: Array($0.words.dropFirst()), logProbability: $0.logProbability) }
                    .filter { !$0.words.isEmpty }
                continue
            }
            guard let option = options.first(where: { option in
                Self.isOpen(option, covered: covered, options: options) && option.phrases.contains { $0.ids.first == token }
            }) else { continue }
            for position in option.start..<(option.start + option.length) { covered[position] = true }
            continuations = option.phrases.filter { $0.ids.first == token && $0.ids.count > 1 }
                .map { Continuation(words: Array($0.ids.dropFirst()), logProbability: $0.logProbability) }
        }
        return State(covered: covered, continuations: continuations)
    }

    /// The raw scores for the next target word (one per vocabulary entry).
    public func logits(source: [String], prefix: [Int]) -> [Float] {
        let options = options(source)
        let current = state(options: options, sourceLength: source.count, prefix: prefix)
        let previous = prefix.last ?? -1
        var translation = [Double](repeating: -.infinity, count: vocabulary.count)
        var phraseAvailable = !current.continuations.isEmpty
        if !current.continuations.isEmpty {
            // P_lex(next word | the phrase so far): the mass of the phrases it continues.
            let total = current.continuations.reduce(0.0) { $0 + Double.exp($1.logProbability) }
            for (word, mass) in Self.massByFirstWord(current.continuations.map { ($0.words, $0.logProbability) }) {
                translation[word] = Double.log(mass / total)
            }
        } else {
            for option in options where Self.isOpen(option, covered: current.covered, options: options) {
                // Skipping words costs: translations run mostly left to right, with local swaps.
                let jump = distortion * Double(option.start - (current.covered.firstIndex(of: false) ?? 0))
                phraseAvailable = true
                for (word, mass) in Self.massByFirstWord(option.phrases) {
                    translation[word] = max(translation[word], Double.log(mass) - jump)
                }
            }
        }
        var logits = [Float](repeating: -.infinity, count: vocabulary.count)
        for id in vocabulary.indices where translation[id] > -.infinity {
            logits[id] = Float(languageModel(id, after: previous) + translation[id])
        }
        // Nothing left to translate (or, in a source no option order can finish, nothing open):
        // the sentence ends, so no row is left with nothing allowed.
        if !phraseAvailable {
            logits[0] = Float(languageModel(0, after: previous))
        }
        let allowedMass = vocabulary.indices.reduce(0.0) { mass, id in
            logits[id] > -.infinity ? mass + Double.exp(languageModel(id, after: previous)) : mass
        }
        if allowedMass < 1 { logits[1] = Float(Double.log(onePlus: -allowedMass)) }
        return logits
    }

    /// Σ P_lex of the phrases starting with each word, summed in the phrases' order.
    private static func massByFirstWord(_ phrases: [(ids: [Int], logProbability: Double)]) -> [(word: Int, mass: Double)] {
        var masses: [(word: Int, mass: Double)] = []
        for phrase in phrases {
            if let index = masses.firstIndex(where: { $0.word == phrase.ids[0] }) {
                masses[index].mass += Double.exp(phrase.logProbability)
            } else {
                masses.append((phrase.ids[0], Double.exp(phrase.logProbability)))
            }
        }
        return masses
    }

    /// log P(tokens | source) under the model: each step's row log-softmaxed with `<other>` in it.
    /// Beam search maximises this; it compares every strategy's output on one scale (the log p a
    /// session reports for greedy or sampling is over the row after `<other>` is banned).
    public func logProbability(source: [String], tokens: [Int]) -> Double {
        tokens.indices.reduce(0.0) { total, step in
            let row = logits(source: source, prefix: Array(tokens[..<step])).map(Double.init)
            let top = row.max()!
            let sum = row.reduce(0.0) { $0 + Double.exp($1 - top) }
            return total + row[tokens[step]] - top - Double.log(sum)
        }
    }

    /// Whether a finished sentence (ending in `</s>`) has every word pair, from its start to its
    /// end, somewhere in the corpus: a fluency check that needs no reference translation, since
    /// the corpus is grammatical Spanish ("la gato" never occurs in it, "el gato" does).
    public func isFluent(_ ids: [Int]) -> Bool {
        guard ids.last == 0 else { return false }
        var previous = -1
        for word in ids {
            guard (bigrams[previous]?[word] ?? 0) > 0 else { return false }
            previous = word
        }
        return true
    }

    /// Target ids as text, without the end of sentence (or `<other>`).
    public func text(_ ids: [Int]) -> String {
        ids.filter { $0 > 1 }.map { vocabulary[$0] }.joined(separator: " ")
    }

    /// The test set: (english, reference spanish) pairs.
    public static func testSet(directory: URL) throws -> [(source: String, reference: String)] {
        try String(contentsOf: directory.appendingPathComponent("test.tsv"), encoding: .utf8).split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "\t").map(String.init)
            return fields.count == 2 ? (fields[0], fields[1]) : nil
        }
    }
}
