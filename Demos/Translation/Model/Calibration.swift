import Foundation

/// Calibration of a classifier's (here: a language model's next-word) confidence (Guo et al.
/// 2017, "On Calibration of Modern Neural Networks"): reliability bins, the expected calibration
/// error, and temperature scaling fitted by minimising the negative log-likelihood.
public enum Calibration {
    /// One bin of a reliability table: predictions whose confidence falls in [lower, upper).
    public struct Bin: Equatable, Sendable {
        public var lower: Double
        public var upper: Double
        public var count: Int
        public var meanConfidence: Double
        public var accuracy: Double
    }

    /// `bins` equal-width bins over [0, 1] (confidence 1 goes in the last); empty bins have count 0.
    public static func reliability(confidences: [Double], correct: [Bool], bins: Int = 10) -> [Bin] {
        precondition(confidences.count == correct.count && bins > 0)
        var sums = [(count: Int, confidence: Double, correct: Int)](repeating: (0, 0, 0), count: bins)
        for (confidence, right) in zip(confidences, correct) {
            let index = min(bins - 1, Int(confidence * Double(bins)))
            sums[index].count += 1
            sums[index].confidence += confidence
            sums[index].correct += right ? 1 : 0
        }
        return sums.enumerated().map { index, sum in
            Bin(lower: Double(index) / Double(bins), upper: Double(index + 1) / Double(bins), count: sum.count,
                meanConfidence: sum.count > 0 ? sum.confidence / Double(sum.count) : 0,
                accuracy: sum.count > 0 ? Double(sum.correct) / Double(sum.count) : 0)
        }
    }

    /// ECE = Σ_b (n_b / N) · |accuracy_b − confidence_b|.
    public static func expectedCalibrationError(_ bins: [Bin]) -> Double {
        let total = bins.reduce(0) { $0 + $1.count }
        guard total > 0 else { return 0 }
        return bins.reduce(0.0) { $0 + Double($1.count) / Double(total) * abs($1.accuracy - $1.meanConfidence) }
    }

    /// The temperature minimising `nll(T)` on [low, high], by golden-section search on log T
    /// (the negative log-likelihood of softmax(z / T) is convex in 1/T, so unimodal in log T).
    public static func fitTemperature(low: Double = 0.05, high: Double = 20, iterations: Int = 60, nll: (Double) throws -> Double) rethrows -> Double {
        let ratio = (5.0.squareRoot() - 1) / 2
        var a = log(low), b = log(high)
        var c = b - ratio * (b - a), d = a + ratio * (b - a)
        var fc = try nll(exp(c)), fd = try nll(exp(d))
        for _ in 0..<iterations {
            if fc < fd {
                b = d; d = c; fd = fc
                c = b - ratio * (b - a)
                fc = try nll(exp(c))
            } else {
                a = c; c = d; fc = fd
                d = a + ratio * (b - a)
                fd = try nll(exp(d))
            }
        }
        return exp((a + b) / 2)
    }
}
