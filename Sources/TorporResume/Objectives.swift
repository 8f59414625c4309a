import Foundation
public import TorporPolicies
public import TorporReports

/// Percentiles and objectives over resume times. One definition, used by
/// the tracker (after every completed resume) and by the report, so that
/// the two always agree.
public enum ResumeStatistics {
    /// The nearest-rank percentile of sorted values: the smallest value with
    /// at least `p` of the values at or below it. No interpolation: every
    /// figure reported is a resume that really happened.
    public static func percentile(_ sorted: [Double], _ p: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        let rank = Swift.max(1, Int((p * Double(sorted.count)).rounded(.up)))
        return sorted[Swift.min(rank, sorted.count) - 1]
    }

    /// The resume times that objectives are held to: completed resumes'
    /// readiness times, and every timeout as infinitely slow. Failed starts
    /// are not resume times (they are counted apart).
    public static func resumeTimes(_ records: [ResumeRecord]) -> [(record: ResumeRecord, seconds: Double)] {
        records.compactMap { record in
            switch record.state {
            case .complete: return record.resumeSeconds.map { (record, $0) }
            case .timedOut: return (record, .infinity)
            case .tracking: return record.resumeSeconds.map { (record, $0) }
            case .failed: return nil
            }
        }
    }

    /// The objectives `records` do not meet, each with the instances slower
    /// than its limit (slowest first).
    public static func violations(_ records: [ResumeRecord], objectives: ResumeObjectives) -> [ObjectiveViolation] {
        let times = resumeTimes(records).sorted { $0.seconds > $1.seconds }
        let sorted = times.map(\.seconds).reversed() as [Double]
        var result: [ObjectiveViolation] = []
        for (name, limit, p) in [("p50", objectives.p50, 0.5), ("p95", objectives.p95, 0.95), ("max", objectives.max, 1.0)] {
            guard let limit, let actual = percentile(sorted, p), actual > limit else { continue }
            let culprits = times.filter { $0.seconds > limit }.map(\.record.instanceID)
            result.append(ObjectiveViolation(objective: name, limit: limit, actual: actual.isFinite ? actual : nil, instanceIDs: culprits))
        }
        return result
    }
}

/// Builds the report from stored measurements and the configured policies.
public struct ResumeReportBuilder: Sendable {
    public let settings: ResumeSettings
    /// Resumes accepted before this are left out; nil for each policy's
    /// own window.
    public let since: Double?
    public let now: Double
    /// Rows in the slowest-resumes table.
    public var slowestCount = 20

    public init(settings: ResumeSettings, since: Double?, now: Double) {
        self.settings = settings
        self.since = since
        self.now = now
    }

    /// The earliest start any policy's section needs.
    public var earliest: Double {
        if let since { return since }
        let windows = settings.policies.map(\.window) + [ResumePolicy.fallback.window]
        return now - (windows.max() ?? ResumePolicy.fallback.window)
    }

    /// One section per configured policy (in order), then any policy that
    /// has measurements but is no longer configured.
    public func build(_ records: [ResumeRecord], only policyName: String? = nil) -> ResumeReport {
        var policies = settings.policies
        let configured = Set(policies.map(\.name))
        for name in Array(Set(records.map(\.policy))).sorted() where !configured.contains(name) {
            // The fallback keeps its defaults; a removed policy is shown with
            // no objectives (its old ones are not known any more).
            var policy = name == ResumePolicy.fallback.name ? ResumePolicy.fallback : ResumePolicy(name: name)
            if let readiness = records.first(where: { $0.policy == name }) {
                policy.readiness = readiness.probe?.readiness ?? (readiness.readinessPhase == .running ? .running : .statusOK)
            }
            policies.append(policy)
        }
        if let policyName { policies = policies.filter { $0.name == policyName } }
        let sections = policies.map { policy in
            section(policy, records.filter { $0.policy == policy.name && $0.accepted.at >= (since ?? now - policy.window) })
        }
        return ResumeReport(generatedAt: now, since: since, policies: sections)
    }

