import LogitdProtocol

extension MessageType {
    /// The type's name as a metric label: snake case, as PROTOCOL.md names it (batch_step, …).
    var metricLabel: String {
        String(describing: self).reduce(into: "") { name, character in
            if character.isUppercase { name += "_" + character.lowercased() } else { name.append(character) }
        }
    }
}

extension Request {
    /// Rows of logits the request carries, and their bytes.
    var decodedShape: (rows: Int, bytes: Int) {
        switch self {
        case .decode(let request): (request.descriptor.rows, request.logits.count)
        case .probs(let request): (request.rows.descriptor.rows, request.rows.logits.count)
        case .score(let request): (request.rows.descriptor.rows, request.rows.logits.count)
        case .classify(let request): (request.rows.descriptor.rows, request.rows.logits.count)
        case .step(let step): (step.descriptor.rows, step.logits.count)
        case .batchStep(let steps): steps.reduce((0, 0)) { ($0.0 + $1.descriptor.rows, $0.1 + $1.logits.count) }
        case .verify(let verify): (verify.descriptor.draftTokens + 1, verify.targets.count)
        case .batchVerify(let verifications): verifications.reduce((0, 0)) { ($0.0 + $1.descriptor.draftTokens + 1, $0.1 + $1.targets.count) }
        case .hello, .ping, .open, .close: (0, 0)
        }
    }
}
