import Foundation
import Logging
import Synchronization
import Testing
import TorporAWS
import TorporEC2
import TorporFleet
import TorporSigV4
import TorporSim

typealias EC2Tag = TorporEC2.Tag

// MARK: Plans as values

/// An instance as DescribeInstances would give it, with test-friendly defaults.
func makeInstance(_ id: String, state: InstanceState = .running, tags: [EC2Tag] = [], configured: Bool = true,
                  lifecycle: String? = nil, spotRequest: String? = nil, root: String? = "ebs",
                  type: String = "m5.large") -> EC2Instance {
    EC2Instance(instanceID: id, instanceType: type, state: state, tags: tags + [EC2Tag(key: "Name", value: "n-\(id)")],
                hibernationConfigured: configured, instanceLifecycle: lifecycle, rootDeviceType: root,
                spotInstanceRequestID: spotRequest)
}

/// A well-formed instance id (17 hex digits) for a small number.
func fakeID(_ number: Int) -> String {
    let hex = String(number, radix: 16)
    return "i-0" + String(repeating: "0", count: 16 - hex.count) + hex
}

func rules(_ configure: (inout PlanRules) -> Void = { _ in }) -> PlanRules {
    var rules = PlanRules()
    configure(&rules)
    return rules
}

// MARK: The simulator in this process

let testCredentials = AWSCredentials(accessKeyID: "AKIDFLEETTESTS", secretAccessKey: "fleet-tests-secret")

func makeGroup(_ name: String, _ count: Int, _ configure: (inout GroupSpec) -> Void = { _ in }) -> GroupSpec {
    var group = GroupSpec(name: name, count: count)
    configure(&group)
    return group
}

func makeSpec(seed: UInt64 = 11, _ groups: [GroupSpec], _ configure: (inout FleetSpec) -> Void = { _ in }) -> FleetSpec {
    var spec = FleetSpec()
    spec.seed = seed
    spec.credentials = [testCredentials]
    spec.groups = groups
    configure(&spec)
    return spec
}

/// Every call the client made, with the simulated time it ended at.
final class CallLog: Sendable {
    struct Entry: Sendable {
        let time: Double
        let action: String
        let outcome: AWSCallEvent.Outcome
        let throttled: Bool
    }

    private let entries = Mutex<[Entry]>([])

    func record(_ event: AWSCallEvent, at time: Double) {
        entries.withLock { $0.append(Entry(time: time, action: event.action, outcome: event.outcome, throttled: event.throttled)) }
    }

    var all: [Entry] { entries.withLock { $0 } }
}

/// A simulator on 127.0.0.1, a signed client over curl, and the run's clock.
struct SimHarness {
    let engine: SimEngine
    let simulator: RunningSimulator
    let ec2: EC2Client
    let clock: ScaledFleetClock

    /// Ground truth by id.
    func truth() -> [String: SimEngine.InstanceTruth] {
        Dictionary(uniqueKeysWithValues: engine.truth().map { ($0.id, $0) })
    }

    /// Ids of a group's instances, in the simulator's order.
    func ids(group: String) -> [String] {
        engine.instances().filter { $0.group == group }.map(\.id)
    }

    func describe(_ ids: [String]) async throws -> [EC2Instance] {
        try await ec2.describeInstances(ids: ids).all()
    }

    func select(tag key: String, _ value: String) async throws -> FleetSelection {
        try await FleetSelection.resolve(ec2, FleetSelector(tags: [EC2Tag(key: key, value: value)]))
    }

    func execute(_ plan: FleetPlan, _ options: FleetExecutor.Options = testOptions(),
                 progress: (@Sendable (FleetProgress) -> Void)? = nil) async throws -> FleetReport {
        try await FleetExecutor(ec2: ec2, clock: clock, options: options, progress: progress).execute(plan)
    }

