import Foundation
import Logging
import TorporAWS
import TorporEC2
import TorporFleet
import TorporPolicies
import TorporQueue
import TorporReports
import TorporResume
import TorporSigV4
import TorporSim

/// Resume tracking held against the simulator's ground truth: a fleet of
/// hibernated (and some cold-stopped) instances with varied resume times
/// and probe ports is started at once; the tracker follows every resume;
/// each measured phase is compared with the moment the simulator recorded.
enum ResumeBenchmark {
    static let credentials = AWSCredentials(accessKeyID: "AKIDRESUMEBENCH", secretAccessKey: "resume-bench-secret")

    /// Four tiers: a web tier probed by TCP, an API probed by HTTP, a batch
    /// tier judged by status checks, and cold-stopped legacy instances.
    /// Probe ports of this run's own: every simulator puts its instances on
    /// the same 127.16.x.y addresses, so a port another simulator on this
    /// machine has open (the default fleet's 8080) would answer our probes.
    /// The range is the benchmark's alone: the tests that run beside it take
    /// theirs from 25,000 up (`ProbePorts` in Tests/TorporTestSupport).
    static func probePorts() -> (web: Int, api: Int) {
        let web = Int.random(in: 20_000..<25_000)
        var api = Int.random(in: 20_000..<25_000)
        while api == web { api = Int.random(in: 20_000..<25_000) }
        return (web, api)
    }

    static func fleet(instances n: Int, ports: (web: Int, api: Int)) -> FleetSpec {
        var spec = FleetSpec()
        spec.seed = 606
        spec.credentials = [credentials]
        func group(_ name: String, _ count: Int, state: GroupSpec.InitialState, type: String,
                   resume: (Double, Double), status: (Double, Double), reachable: (Double, Double)?, port: Int?) -> GroupSpec {
            var group = GroupSpec(name: name, count: count)
            group.initialState = state
            group.instanceType = type
            group.tags = [(key: "Tier", value: name)]
            group.timings.resume = DurationDistribution(median: resume.0, p95: resume.1)
            group.timings.coldBoot = DurationDistribution(median: resume.0, p95: resume.1)
            group.timings.statusOk = DurationDistribution(median: status.0, p95: status.1)
            if let reachable { group.timings.reachable = DurationDistribution(median: reachable.0, p95: reachable.1) }
            group.probePort = port
            return group
        }
        let web = n * 4 / 10, api = n * 2 / 10, batch = n * 3 / 10
        spec.groups = [
            group("web", web, state: .hibernated, type: "m5.large", resume: (10, 20), status: (20, 40), reachable: (4, 10), port: ports.web),
            group("api", api, state: .hibernated, type: "c5.xlarge", resume: (14, 30), status: (25, 50), reachable: (6, 15), port: ports.api),
            group("batch", batch, state: .hibernated, type: "r5.2xlarge", resume: (20, 45), status: (30, 60), reachable: nil, port: nil),
            group("legacy", n - web - api - batch, state: .stopped, type: "t3.medium", resume: (30, 55), status: (20, 40), reachable: nil, port: nil),
        ]
        return spec
    }

    static func policies(ports: (web: Int, api: Int)) -> ResumeSettings {
        var settings = ResumeSettings()
        func policy(_ name: String, _ readiness: Readiness, p50: Double, p95: Double) -> ResumePolicy {
            var policy = ResumePolicy(name: name)
            policy.targets = PolicyTargets(tags: [PolicyTag(key: "Tier", value: name)])
            policy.readiness = readiness
            policy.objectives = ResumeObjectives(p50: p50, p95: p95, max: 120)
            policy.deadline = 300
            return policy
        }
        settings.policies = [
            policy("web", .tcp(port: ports.web), p50: 20, p95: 40),
            policy("api", .http(url: "http://{ip}:\(ports.api)/healthz", status: 200), p50: 25, p95: 50),
            policy("batch", .statusOK, p50: 60, p95: 100),
        ]
        return settings
    }

    struct Result {
        var instances = 0
        var phases = 0
        var maxError = 0.0
        var sumError = 0.0
        /// Measurements whose truth lies outside their own stated bracket.
        var outsideBracket = 0
        var maxPercentileError = 0.0
        var unmeasured = 0
    }

