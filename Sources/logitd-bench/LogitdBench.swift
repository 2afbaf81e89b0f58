import ArgumentParser

@main
struct LogitdBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logitd-bench",
        abstract: "Benchmarks for logitd; every timing is printed beside a baseline measured in the same run.",
        subcommands: [KernelsCommand.self, E2ECommand.self, SpeculativeCommand.self, FairnessCommand.self, EchoServerCommand.self]
    )
}
