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
        let sum = row.apply(ExponentialsWritten(shift: maximum.value, scale: 1 / temperature, output: output))
        scale(output, by: 1 / sum)
    }

    /// Writes log softmax(row) into `output`, which must have `row.count` elements.
    public static func logProbabilities(of row: LogitRow, into output: UnsafeMutableBufferPointer<Float>) throws(LogitRowError) {
        precondition(output.count == row.count, "output must have one element per logit")
        let (maximum, sum) = try row.validatedNormaliser()
        let logNormaliser = maximum.value + Float(Double.log(sum))
        row.apply(Shifted(shift: logNormaliser, output: output))
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

    private static func scale(_ values: UnsafeMutableBufferPointer<Float>, by factor: Float) {
        let base = UnsafeMutableRawPointer(values.baseAddress!)
        let vectorEnd = values.count & ~15
        var index = 0
        while index < vectorEnd {
            let scaled = base.loadUnaligned(fromByteOffset: index &* 4, as: SIMD16<Float>.self) * factor
            base.storeBytes(of: scaled, toByteOffset: index &* 4, as: SIMD16<Float>.self)
            index &+= 16
        }
        while index < values.count {
            values[index] *= factor
            index &+= 1
        }
    }
}

/// outputᵢ = exp((xᵢ − shift) × scale); returns their sum (accumulated as in `ExponentialSum`).
private struct ExponentialsWritten: RowKernel {
    let shift: Float
    let scale: Float
    let output: UnsafeMutableBufferPointer<Float>

    func run<Element: LogitElement>(_ element: Element.Type, _ base: UnsafeRawPointer, _ count: Int) -> Float {
        let out = UnsafeMutableRawPointer(output.baseAddress!)
        let shiftVector = SIMD16<Float>(repeating: shift)
        var total = SIMD16<Double>()
        let vectorEnd = count & ~15
        var index = 0
        while index < vectorEnd {
            var block = SIMD16<Float>()
            let blockEnd = min(vectorEnd, index &+ 256)
            while index < blockEnd {
                let e = exponentialOfNonPositive((Element.vector(base, index) - shiftVector) * scale)
                out.storeBytes(of: e, toByteOffset: index &* 4, as: SIMD16<Float>.self)
                block += e
                index &+= 16
            }
            total.accumulate(block)
        }
        var sum = total.sum()
        while index < count {
            let e = exponential((Element.scalar(base, index) - shift) * scale)
            output[index] = e
            sum += Double(e)
            index &+= 1
        }
        return Float(sum)
    }
}

/// outputᵢ = xᵢ − shift, widening f16/bf16 to f32.
struct Shifted: RowKernel {
    let shift: Float
    let output: UnsafeMutableBufferPointer<Float>

    func run<Element: LogitElement>(_ element: Element.Type, _ base: UnsafeRawPointer, _ count: Int) {
        let out = UnsafeMutableRawPointer(output.baseAddress!)
        let shiftVector = SIMD16<Float>(repeating: shift)
        let vectorEnd = count & ~15
        var index = 0
        while index < vectorEnd {
            out.storeBytes(of: Element.vector(base, index) - shiftVector, toByteOffset: index &* 4, as: SIMD16<Float>.self)
            index &+= 16
        }
        while index < count {
            output[index] = Element.scalar(base, index) - shift
            index &+= 1
        }
    }
}
