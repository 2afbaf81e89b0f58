/// exp over sixteen lanes: Cody–Waite range reduction to r ∈ [-ln2/2, ln2/2], then
/// e^r ≈ 1 + r + r²·P(r) with P Cephes' expf minimax coefficients, and a scale by 2^n built from
/// bits.
///
/// Written with plain multiply, add, compare and select on SIMD16 values, which the compiler turns
/// into vector instructions; stdlib helpers such as `clamped` or rounding conversions are avoided
/// here because they are lowered lane by lane through library calls, and so is `addingProduct`
/// unless the build targets a CPU with FMA (`multiplyAdd`).
///
/// Error bound (checked by `VectorExpTests` against Double exp over the whole range): relative
/// error below 4e-7 (about 3.5 ulp) for x ∈ [-87.3, 88.3]. Below -87.3, where e^x would be a
/// float32 subnormal, the result is exactly 0, as it is for -inf; NaN stays NaN.
@inlinable @inline(__always)
public func vectorExp(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let highest: Float = 88.3
    var result = exponentialOfNonPositive(x.replacing(with: highest, where: x .> highest))
    // NaN fails every comparison, so it went through unchanged: put it back.
    result.replace(with: x, where: x .!= x)
    return result
}

/// The same exp for x ≤ 88.3 with no NaN: what the softmax kernels need, since they exponentiate
/// xᵢ − max of validated rows. Two selects fewer than `vectorExp` on the hottest loop.
@inlinable @inline(__always)
public func exponentialOfNonPositive(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let lowest: Float = -87.3
    // Below `lowest` (and for -inf) the bit arithmetic produces garbage, but the final select
    // replaces those lanes with 0, so no clamp is needed on the way in.
    // Adding 1.5 × 2^23 rounds x·log2(e) to the nearest integer (ties to even) in the float's
    // low mantissa bits: subtracting it back gives n as a float, the bit difference gives n as an int.
    let roundingShift: Float = 12_582_912
    let shifted = multiplyAdd(x, 1.442_695_04, roundingShift)
    let n = shifted - roundingShift
    let nBits = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- Int32(bitPattern: roundingShift.bitPattern)
    // ln 2 split in two so that n · ln2High is exact.
    let r = multiplyAdd(n, 2.121_944_4e-4, multiplyAdd(n, -0.693_359_375, x))
    // Cephes' coefficients without its r⁷ term, which is below 1.3e-7 relative for |r| ≤ ln2/2.
    var p = multiplyAdd(r, 1.398_199_950_7e-3, SIMD16(repeating: 8.333_451_907_3e-3))
    p = multiplyAdd(p, r, SIMD16(repeating: 4.166_579_589_4e-2))
    p = multiplyAdd(p, r, SIMD16(repeating: 1.666_666_545_9e-1))
    p = multiplyAdd(p, r, SIMD16(repeating: 5.000_000_120_1e-1))
    let y = multiplyAdd(p, r * r, r) + 1
    let scaled = y * unsafeBitCast((nBits &+ 127) &<< 23, to: SIMD16<Float>.self)
    return scaled.replacing(with: 0, where: x .< lowest)
}

/// a × b + c: one fused instruction when the build says the CPU has FMA (`-DLOGITD_FMA`, set by
/// the Makefile with `-target-cpu native` on such a CPU); otherwise a multiply and an add, since
/// without FMA `addingProduct` becomes a library call per lane.
@inlinable @inline(__always)
func multiplyAdd(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>) -> SIMD16<Float> {
    #if LOGITD_FMA
    c.addingProduct(a, b)
    #else
    a * b + c
    #endif
}

@inlinable @inline(__always)
func multiplyAdd(_ a: SIMD16<Float>, _ b: Float, _ c: SIMD16<Float>) -> SIMD16<Float> {
    multiplyAdd(a, SIMD16(repeating: b), c)
}

@inlinable @inline(__always)
func multiplyAdd(_ a: SIMD16<Float>, _ b: Float, _ c: Float) -> SIMD16<Float> {
    multiplyAdd(a, SIMD16(repeating: b), SIMD16(repeating: c))
}
