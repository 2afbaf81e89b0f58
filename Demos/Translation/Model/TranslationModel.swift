import Foundation
import RealModule

/// A deliberately small English→Spanish translation model: a lexicon of word translations with
/// their probabilities, and a bigram language model learned from a Spanish corpus at start-up.
/// At each step it scores every target word from the source sentence, the source words the prefix
/// has already translated, and the prefix itself — and hands those raw scores to logitd as logits.
/// It never decodes: every token is chosen by the daemon.
///
/// score(w) = log P_LM(w | previous word) + max over untranslated source words s of
///            [log P_lex(w | s) − distortion × |position(s) − (last translated position + 1)|]
/// The end of sentence scores log P_LM(</s> | previous word) once every source word is translated;
/// a word that translates nothing still untranslated is masked (−inf).
public struct TranslationModel: Sendable {
    public static let endOfSentence = "</s>"
    static let startOfSentence = "<s>"

    /// Target words; id 0 is the end of sentence.
    public let vocabulary: [String]
    private let ids: [String: Int]
    /// English word → (target id, log P(target | english)).
    private let lexicon: [String: [(id: Int, logProbability: Double)]]
    /// Bigram counts, the previous word's count, and the add-k constant.
    private let bigrams: [Int: [Int: Double]]
    private let unigrams: [Int: Double]
    private let smoothing = 0.01
    public var distortion = 0.25

    /// Reads `lexicon.tsv` (english, spanish, probability) and `corpus.txt` from `directory`.
    public init(directory: URL) throws {
        let lexiconLines = try String(contentsOf: directory.appendingPathComponent("lexicon.tsv"), encoding: .utf8).split(separator: "\n")
        let corpus = try String(contentsOf: directory.appendingPathComponent("corpus.txt"), encoding: .utf8).split(separator: "\n")
        var vocabulary = [Self.endOfSentence]
        var ids = [Self.endOfSentence: 0]
        func id(_ word: String) -> Int {
            if let existing = ids[word] { return existing }
            ids[word] = vocabulary.count
            vocabulary.append(word)
            return vocabulary.count - 1
        }
        var lexicon: [String: [(id: Int, logProbability: Double)]] = [:]
        for line in lexiconLines {
            let fields = line.split(separator: "\t").map(String.init)
            guard fields.count == 3, let probability = Double(fields[2]) else { continue }
            lexicon[fields[0], default: []].append((id(fields[1]), Double.log(probability)))
        }
        var bigrams: [Int: [Int: Double]] = [:]
        var unigrams: [Int: Double] = [:]
        let start = -1
        for sentence in corpus {
            var previous = start
            for word in sentence.split(separator: " ").map(String.init) + [Self.endOfSentence] {
                let current = id(word)
                bigrams[previous, default: [:]][current, default: 0] += 1
                unigrams[previous, default: 0] += 1
                previous = current
            }
        }
        self.vocabulary = vocabulary
        self.ids = ids
        self.lexicon = lexicon
        self.bigrams = bigrams
        self.unigrams = unigrams
    }

    public var vocabularySize: Int { vocabulary.count }

    /// log P_LM(word | previous), add-k smoothed; previous −1 is the start of the sentence.
    public func languageModel(_ word: Int, after previous: Int) -> Double {
        let count = bigrams[previous]?[word] ?? 0
        let total = unigrams[previous] ?? 0
        return Double.log((count + smoothing) / (total + smoothing * Double(vocabulary.count)))
    }

    public static func tokens(_ sentence: String) -> [String] {
        sentence.lowercased().split(whereSeparator: { $0.isWhitespace }).map(String.init)
    }

    /// Which source positions the prefix has translated: each target word is aligned to the
    /// leftmost untranslated source word it can translate. Also the last aligned position.
    public func coverage(source: [String], prefix: [Int]) -> (covered: [Bool], last: Int) {
        var covered = source.map { lexicon[$0] == nil }  // words the lexicon does not know are skipped
        var last = -1
        for token in prefix {
            if let position = source.indices.first(where: { !covered[$0] && lexicon[source[$0]]!.contains { $0.id == token } }) {
                covered[position] = true
                last = position
            }
        }
        return (covered, last)
    }

    /// The raw scores for the next target word (one per vocabulary entry).
    public func logits(source: [String], prefix: [Int]) -> [Float] {
        let (covered, last) = coverage(source: source, prefix: prefix)
        let previous = prefix.last ?? -1
        var translation = [Double](repeating: -.infinity, count: vocabulary.count)
        for position in source.indices where !covered[position] {
            let jump = distortion * Double(abs(position - (last + 1)))
            for entry in lexicon[source[position]] ?? [] {
                translation[entry.id] = max(translation[entry.id], entry.logProbability - jump)
            }
        }
        var logits = [Float](repeating: -.infinity, count: vocabulary.count)
        for id in vocabulary.indices where translation[id] > -.infinity {
            logits[id] = Float(languageModel(id, after: previous) + translation[id])
        }
        if !covered.contains(false) {
            logits[0] = Float(languageModel(0, after: previous))
        }
        return logits
    }

    /// Target ids as text, without the end of sentence.
    public func text(_ ids: [Int]) -> String {
        ids.filter { $0 != 0 }.map { vocabulary[$0] }.joined(separator: " ")
    }

    /// The test set: (english, reference spanish) pairs.
    public static func testSet(directory: URL) throws -> [(source: String, reference: String)] {
        try String(contentsOf: directory.appendingPathComponent("test.tsv"), encoding: .utf8).split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "\t").map(String.init)
            return fields.count == 2 ? (fields[0], fields[1]) : nil
        }
    }
}
