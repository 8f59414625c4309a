import ArgumentParser
import Foundation
import Logging
import TorporAWS
import TorporEC2
import TorporFleet
import TorporSigV4
import TorporSim

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Hibernate and resume a simulated fleet end to end; no AWS account needed.",
        discussion: """
        Starts the fleet simulator in this process with the default fleet (Config/sim-fleet.yaml: \
        300 instances, some not configured for hibernation, some protected, some spot, an Auto \
        Scaling group), shows the plan for hibernating everything tagged Env=dev, carries it out \
        with EC2's throttling on, starts the same instances again, and prints every outcome, \
        checked against the simulator's ground truth. Simulated time runs --speed times faster \
        than real time.
        """
    )

    @Option(help: "Simulated seconds per real second.")
    var speed = 40.0
    @Option(help: "Seed for the fleet's random draws (default: the fleet file's).")
    var seed: UInt64?

    func validate() throws {
        guard speed >= 1, speed <= 10_000 else { throw ValidationError("--speed must be between 1 and 10000") }
    }

    func run() async throws {
        var spec = DefaultFleet.spec()
        if let seed { spec.seed = seed }
        var logger = ClientFactory.logger(.error)
        logger.logLevel = .error
        let engine = SimEngine(spec: spec, clock: ScaledClock(speed: speed), throttle: .aws, authenticate: true)
        let simulator = try await RunningSimulator.start(engine: engine, logger: logger)
        do {
            try await demonstrate(spec: spec, engine: engine, simulator: simulator, logger: logger)
            await simulator.stop()
        } catch {
            await simulator.stop()
            throw error
        }
    }

    func demonstrate(spec: FleetSpec, engine: SimEngine, simulator: RunningSimulator, logger: Logger) async throws {
        let location = ServiceLocation(region: spec.region, endpoint: try RequestURL(parsing: simulator.endpoint), endpointSource: "demo")
        let ec2 = EC2Client.forFleet(location: location, credentials: StaticCredentialProvider(spec.credentials[0]), logger: logger)
        let clock = ScaledFleetClock(speed: speed, now: { engine.clock.now() })
        let started = Date()
        let selector = FleetSelector(tags: [Tag(key: "Env", value: "dev")])

        print("Torpor demo: a simulated EC2 fleet of \(engine.instances().count) instances at \(simulator.endpoint) "
              + "(\(Int(speed))x speed, EC2's throttling on, signatures checked; no AWS account used).")

        var failures = 0
        for action in [FleetAction.hibernate, .start] {
            let selection = try await FleetSelection.resolve(ec2, selector)
            let spot = action == .start ? (types: [String: String](), calls: 0)
                : await FleetSelection.spotRequestTypes(ec2, for: selection.instances)
            let plan = Planner.plan(action, instances: selection.instances, spotRequestTypes: spot.types, rules: PlanRules())
            print("\n== \(action == .hibernate ? "Hibernate" : "Start") everything tagged Env=dev: the plan")
            print(Self.summary(plan))

            var options = FleetExecutor.Options()
            options.firstPoll = action == .start ? 60 : 90
            let display = ProgressDisplay(enabled: isatty(STDERR_FILENO) == 1)
            let phaseStart = clock.now()
            var report = try await FleetExecutor(ec2: ec2, clock: clock, options: options, progress: { display.show($0) }).execute(plan)
            display.finish()
            report.calls += selection.calls + spot.calls

            let truth = Dictionary(uniqueKeysWithValues: engine.truth().map { ($0.id, $0) })
            let disagreeing = report.results.filter {
                !SimEngine.confirms(truth[$0.instanceID], outcome: $0.outcome.rawValue, before: SimState(rawValue: $0.previousState),
                                    starting: action == .start)
            }
            failures += report.failedCount
            print("\n== Outcomes (\(Int(clock.now() - phaseStart)) simulated seconds, \(report.calls) API calls, \(report.throttled) throttled)")
            print(Self.outcomes(report))
            print(disagreeing.isEmpty
                  ? "All \(report.results.count) outcomes match the simulator's ground truth."
                  : "\(disagreeing.count) outcome(s) disagree with the simulator's ground truth: \(disagreeing.map(\.instanceID).joined(separator: ", "))")
            failures += disagreeing.count
        }
        print("\nDone in \(String(format: "%.1f", Date().timeIntervalSince(started))) s. Point Torpor at the simulator yourself with `torpor sim`; "
              + "at AWS with the usual credentials.")
        if failures > 0 { throw CommandFailure.failed("\(failures) instance(s) failed or disagree with the ground truth") }
    }

    /// Decisions with their reasons, grouped, instead of a line per instance.
    static func summary(_ plan: FleetPlan) -> String {
        var groups: [String: Int] = [:]
        for planned in plan.instances {
            let key = planned.decision.label + (planned.decision.reason.map { ": \($0)" } ?? "")
            groups[key, default: 0] += 1
        }
        var lines = groups.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .map { String(format: "%5d  ", $0.value) + $0.key }
        lines.append("plan: \(plan.action.rawValue) \(plan.acting.count) of \(plan.instances.count) selected instances")
        return lines.joined(separator: "\n")
    }

    static func outcomes(_ report: FleetReport) -> String {
        var groups: [String: Int] = [:]
        for result in report.results {
            var key = result.outcome.rawValue
            if let code = result.errorCode { key += ": \(code) \(result.errorMessage ?? "")" }
            else if let reason = result.reason { key += ": \(reason)" }
            groups[key, default: 0] += 1
        }
        return groups.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .map { String(format: "%5d  ", $0.value) + $0.key }.joined(separator: "\n")
    }
}
