import Decoding

/// The mask frame of a DECODE, PROBS or STEP sent with the header flag `Header.maskFollows`: for
/// each row, ceil(V / 32) little-endian u32 words, bit j of word w allowing token 32·w + j (the
/// buffer llguidance and xgrammar write); either one mask row per logits row, or one for them all.
public struct RowMasks: @unchecked Sendable {
    public let frame: UnsafeRawBufferPointer
    /// Bytes of one mask row.
    public let rowBytes: Int
    /// Whether one mask row applies to every logits row.
    public let shared: Bool

    /// Checks the frame's size for `rows` rows over a vocabulary of `vocab` tokens.
    public static func parse(_ frame: UnsafeRawBufferPointer, rows: Int, vocab: Int) throws(ProtocolError) -> RowMasks {
        let rowBytes = LogitRow.maskByteCount(count: vocab)
        guard frame.count == rows * rowBytes || frame.count == rowBytes else {
            throw ProtocolError(.badShape, "the mask frame has \(frame.count) bytes; \(rows) rows × \(rowBytes / 4) words × 4 bytes is \(rows * rowBytes) (or one mask row for all: \(rowBytes))")
        }
        return RowMasks(frame: frame, rowBytes: rowBytes, shared: frame.count == rowBytes)
    }

    /// The mask row of logits row `index`.
    public func mask(forRow index: Int) -> UnsafeRawBufferPointer {
        let start = shared ? 0 : index * rowBytes
        return UnsafeRawBufferPointer(rebasing: frame[start..<(start + rowBytes)])
    }

    /// The part of the frame for logits rows `rows` of a batch (the whole frame when one mask row
    /// is shared), which the entry's session reads as its own mask frame.
    public func frame(forRows rows: Range<Int>) -> UnsafeRawBufferPointer {
        shared ? frame : UnsafeRawBufferPointer(rebasing: frame[(rows.lowerBound * rowBytes)..<(rows.upperBound * rowBytes)])
    }

    /// Whether row `index`'s mask allows `token`.
    public func allows(_ token: Int, row index: Int) -> Bool {
        LogitRow.mask(mask(forRow: index).baseAddress!, allows: token)
    }

    /// `row` read through row `index`'s mask.
    public func masked(_ row: LogitRow, _ index: Int) -> LogitRow {
        LogitRow(bytes: UnsafeRawBufferPointer(start: row.base, count: row.count * row.dtype.byteWidth), dtype: row.dtype, mask: mask(forRow: index))
    }
}
