/// Per-thread scratch memory for the chain, reused from row to row so the hot path does not
/// allocate. Not thread-safe: each worker owns one.
public final class Workspace {
    /// Two buffers, so a caller can prepare a row in one while the pipeline edits a copy in the other.
    enum Slot: Int {
        case pipeline = 0
        case input = 1
    }

    private var buffers: [UnsafeMutableBufferPointer<Float>]

    public init() {
        buffers = [.allocate(capacity: 16), .allocate(capacity: 16)]
    }

    deinit { buffers.forEach { $0.deallocate() } }

    /// A float32 buffer of `count` elements, valid until the next call for the same slot.
    func scratch(count: Int, slot: Slot = .pipeline) -> UnsafeMutableBufferPointer<Float> {
        if buffers[slot.rawValue].count < count {
            buffers[slot.rawValue].deallocate()
            buffers[slot.rawValue] = .allocate(capacity: count)
        }
        return UnsafeMutableBufferPointer(rebasing: buffers[slot.rawValue][0..<count])
    }
}