    /// Waits (in real time) until every one of `ids` is in `state` in truth.
    func waitUntil(_ ids: [String], are state: SimState, realTimeout: Double = 20) async throws {
        let deadline = Date().addingTimeInterval(realTimeout)
        while Date() < deadline {
            let truth = truth()
            if ids.allSatisfy({ truth[$0]?.state == state }) { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("\(ids) did not all reach \(state.rawValue): \(ids.map { truth()[$0]?.state.rawValue ?? "?" })")
        throw CancellationError()
    }
}

/// Options for runs against the simulator: the first poll soon, and a
/// bounded wait, so that a run takes at most a few real seconds.
func testOptions(_ configure: (inout FleetExecutor.Options) -> Void = { _ in }) -> FleetExecutor.Options {
    var options = FleetExecutor.Options()
    options.firstPoll = 10
    options.maxPollInterval = 20
    options.waitDeadline = 3600
    configure(&options)
    return options
}

/// The client's policy for the fleet engine (throttling left to the pacer),
/// with backoffs of milliseconds: the client sleeps in real time, and at a
/// few hundred times real speed its default 1 s backoff would be minutes of
/// simulated time.
func testRetryPolicy(maxAttempts: Int = 3) -> RetryPolicy {
    RetryPolicy(maxAttempts: maxAttempts, retryThrottling: false, baseDelay: .milliseconds(1))
}

/// Starts a simulator for `spec`, runs `body` against it, and always stops it.
func withSimulator<T>(_ spec: FleetSpec, speed: Double = 400, throttle: ThrottleConfig = .aws,
                      retry: RetryPolicy = testRetryPolicy(), log: CallLog? = nil,
                      _ body: (SimHarness) async throws -> T) async throws -> T {
    let simClock = ScaledClock(speed: speed)
    let engine = SimEngine(spec: spec, clock: simClock, throttle: throttle, authenticate: true)
    var logger = Logger(label: "torpor.fleet-tests")
    logger.logLevel = .critical
    let simulator = try await RunningSimulator.start(engine: engine, logger: logger)
    let endpoint: RequestURL
    do {
        endpoint = try RequestURL(parsing: simulator.endpoint)
    } catch {
        await simulator.stop()
        throw error
    }
    var observer: (@Sendable (AWSCallEvent) -> Void)?
    if let log {
        observer = { @Sendable event in log.record(event, at: simClock.now()) }
    }
    do {
        let location = ServiceLocation(region: spec.region, endpoint: endpoint, endpointSource: "test")
        let aws = AWSQueryClient(service: "ec2", apiVersion: EC2Client.apiVersion, location: location,
                                 credentials: StaticCredentialProvider(testCredentials), transport: CurlTransport(),
                                 retryPolicy: retry, logger: logger, observer: observer)
        let harness = SimHarness(engine: engine, simulator: simulator, ec2: EC2Client(aws: aws),
                                 clock: ScaledFleetClock(speed: speed, now: { engine.clock.now() }))
        let result = try await body(harness)
        await simulator.stop()
        return result
    } catch {
        await simulator.stop()
        throw error
    }
}

/// Results by id, failing the test if an id has two.
func resultsByID(_ report: FleetReport) -> [String: InstanceResult] {
    var byID: [String: InstanceResult] = [:]
    for result in report.results {
        #expect(byID[result.instanceID] == nil, "two results for \(result.instanceID)")
        byID[result.instanceID] = result
    }
    return byID
}

/// Whether an outcome matches what the simulator says happened (as the
/// benchmark judges it, written out independently).
func agreesWithTruth(_ result: InstanceResult, _ truth: SimEngine.InstanceTruth?, before: SimEngine.InstanceTruth?,
                     action: FleetAction) -> Bool {
    guard let truth, let before else { return false }
    switch result.outcome {
    case .hibernated: return truth.state == .stopped && truth.stateReasonCode == "Client.UserInitiatedHibernate"
    case .stopped: return truth.state == .stopped && truth.stateReasonCode == "Client.UserInitiatedShutdown"
    case .started: return truth.state == .running
    case .noActionNeeded:
        return action == .start ? [.running, .pending].contains(truth.state) : [.stopped, .stopping].contains(truth.state)
    case .skipped: return truth.state == before.state
    case .failed: return action == .start ? truth.state != .running : truth.state != .stopped
    case .accepted: return action == .start ? [.pending, .running].contains(truth.state) : [.stopping, .stopped].contains(truth.state)
    }
}
