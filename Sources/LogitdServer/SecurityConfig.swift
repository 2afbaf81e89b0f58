import Foundation
import ZeroMQ

/// CURVE encryption and the clients admitted (`[security]` in the config): the server's secret key,
/// and the public keys of the clients the ZAP handler lets in.
public struct SecurityConfig: Equatable, Sendable {
    /// The server's secret key (Z85); clients need its public key (`publicKey`).
    public var secretKey: String
    /// Client public keys (Z85) admitted.
    public var authorizedKeys: Set<String>

    public init(secretKey: String, authorizedKeys: Set<String>) {
        self.secretKey = secretKey
        self.authorizedKeys = authorizedKeys
    }

    public var publicKey: String { CurveKeyPair.publicKey(ofSecret: secretKey) ?? "" }

    /// The first line of a key file that is neither empty nor a `#` comment, trimmed: the format
    /// `logitd keygen` writes (zmq_curve_keypair's Z85 text).
    static func keys(inFile path: String) throws(ConfigError) -> [String] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError("cannot read key file \(path): \(error.localizedDescription)")
        }
        // Z85 has "#" among its characters: a comment is a "#" line that is not a key.
        let keys = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !($0.hasPrefix("#") && !CurveKeyPair.isKey($0)) }
        for key in keys where !CurveKeyPair.isKey(key) {
            throw ConfigError("\(path): \"\(key.prefix(12))…\" is not a 40-character Z85 CURVE key")
        }
        return keys
    }

    /// A file of public keys (one per line) or a directory of `*.pub` files.
    static func authorizedKeys(at path: String) throws(ConfigError) -> Set<String> {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigError("security.authorized_keys: \(path) does not exist")
        }
        guard isDirectory.boolValue else { return Set(try keys(inFile: path)) }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(".pub") }.sorted()
        var keys = Set<String>()
        for name in names { keys.formUnion(try Self.keys(inFile: (path as NSString).appendingPathComponent(name))) }
        return keys
    }

    /// Whether a tcp endpoint is bound to a loopback address only.
    static func isLoopback(_ endpoint: String) -> Bool {
        guard endpoint.hasPrefix("tcp://") else { return true }
        let address = endpoint.dropFirst(6)
        let host = address.hasPrefix("[") ? String(address.dropFirst().prefix { $0 != "]" }) : String(address.prefix { $0 != ":" })
        return host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
