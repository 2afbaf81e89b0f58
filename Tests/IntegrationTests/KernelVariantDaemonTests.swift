import Decoding
import Foundation
import LogitdClient
import LogitdProtocol
import Testing

/// The daemon under each kernel variant this CPU runs (LOGITD_KERNELS): it says which in WELCOME
/// and --version, refuses a variant it cannot run, and decodes the same seeded sessions to the
/// same tokens, log-probabilities, beams and results.
@Suite("Kernel variants through the daemon", .serialized)
struct KernelVariantDaemonTests {
    static let vocab = 32_000

    /// Everything a client sees of one greedy, one sampling (a full chain, three sequences, with
    /// alternatives) and one beam session.
    static func transcript(_ endpoint: String) throws -> [String] {
        let client = try LogitdClient(endpoint: endpoint)
        defer { client.close() }
        var sessions: [SessionParameters] = []
        for strategy in [Strategy.greedy, .sample, .beam] {
            var parameters = SessionParameters(strategy: strategy, vocabSize: vocab)
            parameters.maxNewTokens = 10
            parameters.processors.eosTokens = [0]
            parameters.promptTokenIDs = [5, 6, 7]
            parameters.processors.repetitionPenalty = 1.1
            if strategy == .sample {
                parameters.n = 3
                parameters.seed = 2026
                parameters.logprobs = 3
                parameters.processors.temperature = 0.8
                parameters.processors.topK = 200
                parameters.processors.topP = 0.9
                parameters.processors.minP = 0.01
            }
            sessions.append(parameters)
        }
        var lines: [String] = []
        for parameters in sessions {
            let session = try client.open(parameters)
            for event in try session.run(model: { rows(for: $0, vocab: vocab) }) {
                // Everything but the session id, which is random.
                let result = event.result.map { "\($0.steps) \($0.sequences)" } ?? "-"
                lines.append("\(event.tokens) \(event.beams) \(event.alternatives) \(event.finished) \(result)")
            }
        }
        return lines
    }

    @Test("every supported variant: named in WELCOME, and the same seeded sessions give the same replies")
    func sameSessions() throws {
        var reference: (KernelVariant, [String])?
        for variant in Kernels.supported {
            let daemon = try DaemonProcess(environment: [Kernels.environmentVariable: variant.rawValue])
            let client = try LogitdClient(endpoint: daemon.endpoint)
            #expect(try client.hello().kernels == variant.rawValue)
            client.close()
            let lines = try Self.transcript(daemon.endpoint)
            #expect(lines.count > 20)
            if let (first, expected) = reference {
                #expect(lines == expected, "\(variant) decodes differently from \(first)")
            } else {
                reference = (variant, lines)
            }
            daemon.stop()
        }
    }

    #if arch(x86_64)
    /// CPUs without AVX-512 and without AVX at all, emulated by qemu-user (make installs it).
    @Test("on an emulated CPU without AVX-512 (Haswell) or AVX (Nehalem), the daemon picks the variant that CPU has and decodes the same sessions", arguments: [("Haswell", KernelVariant.avx2), ("Nehalem", .baseline)])
    func emulatedCPU(cpu: String, expected: KernelVariant) throws {
        let qemu = "/usr/bin/qemu-x86_64"
        #expect(FileManager.default.isExecutableFile(atPath: qemu), "qemu-user is missing: make deps installs it")
        let native = try DaemonProcess()
        let reference = try Self.transcript(native.endpoint)
        native.stop()
        let emulated = try DaemonProcess(launcher: [qemu, "-cpu", cpu])
        let client = try LogitdClient(endpoint: emulated.endpoint)
        #expect(try client.hello().kernels == expected.rawValue)
        client.close()
        #expect(try Self.transcript(emulated.endpoint) == reference, "\(cpu) decodes differently from this CPU")
        emulated.stop()
    }
    #endif

    @Test("--version and `logitd kernels` name the variant in use")
    func named() throws {
        for variant in Kernels.supported {
            let environment = [Kernels.environmentVariable: variant.rawValue]
            let version = try runDaemonToCompletion(["--version"], environment: environment)
            #expect(version.status == 0)
            #expect(version.stdout.contains("kernels: \(variant)"), "\(version.stdout)")
            let listing = try runDaemonToCompletion(["kernels"], environment: environment)
            #expect(listing.stdout.split(separator: "\n").contains { $0.hasPrefix(variant.rawValue) && $0.hasSuffix("in use") }, "\(listing.stdout)")
        }
        let supported = try runDaemonToCompletion(["kernels", "--supported"])
        #expect(supported.stdout.split(separator: "\n").map(String.init) == Kernels.supported.map(\.rawValue))
    }

    @Test("an unknown variant, or one this CPU lacks, is a clear start-up error")
    func refused() throws {
        let unknown = try runDaemonExpectingExit(["serve", "--bind", TestEndpointName.unused], environment: [Kernels.environmentVariable: "sse9"])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("LOGITD_KERNELS=sse9 is not a kernel variant"), "\(unknown.stderr)")
        // On x86-64 `portable` is never built in, so there is always at least one here.
        let lacking = KernelVariant.allCases.filter { !$0.isSupported }
        #expect(!lacking.isEmpty)
        for variant in lacking {
            let result = try runDaemonExpectingExit(["serve", "--bind", TestEndpointName.unused], environment: [Kernels.environmentVariable: variant.rawValue])
            #expect(result.status != 0)
            #expect(result.stderr.contains("cannot run the \(variant) kernels"), "\(result.stderr)")
        }
    }
}

private enum TestEndpointName {
    /// An endpoint no test binds: the daemon must refuse before it binds anything.
    static let unused = "ipc:///tmp/logitd-kernels-refused-\(getpid()).sock"
}
