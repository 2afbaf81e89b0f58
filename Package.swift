// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "logitd",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "logitd", targets: ["logitd"]),
        .executable(name: "logitd-bench", targets: ["logitd-bench"]),
        .executable(name: "model-loop", targets: ["model-loop"]),
        .executable(name: "translate-demo", targets: ["translate-demo"]),
        .library(name: "ZeroMQ", targets: ["ZeroMQ"]),
        .library(name: "Decoding", targets: ["Decoding"]),
        .library(name: "LogitdProtocol", targets: ["LogitdProtocol"]),
        .library(name: "LogitdClient", targets: ["LogitdClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        // Metrics: swift-prometheus's registry and text format, served over HTTP by swift-nio
        // (NIOHTTP1 alone: one GET needs no framework; hummingbird would add its own targets on top
        // of swift-nio to every clean-clone CI build).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // libzmq, found through pkg-config; Debian's libzmq3-dev provides it.
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"]), .brew(["zeromq"])]
        ),
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"]),
        // The passes over a row, built for several instruction sets in one binary and chosen at
        // run time (AVX-512, AVX2, baseline x86-64; portable elsewhere): no build flags needed.
        .target(name: "CLogitKernels"),
        .target(
            name: "Decoding",
            dependencies: ["CLogitKernels", .product(name: "RealModule", package: "swift-numerics")]
        ),
        .target(name: "LogitdProtocol", dependencies: ["Decoding"]),
        .target(
            name: "LogitdServer",
            dependencies: [
                "ZeroMQ", "Decoding", "LogitdProtocol",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "RealModule", package: "swift-numerics"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(name: "LogitdClient", dependencies: ["ZeroMQ", "LogitdProtocol"]),
        .executableTarget(
            name: "logitd",
            dependencies: [
                "LogitdServer", "Decoding",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Free ports and unique endpoints, shared by the test targets.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        // The translation demo's model and metrics (Demos/Translation).
        .target(
            name: "TranslationModel",
            dependencies: [.product(name: "RealModule", package: "swift-numerics")],
            path: "Demos/Translation/Model"
        ),
        .executableTarget(
            name: "translate-demo",
            dependencies: ["TranslationModel", "LogitdClient", "Decoding", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Demos/Translation/Sources"
        ),
        .executableTarget(
            name: "model-loop",
            dependencies: ["LogitdClient", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "logitd-bench",
            dependencies: [
                "Decoding", "ZeroMQ", "LogitdProtocol", "LogitdClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The request path under libFuzzer (`make fuzz`); a plain build replays inputs through it.
        .executableTarget(name: "logitd-fuzz", dependencies: ["LogitdServer", "LogitdProtocol", "Decoding"]),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ", "TestSupport"]),
        .testTarget(name: "DecodingTests", dependencies: ["Decoding"]),
        .testTarget(name: "LogitdProtocolTests", dependencies: ["LogitdProtocol"]),
        .testTarget(name: "LogitdServerTests", dependencies: ["LogitdServer"]),
        .testTarget(name: "TranslationTests", dependencies: ["TranslationModel", "Decoding"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["LogitdClient", "LogitdProtocol", "Decoding", "ZeroMQ", "TestSupport"]
        ),
    ]
)