    static func run(instances: Int, speed: Double, pollInterval: Double, describeRate: Double) async throws -> Bool {
        let ports = probePorts()
        let spec = fleet(instances: instances, ports: ports)
        let engine = SimEngine(spec: spec, clock: ScaledClock(speed: speed), throttle: .aws, authenticate: true, probes: true)
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let simulator = try await RunningSimulator.start(engine: engine, logger: logger)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("torpor-resume-bench-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let location = ServiceLocation(region: spec.region, endpoint: try RequestURL(parsing: simulator.endpoint), endpointSource: "bench")
        let ec2 = EC2Client.forFleet(location: location, credentials: StaticCredentialProvider(credentials), logger: logger)
        let clock = ScaledFleetClock(speed: speed, now: { engine.clock.now() })

        var settings = policies(ports: ports)
        settings.pollInterval = pollInterval
        settings.describeRate = describeRate
        let store = try ResumeStore(queue: SQLiteJobQueue(path: directory.appendingPathComponent("queue.sqlite").path))
        let tracker = ResumeTracker(ec2: ec2, clock: clock, store: store, policies: settings,
                                    prober: NetworkProber(transport: CurlTransport(), timeout: 1), owner: "bench", logger: logger)
        let tracking = Task { try await tracker.run(adopting: false) }

        let selection = try await FleetSelection.resolve(ec2, FleetSelector(states: ["stopped"]))
        var rules = PlanRules()
        rules.maxInstances = instances
        let plan = Planner.plan(.start, instances: selection.instances, rules: rules)
        var options = FleetExecutor.Options()
        options.waitForFinalStates = false
        let began = Date()
        let report = try await FleetExecutor(ec2: ec2, clock: clock, options: options,
                                             startsAccepted: { await tracker.register($0) }).execute(plan)
        await tracker.finishWhenIdle()
        try await tracking.value
        let elapsed = Date().timeIntervalSince(began)

        let records = await tracker.finished
        let truth = engine.resumeTruth()
        var result = Result()
        result.instances = records.count
        var measured: [ResumePhase: [Double]] = [:]
        var actual: [ResumePhase: [Double]] = [:]
        for record in records {
            guard let real = truth[record.instanceID] else { result.unmeasured += 1; continue }
            let pairs: [(ResumePhase?, PhaseTime?, Double?)] = [
                (nil, record.accepted, real.accepted),
                (.running, record.running, real.running),
                (.statusOk, record.statusOK, real.statusOk),
                (.probe, record.probeOK, record.probe == nil ? nil : real.reachable),
            ]
            for (phase, time, truthAt) in pairs {
                guard let truthAt else { continue }
                guard let time else { result.unmeasured += 1; continue }
                let error = abs(time.at - truthAt)
                result.phases += 1
                result.sumError += error
                result.maxError = max(result.maxError, error)
                // The simulator opens a probe port on its next 20 ms tick (and a
                // bind) after the recorded moment: a probe's truth is that late.
                let slack = phase == .probe ? 0.05 * speed : 1e-6
                if error > time.error + slack {
                    result.outsideBracket += 1
                    if ProcessInfo.processInfo.environment["TORPOR_BENCH_DEBUG"] != nil {
                        FileHandle.standardError.write(Data("outside: \(record.instanceID) \(phase?.rawValue ?? "accepted") measured \(time.at) ± \(time.error) truth \(truthAt)\n".utf8))
                    }
                }
                if let phase {
                    measured[phase, default: []].append(time.at - record.accepted.at)
                    actual[phase, default: []].append(truthAt - real.accepted)
                }
            }
        }
        for phase in ResumePhase.allCases {
            let a = (measured[phase] ?? []).sorted(), b = (actual[phase] ?? []).sorted()
            for p in [0.5, 0.95, 1.0] {
                if let x = ResumeStatistics.percentile(a, p), let y = ResumeStatistics.percentile(b, p) {
                    result.maxPercentileError = max(result.maxPercentileError, abs(x - y))
                }
            }
        }
        if ProcessInfo.processInfo.environment["TORPOR_BENCH_DEBUG"] != nil {
            for record in records where record.state != .complete {
                FileHandle.standardError.write(Data("\(record.instanceID) \(record.policy) \(record.state.rawValue): \(record.lastState ?? "") \(record.detail ?? "")\n".utf8))
            }
        }
        let calls = await tracker.calls
        let mean = result.phases > 0 ? result.sumError / Double(result.phases) : 0
        let fields: [String] = [
            "\"instances\":\(result.instances)",
            "\"poll_interval_s\":\(format(pollInterval))",
            "\"max_error_s\":\(format(result.maxError))",
            "\"mean_error_s\":\(format(mean))",
            "\"calls\":\(calls)",
            "\"calls_per_instance\":\(format(result.instances > 0 ? Double(calls) / Double(result.instances) : 0))",
            "\"phases_measured\":\(result.phases)",
            "\"unmeasured\":\(result.unmeasured)",
            "\"outside_bracket\":\(result.outsideBracket)",
            "\"max_percentile_error_s\":\(format(result.maxPercentileError))",
            "\"throttled\":\(await tracker.throttled)",
            "\"timed_out\":\(records.filter { $0.state == .timedOut }.count)",
            "\"failed\":\(records.filter { $0.state == .failed }.count)",
            "\"started\":\(report.results.filter { $0.outcome == .accepted }.count)",
            "\"speed\":\(format(speed))",
            "\"wall_s\":\(format(elapsed))",
        ]
        print("{" + fields.joined(separator: ",") + "}")
        await simulator.stop()
        return result.maxError <= pollInterval && result.maxPercentileError <= pollInterval && result.unmeasured == 0
            && result.outsideBracket == 0 && result.instances == plan.acting.count
    }

    static func format(_ value: Double) -> String { String(format: "%.3f", value) }
}
