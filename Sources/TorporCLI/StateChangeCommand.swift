import ArgumentParser
import Foundation
import TorporAWS
import TorporEC2
import TorporFleet
import TorporReports
import TorporResume

/// Options every mutating command shares.
struct MutationOptions: ParsableArguments {
    @Flag(name: .customLong("dry-run"), help: "Ask EC2 whether the calls would be allowed; change nothing.")
    var dryRun = false
    @Flag(help: "Do not ask for confirmation.")
    var yes = false
    @Flag(help: "Print the plan (every instance and the decision for it) and stop; no change is made.")
    var plan = false
    @Option(name: .customLong("max-instances"), help: "Blast radius: refuse a plan that acts on more instances.")
    var maxInstances = 1000
    @Option(name: .customLong("max-share"), help: "Blast radius: refuse a plan that acts on a larger share (0 to 1) of the selected instances.")
    var maxShare = 1.0
    @Flag(name: .customLong("override-blast-radius"), help: "Run a plan even past --max-instances and --max-share.")
    var overrideBlastRadius = false
    @Option(name: .customLong("protect-tag"), help: ArgumentHelp("Instances with this tag are never touched.", valueName: "KEY=VALUE"))
    var protectTag = "torpor:protect=true"
    @Flag(name: .customLong("tag-instances"), help: "Tag acted instances with torpor:last-action and torpor:last-action-time.")
    var tagInstances = false
    @Option(name: .customLong("first-poll"), help: "Seconds after the last call before the first check of final states.")
    var firstPoll = 45.0
    @Option(name: .customLong("wait-timeout"), help: "Seconds to wait for final states before reporting an instance as failed.")
    var waitTimeout = 1800.0
    @Option(help: "table or json.") var output: OutputFormat = .table

    func validate() throws {
        guard maxInstances >= 0 else { throw ValidationError("--max-instances must be 0 or more") }
        guard (0...1).contains(maxShare) else { throw ValidationError("--max-share must be between 0 and 1") }
        guard PlanRules.parseTag(protectTag) != nil else {
            throw ValidationError("--protect-tag '\(protectTag)' must be KEY=VALUE")
        }
        guard firstPoll >= 0, waitTimeout > 0 else { throw ValidationError("--first-poll must be 0 or more and --wait-timeout above 0") }
    }

    func rules(fallback: HibernationFallback = .stop, force: Bool = false) -> PlanRules {
        let tag = PlanRules.parseTag(protectTag)! // validate() checked it
        return PlanRules(protectTagKey: tag.key, protectTagValue: tag.value, hibernationFallback: fallback, maxInstances: maxInstances,
                         maxShare: maxShare, overrideBlastRadius: overrideBlastRadius, force: force)
    }
}

/// The shared body of `torpor stop` and `torpor start`: select, plan,
/// confirm, execute through the fleet engine, report every instance.
struct FleetCommandRun {
    let action: FleetAction
    let selector: FleetSelector
    let connection: ConnectionOptions
    let mutation: MutationOptions
    let rules: PlanRules
    /// Starts only: where resumes are stored and whether to follow them.
    var tracking: ResumeTrackingOptions? = nil

    func run() async throws {
        let ec2 = try ClientFactory.ec2(connection, retryThrottling: false)
        let selection = try await FleetSelection.resolve(ec2, selector)
        let spot: (types: [String: String], calls: Int) = action == .start
            ? ([:], 0) : await FleetSelection.spotRequestTypes(ec2, for: selection.instances)
        let spotTypes = spot.types
        let plan = Planner.plan(action, instances: selection.instances, missing: selection.missing,
                                spotRequestTypes: spotTypes, rules: rules)
        if mutation.plan {
            print(mutation.output == .json ? JSONOutput.render(PlanRendering.json(plan)) : PlanRendering.table(plan))
            return
        }
        if let refusal = plan.blastRadiusRefusal {
            throw CommandFailure.usage("refused: \(refusal)")
        }
        if !plan.acting.isEmpty && !mutation.dryRun && !mutation.yes {
            try confirm(plan)
        }

        var options = FleetExecutor.Options()
        options.dryRun = mutation.dryRun
        options.firstPoll = mutation.firstPoll
        options.waitDeadline = mutation.waitTimeout
        options.tagInstances = mutation.tagInstances
        let display = ProgressDisplay(enabled: mutation.output == .table && isatty(STDERR_FILENO) == 1)
        var session: ResumeSession?
        if let tracking, !mutation.dryRun { session = try tracking.session(ec2: ec2, connection: connection) }
        var startsAccepted: (@Sendable (AcceptedStarts) async -> Void)?
        if let tracker = session?.tracker { startsAccepted = { await tracker.register($0) } }
        let executor = FleetExecutor(ec2: ec2, options: options, progress: { display.show($0) }, startsAccepted: startsAccepted)
        var report: FleetReport
        do {
            report = try await executor.execute(plan)
        } catch {
            await session?.abandon()
            throw error
        }
        report.calls += selection.calls + spot.calls
        display.finish()

        let resumes = try await session?.finish(quiet: mutation.output == .json)
        if mutation.output == .json {
            var json = ReportRendering.json(report, plan: plan)
            if let resumes { json["resumes"] = ResumeRendering.json(resumes) }
            print(JSONOutput.render(json))
        } else {
            print(ReportRendering.table(report))
            if let resumes, !resumes.policies.isEmpty { print("\n" + ResumeRendering.table(resumes)) }
        }
        if report.failedCount > 0 {
            throw CommandFailure.failed(mutation.output == .json ? "" : "\(report.failedCount) of \(report.results.count) instance(s) failed")
        }
    }

    func confirm(_ plan: FleetPlan) throws {
        let what = "\(action.rawValue) \(plan.acting.count) instance(s)"
        guard isatty(STDIN_FILENO) == 1 else {
            throw CommandFailure.usage("refusing to \(what) without --yes: standard input is not a terminal to ask on")
        }
        printError(PlanRendering.table(plan))
        FileHandle.standardError.write(Data("About to \(what). Continue? [y/N] ".utf8))
        let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        guard answer == "y" || answer == "yes" else {
            throw CommandFailure.failed("cancelled: nothing was changed")
        }
    }
}

extension SelectorOptions {
    var fleetSelector: FleetSelector {
        FleetSelector(ids: ids, tags: tags.map { tag in
            let equals = tag.firstIndex(of: "=")!
            return Tag(key: String(tag[..<equals]), value: String(tag[tag.index(after: equals)...]))
        }, filters: filters.map { filter in
            let equals = filter.firstIndex(of: "=")!
            return EC2Filter(name: String(filter[..<equals]), values: filter[filter.index(after: equals)...].split(separator: ",").map(String.init))
        }, states: states)
    }
}
