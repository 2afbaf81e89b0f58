import Decoding
import Foundation
import LogitdProtocol
import LogitdServer

/// Coverage-guided fuzzing of the daemon's request path without sockets: the request decoder and
/// validator, and the decoding of the rows (every message type, masks, sparse rows, sessions).
///
/// An input is frames back to back, each a little-endian u16 length and that many bytes — what one
/// ZeroMQ multipart request would hold. Three sessions are opened for each input (greedy; sampling
/// with n = 2 and a chain; beam width 2; all vocab_size 16); a STEP, VERIFY or CLOSE naming session
/// 0, 1 or 2, and a batch table entry doing so, is pointed at them, so inputs reach the sessions.
///
/// `make fuzz` builds this with libFuzzer (`-sanitize=fuzzer,address`, LOGITD_FUZZ defined) and
/// runs it; a plain build makes a replayer that runs files (the corpus, a crash) through the same path.
enum FuzzTarget {
    static let handler = RequestHandler(
        welcome: Welcome(server: "fuzz", workers: 1, limits: ProtocolLimits(maxVocab: 4096, maxRows: 64, maxMessageBytes: 1 << 20)),
        maxSessions: 64)
    nonisolated(unsafe) static let workspace = Workspace()

    static let sessionParameters = [
        #"{"vocab_size": 16, "max_new_tokens": 4, "eos_token_ids": [0]}"#,
        #"{"vocab_size": 16, "strategy": "sample", "n": 2, "seed": 1, "top_k": 5, "top_p": 0.9, "xtc_probability": 0.5, "dry_multiplier": 0.5, "max_new_tokens": 4}"#,
        #"{"vocab_size": 16, "strategy": "beam", "beam_width": 2, "max_new_tokens": 4, "eos_token_ids": [0]}"#,
    ]

    static func split(_ data: UnsafeRawBufferPointer) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        var offset = 0
        while offset + 2 <= data.count, frames.count < 16 {
            let length = Int(data[offset]) | Int(data[offset + 1]) << 8
            offset += 2
            let end = min(data.count, offset + length)
            frames.append(Array(data[offset..<end]))
            offset = end
        }
        return frames
    }

    static func request(_ frames: [[UInt8]]) -> RequestHandler.Reply {
        frames.withUnsafeFrames { handler.handle($0, workspace: workspace) }
    }

    /// Runs one input; returns its request's error, if it was refused.
    @discardableResult
    static func run(_ data: UnsafeRawBufferPointer) -> ProtocolError? {
        var frames = split(data)
        guard !frames.isEmpty else { return nil }
        let ids: [UInt64] = sessionParameters.compactMap { json in
            let reply = request([Header(type: .open, requestID: 0).encoded, Array(json.utf8)])
            return reply.frames.count == 2 ? try? reply.frames[1].withUnsafeBytes(OpenedReply.parse).session : nil
        }
        func substitute(_ frame: inout [UInt8], at offset: Int) {
            guard frame.count >= offset + 8 else { return }
            let named = frame[offset..<(offset + 8)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard named < UInt64(ids.count) else { return }
            withUnsafeBytes(of: ids[Int(named)].littleEndian) { frame.replaceSubrange(offset..<(offset + 8), with: $0) }
        }
        if frames.count > 1, frames[0].count == Header.size, let type = MessageType(rawValue: frames[0][5]) {
            switch type {
            case .step, .verify, .close: substitute(&frames[1], at: 0)
            case .batchStep, .batchVerify:
                for entry in 0..<min(8, max(0, (frames[1].count - 16) / 16)) { substitute(&frames[1], at: 16 + 16 * entry) }
            default: break
            }
        }
        let reply = request(frames)
        for id in ids {
            var body: [UInt8] = []
            withUnsafeBytes(of: id.littleEndian) { body += $0 }
            _ = request([Header(type: .close, requestID: 0).encoded, body])
        }
        return reply.error
    }
}

#if LOGITD_FUZZ
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

/// SwiftPM points an executable's `main` at `<product>_main`: here it starts libFuzzer's driver.
@_cdecl("logitd_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> Int32 {
    var count = argc
    var arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return runFuzzerDriver(&count, &arguments, fuzzOneInput)
}
#else
/// The replayer: `logitd-fuzz FILE|DIRECTORY…` runs every file through the fuzzed path.
@main
struct Replay {
    static func main() throws {
        var files: [String] = []
        for argument in CommandLine.arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                files += (try FileManager.default.contentsOfDirectory(atPath: argument)).filter { !$0.hasPrefix(".") }.sorted()
                    .map { (argument as NSString).appendingPathComponent($0) }
            } else {
                files.append(argument)
            }
        }
        var refused: [String] = []
        for file in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: file))
            if let error = data.withUnsafeBytes({ FuzzTarget.run($0) }) { refused.append("\((file as NSString).lastPathComponent): \(error)") }
        }
        print("replayed \(files.count) inputs, \(files.count - refused.count) answered, \(refused.count) refused")
        for line in refused { print("  \(line)") }
    }
}
#endif
