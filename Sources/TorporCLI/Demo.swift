import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import TorporAWS
import TorporEC2
import TorporFleet
import TorporPolicies
import TorporQueue
import TorporReports
import TorporResume
import TorporSigV4
import TorporSim
import TorporWorker

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Hibernate and resume a simulated fleet through the queue and a worker; no AWS account needed.",
        discussion: """
        Starts the fleet simulator in this process with the default fleet (Config/sim-fleet.yaml: \
        300 instances, some not configured for hibernation, some protected, some spot, an Auto \
        Scaling group) and a worker on a temporary queue. Shows the plan for hibernating \
        everything tagged Env=dev, enqueues it as a job that the worker carries out with EC2's \
        throttling on, then enqueues starting the same instances again. Prints the jobs' states \
        and every outcome, checked against the simulator's ground truth. The worker follows \
        every resume phase by phase (web instances until their port 8080 answers) and the demo \
        ends with the resume report, held against the demo's resume policies, and writes the \
        HTML report to a file. Simulated time runs --speed times faster than real time.
        """
    )

    @Option(help: "Simulated seconds per real second.")
    var speed = 40.0
    @Option(help: "Seed for the fleet's random draws (default: the fleet file's).")
    var seed: UInt64?
    @Option(help: ArgumentHelp("Where to write the HTML resume report (default: a new file in the temporary directory).", valueName: "FILE"))
    var report: String?

    /// The demo's resume policies, as a configuration file would give them.
    static let policies = """
        resume:
          policies:
            - name: web
              targets: { tags: { Tier: web } }
              readiness: { tcp: 8080 }
              objectives: { p50: 25s, p95: 60s, max: 120s }
              window: 7d
            - name: workers
              targets: { tags: { Tier: worker } }
              readiness: status-ok
              objectives: { p50: 60s, p95: 150s, max: 5m }
        """

    func validate() throws {
        guard speed >= 1, speed <= 10_000 else { throw ValidationError("--speed must be between 1 and 10000") }
    }

    func run() async throws {
        var spec = DefaultFleet.spec()
        if let seed { spec.seed = seed }
        let logger = ClientFactory.logger(.error)
        let engine = SimEngine(spec: spec, clock: ScaledClock(speed: speed), throttle: .aws, authenticate: true, probes: true)
        let simulator = try await RunningSimulator.start(engine: engine, logger: logger)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("torpor-demo-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        do {
            try await demonstrate(spec: spec, engine: engine, simulator: simulator, queuePath: directory.appendingPathComponent("queue.sqlite").path,
                                  logger: logger)
            await simulator.stop()
        } catch {
            await simulator.stop()
            throw error
        }
    }

    func demonstrate(spec: FleetSpec, engine: SimEngine, simulator: RunningSimulator, queuePath: String, logger: Logger) async throws {
        let location = ServiceLocation(region: spec.region, endpoint: try RequestURL(parsing: simulator.endpoint), endpointSource: "demo")
        let ec2 = EC2Client.forFleet(location: location, credentials: StaticCredentialProvider(spec.credentials[0]), logger: logger)
        let clock = ScaledFleetClock(speed: speed, now: { engine.clock.now() })
        let queue = try SQLiteJobQueue(path: queuePath)
        let display = ProgressDisplay(enabled: isatty(STDERR_FILENO) == 1)
        var options = FleetExecutor.Options()
        options.firstPoll = 90
        let (configuration, problems) = TorporConfiguration.validate(Self.policies, file: "demo policies")
        precondition(problems.isEmpty, "the demo's own policies are invalid: \(problems)")
        let store = try ResumeStore(queue: queue)
        let tracker = ResumeTracker(ec2: ec2, clock: clock, store: store, policies: configuration.resume,
                                    prober: NetworkProber(transport: CurlTransport(), timeout: 1), owner: "demo-worker", logger: logger)
        let runner = JobRunner(ec2: ec2, clock: clock, executorOptions: options, logger: logger, progress: { display.show($0) },
                               resumes: tracker)
        var settings = QueueConsumer.Settings()
        settings.concurrency = 1
        settings.pollInterval = 0.1
        let worker = QueueConsumer(queue: queue, runner: runner, owner: "demo-worker", settings: settings, metrics: WorkerMetrics(), logger: logger)
        let services = ServiceGroup(configuration: .init(services: [ResumeTracking(tracker: tracker, logger: logger), worker],
                                                         gracefulShutdownSignals: [], logger: logger))
        let workerTask = Task { try await services.run() }
        defer { workerTask.cancel() }

        let started = Date()
        let selector = FleetSelector(tags: [Tag(key: "Env", value: "dev")])
        print("Torpor demo: a simulated EC2 fleet of \(engine.instances().count) instances at \(simulator.endpoint) "
              + "(\(Int(speed))x speed, EC2's throttling on, signatures checked; no AWS account used), and a worker on a queue.")

        var failures = 0
        for action in [FleetAction.hibernate, .start] {
            let selection = try await FleetSelection.resolve(ec2, selector)
            let spot = action == .start ? (types: [String: String](), calls: 0)
                : await FleetSelection.spotRequestTypes(ec2, for: selection.instances)
            let plan = Planner.plan(action, instances: selection.instances, spotRequestTypes: spot.types, rules: PlanRules())
            print("\n== \(action == .hibernate ? "Hibernate" : "Start") everything tagged Env=dev: the plan")
            print(Self.summary(plan))

            var payload = FleetJobPayload(selector: selector)
            payload.hibernate = action == .hibernate
            let kind = action == .start ? JobKind.fleetStart : JobKind.fleetStop
            let (job, _) = try await queue.enqueue(NewJob(kind: kind, payload: payload.encoded(), idempotencyKey: "demo-\(action.rawValue)"),
                                                   now: Date().timeIntervalSince1970)
            print("\nenqueued \(job.id) (\(kind)); the worker takes it:")
            let finished = try await follow(job.id, queue: queue, display: display)
            display.finish()
            guard finished.state == .succeeded, let resultText = finished.result else {
                throw CommandFailure.failed("job \(finished.id) ended \(finished.state.rawValue): \(finished.lastError ?? "")")
            }
            let results = try Self.results(resultText)
            let truth = Dictionary(uniqueKeysWithValues: engine.truth().map { ($0.id, $0) })
            let disagreeing = results.filter {
                !SimEngine.confirms(truth[$0.instanceID], outcome: $0.outcome.rawValue, before: SimState(rawValue: $0.previousState),
                                    starting: action == .start)
            }
            failures += results.filter { $0.outcome == .failed }.count + disagreeing.count
            print("\n== Outcomes")
            print(Self.outcomes(results))
            print(disagreeing.isEmpty
                  ? "All \(results.count) outcomes match the simulator's ground truth."
                  : "\(disagreeing.count) outcome(s) disagree with the simulator's ground truth: \(disagreeing.map(\.instanceID).joined(separator: ", "))")
        }

        print("\n== Jobs")
        var table = Table(["JOB", "KIND", "STATE", "ATTEMPTS"])
        for job in try await queue.jobs(state: nil, limit: 10).reversed() {
            table.add([job.id, job.kind, job.state.rawValue, "\(job.attempts)/\(job.maxAttempts)"])
        }
        print(table.render())

        print("\n== Resume times, held against the demo's policies")
        let waitingSince = Date()
        while await tracker.inFlightCount > 0 && Date().timeIntervalSince(waitingSince) < 120 {
            try await Task.sleep(for: .milliseconds(100))
        }
        let builder = ResumeReportBuilder(settings: configuration.resume, since: nil, now: clock.now())
        let resumeReport = builder.build(try await store.records(since: builder.earliest))
        print(ResumeRendering.table(resumeReport))
        let reportPath = report ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("torpor-demo-resume-\(Int(Date().timeIntervalSince1970)).html").path
        try Data(HTMLReport.render(resumeReport).utf8).write(to: URL(fileURLWithPath: reportPath), options: .atomic)
        print("HTML report: \(reportPath)")
        let measured = resumeReport.policies.reduce(0) { $0 + $1.summary.count + $1.summary.failed }
        if measured == 0 { failures += 1; print("no resume was measured") }
        await services.triggerGracefulShutdown()
        _ = await workerTask.result
        print("\nDone in \(String(format: "%.1f", Date().timeIntervalSince(started))) s. Run `torpor sim` and `torpor worker` yourself, "
              + "or point Torpor at AWS with the usual credentials.")
        if failures > 0 { throw CommandFailure.failed("\(failures) instance(s) failed or disagree with the ground truth") }
    }

    /// Prints the job's states as they change, until it ends.
    func follow(_ id: String, queue: SQLiteJobQueue, display: ProgressDisplay) async throws -> Job {
        var last: JobState?
        while true {
            let job = try await queue.job(id: id)
            if job.state != last {
                if last != nil || job.state != .running { display.finish() }
                print("  \(job.id): \(job.state.rawValue)")
                last = job.state
            }
            if job.state == .succeeded || job.state == .dead || (job.state == .failed && job.lastError != nil) { return job }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    static func results(_ text: String) throws -> [InstanceResult] {
        struct Stored: Decodable { let instances: [InstanceResult] }
        return try JSONDecoder().decode(Stored.self, from: Data(text.utf8)).instances
    }

    /// Decisions with their reasons, grouped, instead of a line per instance.
    static func summary(_ plan: FleetPlan) -> String {
        var groups: [String: Int] = [:]
        for planned in plan.instances {
            groups[planned.decision.label + (planned.decision.reason.map { ": \($0)" } ?? ""), default: 0] += 1
        }
        var lines = groups.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .map { String(format: "%5d  ", $0.value) + $0.key }
        lines.append("plan: \(plan.action.rawValue) \(plan.acting.count) of \(plan.instances.count) selected instances")
        return lines.joined(separator: "\n")
    }

    static func outcomes(_ results: [InstanceResult]) -> String {
        var groups: [String: Int] = [:]
        for result in results {
            var key = result.outcome.rawValue
            if let code = result.errorCode { key += ": \(code) \(result.errorMessage ?? "")" }
            else if let reason = result.reason { key += ": \(reason)" }
            groups[key, default: 0] += 1
        }
        return groups.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .map { String(format: "%5d  ", $0.value) + $0.key }.joined(separator: "\n")
    }
}
