/// exp over sixteen lanes: Cody–Waite range reduction to r ∈ [-ln2/2, ln2/2] and a degree-6
/// minimax polynomial for e^r (Cephes' expf coefficients), then a scale by 2^n built from bits.
///
/// Written with plain multiply, add, compare and select on SIMD16 values, which the compiler turns
/// into vector instructions; stdlib helpers such as `addingProduct`, `clamped` or rounding
/// conversions are avoided here because they are lowered lane by lane through library calls.
///
/// Error bound (checked by `VectorExpTests` against Double exp over the whole range): relative
/// error below 4e-7 (about 3.5 ulp) for x ∈ [-87.3, 88.3]. Below -87.3, where e^x would be a
/// float32 subnormal, the result is exactly 0, as it is for -inf; NaN stays NaN.
@inlinable @inline(__always)
public func vectorExp(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let lowest: Float = -87.3
    let highest: Float = 88.3
    var clamped = x.replacing(with: lowest, where: x .< lowest)
    clamped.replace(with: highest, where: clamped .> highest)
    // Adding 1.5 × 2^23 rounds x·log2(e) to the nearest integer (ties to even) in the float's
    // low mantissa bits: subtracting it back gives n as a float, the bit difference gives n as an int.
    let roundingShift: Float = 12_582_912
    let shifted = clamped * 1.442_695_04 + roundingShift
    let n = shifted - roundingShift
    let nBits = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- unsafeBitCast(roundingShift, to: Int32.self)
    // ln 2 split in two so that n · ln2High is exact.
    let r = (clamped - n * 0.693_359_375) - n * -2.121_944_4e-4
    var p = r * 1.987_569_150_0e-4 + 1.398_199_950_7e-3
    p = p * r + 8.333_451_907_3e-3
    p = p * r + 4.166_579_589_4e-2
    p = p * r + 1.666_666_545_9e-1
    p = p * r + 5.000_000_120_1e-1
    let y = p * (r * r) + r + 1
    var result = y * unsafeBitCast((nBits &+ 127) &<< 23, to: SIMD16<Float>.self)
    result.replace(with: 0, where: x .< lowest)
    // NaN fails every comparison, so it passed through the clamps: put it back unchanged.
    result.replace(with: x, where: x .!= x)
    return result
}
