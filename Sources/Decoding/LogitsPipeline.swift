import RealModule

/// The logits-processing chain for one set of settings: the sequence-dependent edits, then (when
/// sampling) the warpers, in `settings.order`.
///
/// Edits need a writable row, so when any edit is active the row is first copied (and widened) into
/// the workspace; a chain of warpers alone reads the row in place. The first warper that removes
/// tokens turns the row into a short candidate list, which the rest of the chain works on.
public struct LogitsPipeline: Sendable {
    public let settings: ProcessorSettings
    private let edits: [ProcessorKind]
    private let warpers: [ProcessorKind]
    private let stages: [ProcessorKind]

    public init(settings: ProcessorSettings) {
        self.settings = settings
        stages = settings.activeStages
        edits = stages.filter { !$0.isWarper }
        warpers = stages.filter(\.isWarper)
    }

    /// Whether the chain changes the row at all when `sampling` (warpers included) or not.
    public func isIdentity(sampling: Bool) -> Bool {
        sampling ? stages.isEmpty : edits.isEmpty
    }

    /// The stages that run: the edits, the warpers too when `sampling`, and without the stages
    /// that remove tokens unless `truncating`.
    private func running(sampling: Bool, truncating: Bool) -> [ProcessorKind] {
        let chosen = sampling ? stages : edits
        return truncating ? chosen : chosen.filter { !$0.truncates }
    }

    /// Runs the chain on `row` for a sequence with `history`. Warpers run only when `sampling`
    /// (greedy and beam search use the edits alone, as Hugging Face does); without `truncating`,
    /// the stages that remove tokens are skipped (the distribution of `logprobs_mode`
    /// "temperature"). The result may point into `workspace`: use it before the workspace's next use.
    public func candidates(for row: LogitRow, history: TokenHistory, sampling: Bool, truncating: Bool = true, state: StageState = StageState(), workspace: Workspace) throws(LogitRowError) -> CandidateSet {
        var summary = try row.validatedSummary(workspace, slot: .pipelineBlocks)
        var set = CandidateSet.dense(row, scale: 1)
        for stage in running(sampling: sampling, truncating: truncating) {
            switch (stage.isWarper, set) {
            case (false, .dense(let dense, let scale)):
                let values = workspace.scratch(count: dense.count)
                dense.write(scale: scale, into: values)
                var target = DenseEdits(values: values)
                settings.applyEdit(stage, to: &target, history: history)
                let edited = LogitRow(bytes: UnsafeRawBufferPointer(values), dtype: .float32)
                guard let editedSummary = try? edited.validatedSummary(workspace, slot: .pipelineBlocks) else { throw .noCandidates }
                summary = editedSummary
                set = .dense(edited, scale: 1)
            case (false, .sparse(let candidates)):
                var target = SparseEdits(candidates: candidates)
                settings.applyEdit(stage, to: &target, history: history)
                set = .sparse(target.candidates)
            case (true, _):
                set = warp(set, stage, summary: summary, state: state, workspace: workspace)
            }
            if case .sparse(let candidates) = set, candidates.isEmpty { throw .noCandidates }
        }
        return set
    }

    /// Runs the chain on a row given as candidates (every other token -inf), without ever
    /// building the dense row: the result equals that of the dense row. `candidates` must hold
    /// distinct tokens; they are validated here (no NaN or +inf, not all -inf).
    public func candidates(forSparse candidates: [Candidate], history: TokenHistory, sampling: Bool, truncating: Bool = true, state: StageState = StageState()) throws(LogitRowError) -> CandidateSet {
        guard !candidates.isEmpty else { throw .empty }
        for candidate in candidates {
            if candidate.logit.isNaN { throw .notANumber(index: Int(candidate.token)) }
            if candidate.logit == .infinity { throw .positiveInfinity(index: Int(candidate.token)) }
        }
        var list = candidates.filter { $0.logit > -.infinity }.sorted { $0.token < $1.token }
        guard !list.isEmpty else { throw .allMasked }
        for stage in running(sampling: sampling, truncating: truncating) {
            if stage.isWarper {
                guard case .sparse(let warped) = warp(.sparse(list), stage, summary: nil, state: state, workspace: nil) else { continue }
                list = warped
            } else {
                var target = SparseEdits(candidates: list)
                settings.applyEdit(stage, to: &target, history: history)
                list = target.candidates
            }
            if list.isEmpty { throw .noCandidates }
        }
        return .sparse(list)
    }

