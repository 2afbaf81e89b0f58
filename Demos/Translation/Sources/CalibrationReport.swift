import Decoding
import Foundation
import LogitdClient
import LogitdProtocol
import TranslationModel

/// --calibration: how far the model's next-word confidence is from its accuracy on held-out
/// references (reliability table and expected calibration error), before and after temperature
/// scaling with the temperature fitted on the other half of the test set by minimising the negative
/// log-likelihood (Guo et al. 2017). Every probability comes from the daemon: SCORE for the observed
/// words' log-probabilities and ranks, PROBS for the top word's probability.
struct CalibrationReport {
    let model: TranslationModel
    let client: LogitdClient
    let demo: TranslateDemo

    /// The model's rows along the reference translations, and the word that came next in each.
    struct Steps {
        var logits: [Float] = []
        var observed: [Int] = []
        var unreachable = 0
    }

    func steps(_ pairs: ArraySlice<(source: String, reference: String)>) -> Steps {
        var steps = Steps()
        for pair in pairs {
            let source = TranslationModel.tokens(pair.source)
            let reference = TranslationModel.tokens(pair.reference).compactMap(model.vocabulary.firstIndex) + [0]
            for position in reference.indices {
                let row = model.logits(source: source, prefix: Array(reference[..<position]))
                // A reference word the model gives no score cannot be scored; it ends the walk.
                guard row[reference[position]] > -.infinity else { steps.unreachable += 1; break }
                steps.logits += row
                steps.observed.append(reference[position])
            }
        }
        return steps
    }

    /// `<other>` is a score, not a word: masked out of every row.
    var mask: [UInt32] {
        var words = [UInt32](repeating: .max, count: (model.vocabulary.count + 31) / 32)
        for token in TranslationModel.bannedTokens { words[token >> 5] &= ~(1 << UInt32(token & 31)) }
        return words
    }

    func scores(_ steps: Steps, temperature: Double) throws -> [TokenScore] {
        var parameters = ScoreParameters()
        parameters.processors.temperature = Float(temperature)
        return try client.score(steps.logits, vocab: model.vocabulary.count, tokens: steps.observed, parameters: parameters, mask: mask)
    }

    func reliability(_ steps: Steps, temperature: Double) throws -> (bins: [Calibration.Bin], nll: Double, accuracy: Double) {
        let scored = try scores(steps, temperature: temperature)
        let top = try client.probabilities(steps.logits, vocab: model.vocabulary.count, temperature: Float(temperature), topN: 1, mask: mask).top
        let correct = scored.map { $0.rank == 1 }
        let bins = Calibration.reliability(confidences: top.map { Double($0[0].logprob) }, correct: correct)
        return (bins, Self.meanNLL(scored), Double(correct.filter { $0 }.count) / Double(correct.count))
    }

    static func meanNLL(_ scores: [TokenScore]) -> Double {
        let total: Double = scores.reduce(0) { $0 - Double($1.logprob) }
        return total / Double(scores.count)
    }

    func run() throws {
        let pairs = try TranslationModel.testSet(directory: URL(fileURLWithPath: demo.data))
        let fit = steps(pairs.prefix(pairs.count / 2)), held = steps(pairs.suffix(pairs.count - pairs.count / 2))
        let temperature = try Calibration.fitTemperature { t in Self.meanNLL(try scores(fit, temperature: t)) }
        let before = try reliability(held, temperature: 1), after = try reliability(held, temperature: temperature)
        let eceBefore = Calibration.expectedCalibrationError(before.bins), eceAfter = Calibration.expectedCalibrationError(after.bins)
        if demo.json {
            func bins(_ bins: [Calibration.Bin]) -> String {
                "[" + bins.map { "{\"lower\":\($0.lower),\"upper\":\($0.upper),\"count\":\($0.count),\"confidence\":\(String(format: "%.4f", $0.meanConfidence)),\"accuracy\":\(String(format: "%.4f", $0.accuracy))}" }.joined(separator: ",") + "]"
            }
            print("{\"temperature\":\(String(format: "%.4f", temperature)),\"steps\":\(held.observed.count),\"ece_before\":\(String(format: "%.4f", eceBefore)),\"ece_after\":\(String(format: "%.4f", eceAfter)),\"nll_before\":\(String(format: "%.4f", before.nll)),\"nll_after\":\(String(format: "%.4f", after.nll)),\"accuracy\":\(String(format: "%.4f", before.accuracy)),\"before\":\(bins(before.bins)),\"after\":\(bins(after.bins))}")
            return
        }
        let references = pairs.count - pairs.count / 2
        print("Calibration: the model's next-word confidence against its accuracy on")
        print("\(held.observed.count) held-out steps (\(references) references). Temperature fitted on the other")
        print("\(pairs.count / 2) by least NLL (Guo et al. 2017): T = \(String(format: "%.3f", temperature))")
        print("confidence    before: steps  conf.  acc.    after: steps  conf.  acc.")
        for (b, a) in zip(before.bins, after.bins) where b.count > 0 || a.count > 0 {
            print(String(format: "%.1f-%.1f   %15d  %5.3f %5.3f  %13d  %5.3f %5.3f", b.lower, b.upper, b.count, b.meanConfidence, b.accuracy, a.count, a.meanConfidence, a.accuracy))
        }
        print(String(format: "ECE %.3f -> %.3f; NLL %.3f -> %.3f nats/word; accuracy %.1f%%", eceBefore, eceAfter, before.nll, after.nll, 100 * before.accuracy))
        let over = before.bins.filter { $0.meanConfidence > $0.accuracy }.reduce(0) { $0 + $1.count }
        let under = before.bins.filter { $0.meanConfidence < $0.accuracy }.reduce(0) { $0 + $1.count }
        let verdict = temperature > 1.1 ? "overconfident overall: T > 1 softens it."
            : temperature < 0.9 ? "underconfident overall: T < 1 sharpens it."
            : "close to calibrated overall: T is near 1."
        print("The model is \(verdict)")
        print("\(over) steps sit in overconfident bins, \(under) in underconfident ones:")
        print("one temperature moves them all one way.")
    }
}
