import Foundation
import Testing
import TranslationModel

@Suite("Calibration against hand-computed values")
struct CalibrationTests {
    @Test("reliability bins and ECE of five predictions")
    func eceByHand() {
        // Bins of width 0.5: [0.2, 0.4] → mean 0.3, 1 of 2 right; [0.6, 0.9, 1.0] → mean 0.8333…, 2 of 3.
        let bins = Calibration.reliability(confidences: [0.2, 0.4, 0.6, 0.9, 1.0], correct: [true, false, true, false, true], bins: 2)
        #expect(bins.map(\.count) == [2, 3])
        #expect(abs(bins[0].meanConfidence - 0.3) < 1e-12 && abs(bins[0].accuracy - 0.5) < 1e-12)
        #expect(abs(bins[1].meanConfidence - 2.5 / 3) < 1e-12 && abs(bins[1].accuracy - 2.0 / 3) < 1e-12)
        // ECE = 2/5 · |0.5 − 0.3| + 3/5 · |2/3 − 5/6| = 0.08 + 0.1 = 0.18.
        #expect(abs(Calibration.expectedCalibrationError(bins) - 0.18) < 1e-12)
    }

    @Test("the fitted temperature of two-class logits ±z with accuracy a is z / atanh(2a − 1)")
    func temperatureByHand() {
        // Every example has logits (z, −z); a fraction a has the first class right. Under T,
        // p = σ(2z/T), and the NLL −a·log p − (1−a)·log(1−p) is least at p = a, i.e.
        // T = 2z / logit(a) = z / atanh(2a − 1). z = 3, a = 0.8: T = 3 / atanh(0.6) = 4.3281…
        let z = 3.0, a = 0.8
        let fitted = Calibration.fitTemperature { t in
            let p = 1 / (1 + exp(-2 * z / t))
            return -(a * log(p) + (1 - a) * log(1 - p))
        }
        #expect(abs(fitted - z / atanh(2 * a - 1)) < 1e-6, "\(fitted)")
    }
}
