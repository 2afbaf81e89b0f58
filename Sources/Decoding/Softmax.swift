import CLogitKernels
import RealModule

/// Numerically stable softmax, log-softmax and logsumexp over one row: every exponential is
/// taken of xᵢ − max, which is ≤ 0, so nothing overflows and the largest term is exactly 1.
public enum Softmax {
    /// log Σ exp(xᵢ).
    public static func logSumExp(of row: LogitRow) throws(LogitRowError) -> Float {
        let (maximum, sum) = try row.validatedNormaliser()
        return maximum.value + Float(Double.log(sum))
    }

    /// Writes softmax(row / temperature) into `output`, which must have `row.count` elements.
    public static func probabilities(of row: LogitRow, temperature: Float = 1, into output: UnsafeMutableBufferPointer<Float>) throws(LogitRowError) {
        precondition(output.count == row.count, "output must have one element per logit")
        precondition(temperature > 0, "temperature must be positive")
        let maximum = try row.validatedMaximum()
        let sum = Float(row.writeExponentials(shiftedBy: maximum.value, scale: 1 / temperature, into: output))
        lk_scale_in_place(output.baseAddress, Int64(output.count), 1 / sum)
    }

    /// Writes log softmax(row) into `output`, which must have `row.count` elements.
    public static func logProbabilities(of row: LogitRow, into output: UnsafeMutableBufferPointer<Float>) throws(LogitRowError) {
        precondition(output.count == row.count, "output must have one element per logit")
        let (maximum, sum) = try row.validatedNormaliser()
        let logNormaliser = maximum.value + Float(Double.log(sum))
        row.write(shiftedBy: logNormaliser, into: output)
    }

    /// softmax of an array of float32 logits.
    public static func probabilities(of logits: [Float]) throws(LogitRowError) -> [Float] {
        try mapRow(logits) { (row, output) throws(LogitRowError) in try probabilities(of: row, into: output) }
    }

    /// log softmax of an array of float32 logits.
    public static func logProbabilities(of logits: [Float]) throws(LogitRowError) -> [Float] {
        try mapRow(logits) { (row, output) throws(LogitRowError) in try logProbabilities(of: row, into: output) }
    }

    private static func mapRow(
        _ logits: [Float],
        _ body: (LogitRow, UnsafeMutableBufferPointer<Float>) throws(LogitRowError) -> Void
    ) throws(LogitRowError) -> [Float] {
        var output = [Float](repeating: 0, count: logits.count)
        let result: Result<Void, LogitRowError> = logits.withUnsafeBytes { bytes in
            output.withUnsafeMutableBufferPointer { buffer in
                Result { () throws(LogitRowError) in try body(LogitRow(bytes: bytes, dtype: .float32), buffer) }
            }
        }
        try result.get()
        return output
    }
}