    /// `summary` and `workspace` are needed for dense sets only.
    private func warp(_ set: CandidateSet, _ stage: ProcessorKind, summary: RowSummary?, state: StageState, workspace: Workspace?) -> CandidateSet {
        let minKeep = settings.minTokensToKeep
        // XTC fires on its coin; mirostat needs the sequence's μ (greedy and scoring have neither).
        if stage == .xtc && !(state.xtcCoin.map { $0 < Double(settings.xtcProbability) } ?? false) { return set }
        if stage == .mirostat && state.mirostatMu == nil { return set }
        switch set {
        case .dense(let row, let scale):
            guard let summary, let workspace else { preconditionFailure("a dense set needs its row summary and a workspace") }
            switch stage {
            case .temperature where settings.dynatempRange > 0:
                return Warpers.dynamicTemperature(row, scale: scale, summary: summary, settings: settings)
            case .temperature: return .dense(row, scale: scale / settings.temperature)
            case .topK: return .sparse(Warpers.topK(row, summary: summary, scale: scale, k: max(settings.topK, minKeep), workspace: workspace))
            case .topP: return .sparse(Warpers.topP(row, summary: summary, scale: scale, p: settings.topP, minKeep: minKeep, workspace: workspace))
            case .minP: return .sparse(Warpers.minP(row, summary: summary, scale: scale, minP: settings.minP, minKeep: minKeep, workspace: workspace))
            case .typicalP: return .sparse(Warpers.typical(set.materialized(), mass: settings.typicalP, minKeep: minKeep))
            case .epsilon: return .sparse(Warpers.epsilon(row, summary: summary, scale: scale, cutoff: settings.epsilonCutoff, minKeep: minKeep, workspace: workspace))
            case .eta: return .sparse(Warpers.eta(set.materialized(), cutoff: settings.etaCutoff, minKeep: minKeep))
            case .topNSigma: return .sparse(Warpers.topNSigma(row, summary: summary, scale: scale, n: settings.topNSigma, workspace: workspace))
            case .xtc: return Warpers.xtc(row, summary: summary, scale: scale, threshold: settings.xtcThreshold, minKeep: minKeep, workspace: workspace)
            case .mirostat: return .sparse(Warpers.mirostat(row, summary: summary, scale: scale, mu: state.mirostatMu!, workspace: workspace))
            default: preconditionFailure("\(stage) is not a warper")
            }
        case .sparse(var candidates):
            switch stage {
            case .temperature where settings.dynatempRange > 0:
                return .sparse(Warpers.dynamicTemperature(candidates, settings: settings))
            case .temperature:
                let inverse = 1 / settings.temperature
                for index in candidates.indices { candidates[index].logit *= inverse }
                return .sparse(candidates)
            case .topK: return .sparse(Warpers.topK(candidates, k: max(settings.topK, minKeep)))
            case .topP: return .sparse(Warpers.topP(candidates, p: settings.topP, minKeep: minKeep))
            case .minP: return .sparse(Warpers.minP(candidates, minP: settings.minP, minKeep: minKeep))
            case .typicalP: return .sparse(Warpers.typical(candidates, mass: settings.typicalP, minKeep: minKeep))
            case .epsilon: return .sparse(Warpers.epsilon(candidates, cutoff: settings.epsilonCutoff, minKeep: minKeep))
            case .eta: return .sparse(Warpers.eta(candidates, cutoff: settings.etaCutoff, minKeep: minKeep))
            case .topNSigma: return .sparse(Warpers.topNSigma(candidates, n: settings.topNSigma))
            case .xtc: return .sparse(Warpers.xtc(candidates, threshold: settings.xtcThreshold, minKeep: minKeep))
            case .mirostat: return .sparse(Warpers.mirostat(candidates, mu: state.mirostatMu!))
            default: preconditionFailure("\(stage) is not a warper")
            }
        }
    }
}
