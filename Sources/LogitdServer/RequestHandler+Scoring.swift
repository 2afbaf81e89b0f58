import Decoding
import LogitdProtocol

extension RequestHandler {
    /// SCORED's records: row i scored as the token after the prompt and the observed tokens before it.
    func score(_ request: ScoreRequest, workspace: Workspace) throws(ProtocolError) -> [TokenScore] {
        let pipeline = LogitsPipeline(settings: request.parameters.processors)
        var history = TokenHistory(prompt: request.parameters.promptTokenIDs)
        var scores: [TokenScore] = []
        scores.reserveCapacity(request.tokens.count)
        for (index, token) in request.tokens.enumerated() {
            do throws(LogitRowError) {
                scores.append(try pipeline.score(token, row: request.rows.row(index), history: history, workspace: workspace))
            } catch {
                throw ProtocolError(row: index, error)
            }
            history.generated.append(token)
        }
        return scores
    }

    /// CLASSIFIED's two frames.
    func classify(_ request: ClassifyRequest) throws(ProtocolError) -> [[UInt8]] {
        var rows: [(probabilities: [Float], logMass: Float)] = []
        for index in 0..<request.rows.descriptor.rows {
            do throws(LogitRowError) {
                rows.append(try Classification.classify(request.rows.row(index), tokens: request.parameters.tokenIDs, temperature: request.parameters.temperature))
            } catch {
                throw ProtocolError(row: index, error)
            }
        }
        return ClassifiedBody.encode(rows)
    }
}
