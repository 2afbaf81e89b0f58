import ArgumentParser
import ZeroMQ

/// `logitd-bench echo-server`: the ceiling for the end-to-end benchmark. A minimal ROUTER that
/// answers every request with its 16-byte header, touching nothing else: what moving the frames
/// costs, with no decoding at all.
struct EchoServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "echo-server", abstract: "A raw libzmq echo, for e2e's baseline.", shouldDisplay: false)

    @Option(help: "Endpoints to bind.")
    var bind: [String]

    func run() throws {
        let context = try Context()
        let router = try context.socket(.router)
        try router.setLinger(.zero)
        try router.setSendHighWaterMark(0)
        try router.setReceiveHighWaterMark(0)
        for endpoint in bind { try router.bind(endpoint) }
        while true {
            let frames = try router.receiveMultipart()
            guard frames.count >= 2 else { continue }
            // [client id, header, …] → [client id, header]: 16 bytes back.
            try router.send(frames[0], flags: .more)
            try router.send(frames[1])
        }
    }
}
