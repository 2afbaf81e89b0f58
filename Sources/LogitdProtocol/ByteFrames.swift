extension Array where Element == [UInt8] {
    /// Lends frames held as byte arrays to the parsers, which read frames in place. For callers whose
    /// transport hands them `[UInt8]` frames rather than ZeroMQ messages.
    public func withUnsafeFrames<R>(_ body: ([UnsafeRawBufferPointer]) throws -> R) rethrows -> R {
        let storage = map { bytes -> UnsafeMutableRawBufferPointer in
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 16)
            copy.copyBytes(from: bytes)
            return copy
        }
        defer { storage.forEach { $0.deallocate() } }
        return try body(storage.map(UnsafeRawBufferPointer.init))
    }
}
