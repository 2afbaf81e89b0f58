import Testing
import TranslationModel

@Suite("BLEU and chrF against hand-computed values")
struct MetricsTests {
    @Test("identical output scores 100; nothing in common scores 0")
    func extremes() {
        #expect(TranslationMetrics.bleu(hypotheses: ["el gato negro duerme"], references: ["el gato negro duerme"]) == 100)
        #expect(TranslationMetrics.bleu(hypotheses: ["uno dos"], references: ["tres cuatro"]) == 0)
        #expect(abs(TranslationMetrics.chrF(hypotheses: ["el gato"], references: ["el gato"]) - 100) < 1e-9)
        #expect(TranslationMetrics.chrF(hypotheses: ["xyz"], references: ["abc"]) == 0)
    }

    @Test("BLEU: precisions 5/6, 3/5, 2/4, 1/3 and no brevity penalty give (1/12)^(1/4)")
    func bleuByHand() {
        // Unigrams: "the" is clipped to its one occurrence in the reference.
        let score = TranslationMetrics.bleu(hypotheses: ["the cat sat on the mat"], references: ["the cat sat on a mat"])
        #expect(abs(score - 100 * 0.537_284_965_911_770_6) < 1e-9)
    }

    @Test("BLEU: the brevity penalty exp(1 − r/c) for a short hypothesis")
    func brevity() {
        // Hypothesis of 4 tokens, all n-grams found in a 6-token reference: precision 1, BP = e^(1−6/4).
        let score = TranslationMetrics.bleu(hypotheses: ["a b c d"], references: ["a b c d e f"])
        #expect(abs(score - 100 * 0.606_530_659_712_633_4) < 1e-9)
    }

    @Test("chrF: abc against abd is (2/3 + 1/2 + 0) / 3 over the three orders both have")
    func chrFByHand() {
        let score = TranslationMetrics.chrF(hypotheses: ["abc"], references: ["abd"])
        #expect(abs(score - 100 * (2.0 / 3 + 0.5) / 3) < 1e-9)
        // Whitespace is ignored: "a bc" is "abc".
        #expect(abs(TranslationMetrics.chrF(hypotheses: ["a bc"], references: ["ab d"]) - score) < 1e-12)
    }

    @Test("corpus statistics are summed before the scores, not averaged per sentence")
    func corpusLevel() {
        let hypotheses = ["the cat sat on the mat", "a b c d"]
        let references = ["the cat sat on a mat", "a b c d"]
        // Sums: 1-grams 9/10, 2-grams 6/8, 3-grams 4/6, 4-grams 2/4; lengths 10 and 10.
        let expected = 100 * ((9.0 / 10) * (6.0 / 8) * (4.0 / 6) * (2.0 / 4)).squareRoot().squareRoot()
        #expect(abs(TranslationMetrics.bleu(hypotheses: hypotheses, references: references) - expected) < 1e-9)
    }
}
