import Foundation
import TorporAWS
import TorporEC2
import TorporFleet

enum PlanRendering {
    static func table(_ plan: FleetPlan) -> String {
        var table = Table(["INSTANCE", "NAME", "TYPE", "STATE", "DECISION", "REASON"])
        for planned in plan.instances {
            let instance = planned.instance
            table.add([instance.instanceID, instance.name ?? "-", instance.instanceType, instance.state.name,
                       planned.decision.label, planned.decision.reason ?? ""])
        }
        for missing in plan.missing {
            table.add([missing.instanceID, "-", "-", "unknown", "fail", "\(missing.code): \(missing.message)"])
        }
        let counts = plan.counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        var text = table.render() + "\nplan: \(plan.action.rawValue) \(plan.acting.count) of \(plan.instances.count) selected instance(s)"
        if !counts.isEmpty { text += " (\(counts))" }
        if let refusal = plan.blastRadiusRefusal { text += "\nrefused: \(refusal)" }
        return text
    }

    static func json(_ plan: FleetPlan) -> [String: Any] {
        var document: [String: Any] = [
            "action": plan.action.rawValue,
            "selected": plan.instances.count,
            "acting": plan.acting.count,
            "counts": plan.counts,
            "instances": plan.instances.map { planned -> [String: Any] in
                var object: [String: Any] = [
                    "instanceId": planned.instanceID, "state": planned.instance.state.name,
                    "instanceType": planned.instance.instanceType, "decision": planned.decision.label,
                ]
                object["name"] = planned.instance.name
                object["reason"] = planned.decision.reason
                return object
            } + plan.missing.map { ["instanceId": $0.instanceID, "decision": "fail", "reason": "\($0.code): \($0.message)"] },
            "rules": [
                "protectTag": "\(plan.rules.protectTagKey)=\(plan.rules.protectTagValue)",
                "hibernationFallback": plan.rules.hibernationFallback.rawValue,
                "maxInstances": plan.rules.maxInstances, "maxShare": plan.rules.maxShare,
                "overrideBlastRadius": plan.rules.overrideBlastRadius,
            ],
        ]
        document["refused"] = plan.blastRadiusRefusal
        return document
    }
}

enum ReportRendering {
    static func table(_ report: FleetReport) -> String {
        var table = Table(["INSTANCE", "NAME", "PREVIOUS", "NOW", "OUTCOME", "DETAIL"])
        for result in report.results {
            let detail = result.errorCode.map { "\($0): \(result.errorMessage ?? "")" } ?? result.reason ?? ""
            table.add([result.instanceID, result.name ?? "-", result.previousState, result.lastState, result.outcome.rawValue, detail])
        }
        let counts = InstanceResult.Outcome.allCases.compactMap { outcome -> String? in
            let count = report.counts[outcome.rawValue] ?? 0
            return count == 0 ? nil : "\(count) \(outcome.rawValue)"
        }.joined(separator: ", ")
        let dry = report.dryRun ? " (dry run: nothing changed)" : ""
        return table.render() + "\n\(report.results.count) instance(s)\(counts.isEmpty ? "" : ": \(counts)")\(dry); "
            + "\(report.calls) API call(s), \(report.throttled) throttled"
    }

    static func json(_ report: FleetReport, plan: FleetPlan) -> [String: Any] {
        var document: [String: Any] = [
            "action": report.action.rawValue,
            "dryRun": report.dryRun,
            "total": report.results.count,
            "counts": report.counts,
            "calls": report.calls,
            "throttled": report.throttled,
            "instances": report.results.map { result -> [String: Any] in
                var object: [String: Any] = [
                    "instanceId": result.instanceID, "previousState": result.previousState, "newState": result.lastState,
                    "outcome": result.outcome.rawValue,
                ]
                object["name"] = result.name
                object["reason"] = result.reason
                object["errorCode"] = result.errorCode
                object["errorMessage"] = result.errorMessage
                return object
            },
        ]
        if plan.action != .start {
            document["hibernate"] = plan.action == .hibernate
            document["force"] = plan.rules.force
            document["fallback"] = plan.rules.hibernationFallback.rawValue
        }
        return document
    }
}

/// One line on a terminal, redrawn as the run goes.
final class ProgressDisplay: @unchecked Sendable {
    private let enabled: Bool
    private let lock = NSLock()
    private var shown = false

    init(enabled: Bool) { self.enabled = enabled }

    func show(_ progress: FleetProgress) {
        guard enabled else { return }
        lock.lock(); defer { lock.unlock() }
        shown = true
        let line = "\r\(progress.phase): \(progress.done)/\(progress.total) done, \(progress.failed) failed, "
            + "\(progress.waiting) waiting, \(progress.calls) API calls, \(progress.throttled) throttled   "
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        lock.lock(); defer { lock.unlock() }
        if shown { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
