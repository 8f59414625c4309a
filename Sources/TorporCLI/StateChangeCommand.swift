import ArgumentParser
import Foundation
import TorporAWS
import TorporEC2

/// One targeted instance's line in the output of stop or start.
struct InstanceOutcome {
    enum Kind: String, CaseIterable {
        /// EC2 accepted the call for this instance.
        case accepted
        /// A dry run EC2 said would be allowed.
        case wouldSucceed = "would-succeed"
        /// Already where the command would take it.
        case noActionNeeded = "no-action-needed"
        /// Not acted on, for the reason given.
        case skipped
        case failed
    }

    let instanceID: String
    let name: String?
    let previousState: String
    let newState: String
    let kind: Kind
    var reason: String?
    var errorCode: String?
    var errorMessage: String?

    var json: [String: Any] {
        var object: [String: Any] = [
            "instanceId": instanceID, "previousState": previousState, "newState": newState, "outcome": kind.rawValue,
        ]
        object["name"] = name
        object["reason"] = reason
        object["errorCode"] = errorCode
        object["errorMessage"] = errorMessage
        return object
    }
}

/// The shared body of `torpor stop` and `torpor start`: select, decide per
/// instance, confirm, act in batches, report every instance.
struct StateChangeRun {
    let action: BatchStateChange.Action
    let selectors: SelectorOptions
    let connection: ConnectionOptions
    let options: BatchStateChange.Options
    let assumeYes: Bool
    let output: OutputFormat

    var verb: String {
        switch action {
        case .stop: return options.hibernate ? "hibernate" : "stop"
        case .start: return "start"
        }
    }

    func run() async throws {
        let ec2 = try ClientFactory.ec2(connection)
        let selection = try await Selection.resolve(ec2, selectors)

        var outcomes: [String: InstanceOutcome] = [:]
        var toAct: [EC2Instance] = []
        for instance in selection.instances {
            if let outcome = precheck(instance) {
                outcomes[instance.instanceID] = outcome
            } else {
                toAct.append(instance)
            }
        }
        for missing in selection.missing {
            outcomes[missing.id] = InstanceOutcome(
                instanceID: missing.id, name: nil, previousState: "unknown", newState: "unknown", kind: .failed,
                errorCode: missing.code, errorMessage: missing.message)
        }

        if !toAct.isEmpty && !options.dryRun && !assumeYes {
            try confirm(toAct)
        }

        let results = try await BatchStateChange(ec2: ec2, action: action, options: options).run(toAct.map(\.instanceID))
        for instance in toAct {
            let id = instance.instanceID
            switch results[id] {
            case .changed(let change)?:
                outcomes[id] = InstanceOutcome(
                    instanceID: id, name: instance.name, previousState: change.previousState.name,
                    newState: change.currentState.name, kind: .accepted)
            case .dryRunPermitted?:
                outcomes[id] = InstanceOutcome(
                    instanceID: id, name: instance.name, previousState: instance.state.name, newState: instance.state.name,
                    kind: .wouldSucceed, reason: "dry run: EC2 would \(verb) this instance")
            case .failed(let code, let message)?:
                outcomes[id] = InstanceOutcome(
                    instanceID: id, name: instance.name, previousState: instance.state.name, newState: instance.state.name,
                    kind: .failed, errorCode: code, errorMessage: message)
            case nil:
                outcomes[id] = InstanceOutcome(
                    instanceID: id, name: instance.name, previousState: instance.state.name, newState: instance.state.name,
                    kind: .failed, errorCode: "NoResult", errorMessage: "no result was recorded for this instance")
            }
        }

        let ordered = outcomesInOrder(outcomes, selection: selection)
        print(render(ordered))
        let failed = ordered.filter { $0.kind == .failed }.count
        if failed > 0 {
            throw CommandFailure.failed(output == .json ? "" : "\(failed) of \(ordered.count) instance(s) failed")
        }
    }

