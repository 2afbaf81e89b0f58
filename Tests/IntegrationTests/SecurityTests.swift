import Decoding
import Foundation
import LogitdClient
import LogitdProtocol
import Testing
import ZeroMQ

/// CURVE from the Swift client over real tcp.
@Suite("CURVE and session ownership from the Swift client")
struct SecurityClientTests {
    @Test("an authorized key decodes and owns its sessions; another key cannot see them; an unknown key gets no reply")
    func curve() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("logitd-curve-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try CurveKeyPair.generate(), a = try CurveKeyPair.generate(), b = try CurveKeyPair.generate(), stranger = try CurveKeyPair.generate()
        try "# server\n\(server.secretKey)\n".write(to: directory.appendingPathComponent("server.key"), atomically: true, encoding: .utf8)
        try "\(a.publicKey)\n\(b.publicKey)\n".write(to: directory.appendingPathComponent("clients"), atomically: true, encoding: .utf8)
        let config = directory.appendingPathComponent("logitd.toml")
        try "[security]\nsecret_key_file = \"server.key\"\nauthorized_keys = \"clients\"\n".write(to: config, atomically: true, encoding: .utf8)
        let daemon = try DaemonProcess(transport: .tcp, extraArguments: ["--config", config.path], curve: (server.publicKey, a))
        let clientA = try LogitdClient(endpoint: daemon.endpoint, serverKey: server.publicKey, keyPair: a)
        let clientB = try LogitdClient(endpoint: daemon.endpoint, serverKey: server.publicKey, keyPair: b)
        let strangerClient = try LogitdClient(endpoint: daemon.endpoint, timeout: .milliseconds(500), serverKey: server.publicKey, keyPair: stranger)
        defer { clientA.close(); clientB.close(); strangerClient.close() }
        var parameters = SessionParameters(strategy: .greedy, vocabSize: 8)
        parameters.maxNewTokens = 2
        let session = try clientA.open(parameters)
        let row: [Float] = [0, 1, 2, 7, 3, 0, 0, 0]
        #expect(try session.step(row).tokens.map(\.token) == [3])
        do {
            var closeFrame: [UInt8] = []
            withUnsafeBytes(of: session.id.littleEndian) { closeFrame += $0 }
            _ = try clientB.request(.close, frames: [try Message(closeFrame)], expecting: .closed, bodyFrames: 1)
            Issue.record("client B closed client A's session")
        } catch LogitdClientError.server(let error) {
            #expect(error.code == .unknownSession)
        }
        #expect(try session.step(row).tokens.map(\.token) == [3], "A's session is as it was")
        #expect(throws: LogitdClientError.self) { try strangerClient.hello() }
        #expect(daemon.stderr.contains("refused a CURVE handshake"))
    }
}