    func section(_ policy: ResumePolicy, _ records: [ResumeRecord]) -> PolicyReport {
        let violations = ResumeStatistics.violations(records, objectives: policy.objectives)
        let hasObjectives = !policy.objectives.isEmpty
        var summary = stats(records, type: nil)
        summary.objectivesMet = hasObjectives && summary.count > 0 ? violations.isEmpty : nil
        let types = Array(Set(records.map(\.instanceType))).sorted()
        let byType = types.map { type -> ResumeStats in
            let subset = records.filter { $0.instanceType == type }
            var row = stats(subset, type: type)
            row.objectivesMet = hasObjectives && row.count > 0
                ? ResumeStatistics.violations(subset, objectives: policy.objectives).isEmpty : nil
            return row
        }
        let phases = ResumePhase.allCases.compactMap { phase -> PhaseDistribution? in
            let values = records.filter { $0.state != .failed }.compactMap { $0.seconds(to: phase) }.sorted()
            return values.isEmpty && phase == .probe && !records.contains(where: { $0.probe != nil }) ? nil
                : PhaseDistribution(phase: phase, seconds: values)
        }
        let slowest = records.filter { $0.state != .tracking || $0.isReady }
            .sorted { a, b in
                let x = a.state == .timedOut ? Double.infinity : (a.resumeSeconds ?? -1)
                let y = b.state == .timedOut ? Double.infinity : (b.resumeSeconds ?? -1)
                return x != y ? x > y : a.accepted.at < b.accepted.at
            }
            .prefix(slowestCount).map(Self.row)
        return PolicyReport(
            name: policy.name, readiness: policy.readiness.description, readinessPhase: ResumeRecord.phase(of: policy.readiness),
            window: since.map { now - $0 } ?? policy.window, deadline: policy.deadline,
            objectives: policy.objectives,
            summary: summary, byInstanceType: byType, phases: phases, violations: violations, slowest: Array(slowest))
    }

    /// A resume still marked in flight this long past its deadline has no
    /// tracker: any tracker would have settled it at the deadline.
    public static let unfollowedAfter: Double = 60

    func stats(_ records: [ResumeRecord], type: String?) -> ResumeStats {
        // A resume whose readiness was seen counts, even while its later
        // phases are still being followed.
        let settled = records.filter { $0.state != .tracking || $0.isReady }
        let sorted = ResumeStatistics.resumeTimes(settled).map(\.seconds).sorted()
        func figure(_ p: Double) -> (Double?, Bool) {
            guard let value = ResumeStatistics.percentile(sorted, p) else { return (nil, false) }
            return value.isFinite ? (value, false) : (nil, true)
        }
        let (p50, p50Out) = figure(0.5), (p95, p95Out) = figure(0.95), (max, maxOut) = figure(1)
        let unfollowed = records.filter { $0.state == .tracking && !$0.isReady && now > $0.deadline + Self.unfollowedAfter }.count
        return ResumeStats(
            instanceType: type, count: sorted.count,
            completed: settled.filter { $0.state == .complete || $0.state == .tracking }.count,
            timeouts: settled.filter { $0.state == .timedOut }.count, failed: settled.filter { $0.state == .failed }.count,
            inFlight: records.count - settled.count - unfollowed,
            hibernationResumes: records.filter { $0.mode == .hibernation }.count, coldBoots: records.filter { $0.mode == .cold }.count,
            p50: p50, p95: p95, max: max, p50TimedOut: p50Out, p95TimedOut: p95Out, maxTimedOut: maxOut, unfollowed: unfollowed)
    }

    public static func row(_ record: ResumeRecord) -> ResumeRow {
        ResumeRow(instanceID: record.instanceID, instanceType: record.instanceType, zone: record.zone, mode: record.mode.rawValue,
                  startedAt: record.accepted.at, running: record.seconds(to: .running), statusOk: record.seconds(to: .statusOk),
                  probe: record.seconds(to: .probe), resumeSeconds: record.resumeSeconds, outcome: record.state.rawValue,
                  lastState: record.state == .complete ? nil : (record.detail.map { "\(record.lastState ?? "?"): \($0)" } ?? record.lastState))
    }
}
