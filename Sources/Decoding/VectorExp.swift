/// exp over sixteen lanes: Cody–Waite range reduction to r ∈ [-ln2/2, ln2/2] and a degree-6
/// minimax polynomial for e^r (Cephes' expf coefficients), then a scale by 2^n built from bits.
///
/// Error bound (checked by `VectorExpTests` against Double exp over the whole range): relative
/// error below 4e-7 (about 3.5 ulp) for x ∈ [-87.3, 88.3]. Below -87.3, where e^x would be a
/// float32 subnormal, the result is exactly 0, as it is for -inf; NaN stays NaN.
@inlinable @inline(__always)
public func vectorExp(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let log2e: Float = 1.442_695_04
    let ln2High: Float = 0.693_359_375
    let ln2Low: Float = -2.121_944_4e-4
    let lowest: Float = -87.3
    let clamped = x.clamped(lowerBound: SIMD16(repeating: lowest), upperBound: SIMD16(repeating: 88.3))
    let n = (clamped * log2e).rounded(.toNearestOrEven)
    var r = clamped.addingProduct(n, SIMD16(repeating: -ln2High))
    r = r.addingProduct(n, SIMD16(repeating: -ln2Low))
    var p = SIMD16<Float>(repeating: 1.987_569_150_0e-4)
    p = SIMD16(repeating: 1.398_199_950_7e-3).addingProduct(p, r)
    p = SIMD16(repeating: 8.333_451_907_3e-3).addingProduct(p, r)
    p = SIMD16(repeating: 4.166_579_589_4e-2).addingProduct(p, r)
    p = SIMD16(repeating: 1.666_666_545_9e-1).addingProduct(p, r)
    p = SIMD16(repeating: 5.000_000_120_1e-1).addingProduct(p, r)
    let y = (r + 1).addingProduct(p, r * r)
    let exponent = (SIMD16<Int32>(n, rounding: .toNearestOrEven) &+ 127) &<< 23
    var result = y * unsafeBitCast(exponent, to: SIMD16<Float>.self)
    result.replace(with: 0, where: x .< lowest)
    // clamped() turned NaN into a bound; put it back so invalid input stays visible.
    result.replace(with: x, where: x .!= x)
    return result
}
