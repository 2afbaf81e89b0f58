/// Per-thread scratch memory for the chain, reused from row to row so the hot path does not
/// allocate. Not thread-safe: each worker owns one.
public final class Workspace {
    /// Separate buffers, so a caller can prepare a row (and its block maxima) in one while the
    /// pipeline edits a copy in another.
    enum Slot: Int, CaseIterable {
        case pipeline = 0
        case input = 1
        case pipelineBlocks = 2
        case inputBlocks = 3
    }

    private var buffers: [UnsafeMutableBufferPointer<Float>]
    private var candidates: UnsafeMutableBufferPointer<Candidate> = .allocate(capacity: 16)

    public init() {
        buffers = Slot.allCases.map { _ in .allocate(capacity: 16) }
    }

    deinit {
        buffers.forEach { $0.deallocate() }
        candidates.deallocate()
    }

    /// Room for `count` candidates, valid until the next call: collection kernels write here so a
    /// large head does not cost a fresh allocation (and its page faults) on every row.
    func candidateScratch(count: Int) -> UnsafeMutableBufferPointer<Candidate> {
        if candidates.count < count {
            candidates.deallocate()
            candidates = .allocate(capacity: count)
        }
        return candidates
    }

    /// A float32 buffer of `count` elements, valid until the next call for the same slot.
    func scratch(count: Int, slot: Slot = .pipeline) -> UnsafeMutableBufferPointer<Float> {
        if buffers[slot.rawValue].count < count {
            buffers[slot.rawValue].deallocate()
            buffers[slot.rawValue] = .allocate(capacity: count)
        }
        return UnsafeMutableBufferPointer(rebasing: buffers[slot.rawValue][0..<count])
    }
}
