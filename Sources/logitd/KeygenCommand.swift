import ArgumentParser
import Foundation
import ZeroMQ

/// `logitd keygen --out NAME`: a CURVE key pair from libzmq's zmq_curve_keypair, as two Z85 text
/// files — NAME.pub (share it) and NAME.key (secret, mode 0600).
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a CURVE key pair: NAME.pub (public) and NAME.key (secret, mode 0600), Z85 text.")

    @Option(help: "Path and name of the pair, without extension.")
    var out: String

    @Flag(help: "Replace files that exist.")
    var force = false

    func run() throws {
        let pair = try CurveKeyPair.generate()
        let publicPath = out + ".pub", secretPath = out + ".key"
        for path in [publicPath, secretPath] where FileManager.default.fileExists(atPath: path) && !force {
            throw ValidationError("\(path) exists; pass --force to replace it")
        }
        // The secret file is created 0600 before anything is written to it.
        let secret = "# logitd CURVE secret key (Z85). Keep it private: whoever holds it is this peer.\n\(pair.secretKey)\n"
        guard FileManager.default.createFile(atPath: secretPath, contents: Data(), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("cannot create \(secretPath)")
        }
        try secret.write(toFile: secretPath, atomically: false, encoding: .utf8)
        try "\(pair.publicKey)\n".write(toFile: publicPath, atomically: true, encoding: .utf8)
        print("public key \(pair.publicKey)")
        print("wrote \(publicPath) and \(secretPath) (mode 0600)")
    }
}
