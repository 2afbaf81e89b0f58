import Decoding
import Testing

/// The thinking budget's forcing rule, read from the tokens alone.
@Suite struct ThinkingBudgetTests {
    static let budget = ThinkingBudget(start: [100], end: [200, 201], budget: 3)

    @Test("forces the end sequence once the span holds the budget, one token per step, then stops")
    func forcing() {
        func forced(_ prompt: [Int], _ generated: [Int]) -> Int? { Self.budget.forcedToken(TokenHistory(prompt: prompt, generated: generated)) }
        // The span opened in the prompt: only generated tokens count.
        #expect(forced([1, 100, 5, 6], []) == nil)
        #expect(forced([1, 100], [7, 8]) == nil)
        #expect(forced([1, 100], [7, 8, 9]) == 200)
        #expect(forced([1, 100], [7, 8, 9, 200]) == 201)
        #expect(forced([1, 100], [7, 8, 9, 200, 201]) == nil)
        #expect(forced([1, 100], [7, 8, 9, 200, 201, 4, 4, 4, 4]) == nil, "a closed span stays closed")
        // A span opened in the output counts from its start token.
        #expect(forced([1], [2, 100, 3, 4]) == nil)
        #expect(forced([1], [2, 100, 3, 4, 5]) == 200)
        // A model that began the end sequence itself is continued, not restarted.
        #expect(forced([100], [3, 4, 200]) == 201)
        // A new span after a closed one has its own budget.
        #expect(forced([100], [200, 201, 100, 1, 2]) == nil)
        #expect(forced([100], [200, 201, 100, 1, 2, 3]) == 200)
        // No start sequence: nothing to force.
        #expect(forced([1, 2], [3, 4, 5, 6, 7]) == nil)
        // Budget 0: the end sequence right away.
        #expect(ThinkingBudget(start: [100], end: [200], budget: 0).forcedToken(TokenHistory(prompt: [100])) == 200)
    }

    @Test("a forced token's report: the untruncated chain's log-probability, the raw rank, support of one")
    func forcedReport() throws {
        var settings = ProcessorSettings()
        settings.topK = 2
        settings.temperature = 0.5
        let logits: [Float] = [3, 2, 1, 0, -1]
        let selector = TokenSelector(settings: settings, seed: 1)
        let report = try logits.withUnsafeBytes {
            try selector.forced(4, row: LogitRow(bytes: $0, dtype: .float32), sparse: nil, vocab: 5, history: TokenHistory(),
                                request: ReportRequest(rank: true, support: true), workspace: Workspace())
        }
        let expected = Reference.logSoftmax(logits.map { Double($0) / 0.5 })[4]
        #expect(report.choice.token == 4 && abs(Double(report.choice.logprob) - expected) < 1e-5)
        #expect(report.rank == 5 && report.support == [4])
    }
}