    /// Instances that need no call: already there, or never to be touched.
    func precheck(_ instance: EC2Instance) -> InstanceOutcome? {
        let state = instance.state.name
        func outcome(_ kind: InstanceOutcome.Kind, _ reason: String) -> InstanceOutcome {
            InstanceOutcome(instanceID: instance.instanceID, name: instance.name, previousState: state, newState: state,
                            kind: kind, reason: reason)
        }
        if state == "terminated" || state == "shutting-down" {
            return outcome(.skipped, "instance is \(state)")
        }
        switch action {
        case .stop where state == "stopped" || state == "stopping":
            return outcome(.noActionNeeded, "already \(state)")
        case .start where state == "running" || state == "pending":
            return outcome(.noActionNeeded, "already \(state)")
        default:
            return nil
        }
    }

    func outcomesInOrder(_ outcomes: [String: InstanceOutcome], selection: Selection) -> [InstanceOutcome] {
        let order = selection.instances.map(\.instanceID) + selection.missing.map(\.id)
        return order.compactMap { outcomes[$0] }
    }

    func confirm(_ instances: [EC2Instance]) throws {
        let what = "\(verb) \(instances.count) instance(s)"
        guard isatty(STDIN_FILENO) == 1 else {
            throw CommandFailure.usage("refusing to \(what) without --yes: standard input is not a terminal to ask on")
        }
        var table = Table(["INSTANCE", "NAME", "TYPE", "STATE", "HIBERNATION"])
        for instance in instances {
            table.add([instance.instanceID, instance.name ?? "-", instance.instanceType, instance.state.name,
                       instance.hibernationConfigured ? "configured" : "no"])
        }
        printError(table.render())
        FileHandle.standardError.write(Data("About to \(what). Continue? [y/N] ".utf8))
        let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        guard answer == "y" || answer == "yes" else {
            throw CommandFailure.failed("cancelled: nothing was changed")
        }
    }

    func render(_ outcomes: [InstanceOutcome]) -> String {
        var counts: [String: Int] = [:]
        for kind in InstanceOutcome.Kind.allCases { counts[kind.rawValue] = 0 }
        for outcome in outcomes { counts[outcome.kind.rawValue, default: 0] += 1 }
        switch output {
        case .json:
            var document: [String: Any] = [
                "action": action.rawValue, "dryRun": options.dryRun, "total": outcomes.count,
                "counts": counts, "instances": outcomes.map(\.json),
            ]
            if action == .stop {
                document["hibernate"] = options.hibernate
                document["force"] = options.force
            }
            return JSONOutput.render(document)
        case .table:
            var table = Table(["INSTANCE", "NAME", "PREVIOUS", "NEW", "OUTCOME", "DETAIL"])
            for outcome in outcomes {
                let detail = outcome.errorCode.map { "\($0): \(outcome.errorMessage ?? "")" } ?? outcome.reason ?? ""
                table.add([outcome.instanceID, outcome.name ?? "-", outcome.previousState, outcome.newState,
                           outcome.kind.rawValue, detail])
            }
            let summary = InstanceOutcome.Kind.allCases.compactMap { kind -> String? in
                let count = counts[kind.rawValue] ?? 0
                return count == 0 ? nil : "\(count) \(kind.rawValue)"
            }.joined(separator: ", ")
            let dry = options.dryRun ? " (dry run: nothing changed)" : ""
            return table.render() + "\n\(outcomes.count) instance(s)\(outcomes.isEmpty ? "" : ": \(summary)")\(dry)"
        }
    }
}

/// Options every mutating command shares.
struct MutationOptions: ParsableArguments {
    @Flag(name: .customLong("dry-run"), help: "Ask EC2 whether the call would be allowed; change nothing.")
    var dryRun = false
    @Flag(help: "Do not ask for confirmation.")
    var yes = false
    @Option(help: "table or json.") var output: OutputFormat = .table
}
