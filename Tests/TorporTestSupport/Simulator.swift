import Foundation
import Logging
import Synchronization
import Testing
public import TorporAWS
public import TorporEC2
public import TorporFleet
public import TorporSigV4
public import TorporSim

// MARK: The simulator in this process

/// Every call the client made, with the simulated time it ended at.
public final class CallLog: Sendable {
    public struct Entry: Sendable {
        public let time: Double
        public let action: String
        public let outcome: AWSCallEvent.Outcome
        public let throttled: Bool
    }

    private let entries = Mutex<[Entry]>([])

    public init() {}

    public func record(_ event: AWSCallEvent, at time: Double) {
        entries.withLock { $0.append(Entry(time: time, action: event.action, outcome: event.outcome, throttled: event.throttled)) }
    }

    public var all: [Entry] { entries.withLock { $0 } }
}

/// A simulator on 127.0.0.1, a signed client over curl, and the run's clock.
public struct SimHarness {
    public let engine: SimEngine
    public let simulator: RunningSimulator
    public let ec2: EC2Client
    public let clock: ScaledFleetClock
    /// Simulated seconds per real second.
    public let speed: Double
    public let location: ServiceLocation
    /// What `ec2` signs with: the spec's first access key.
    public let credentials: AWSCredentials
    public let retry: RetryPolicy

    /// Ground truth by id.
    public func truth() -> [String: SimEngine.InstanceTruth] {
        Dictionary(uniqueKeysWithValues: engine.truth().map { ($0.id, $0) })
    }

    /// Ids of a group's instances, in the simulator's order.
    public func ids(group: String) -> [String] {
        engine.instances().filter { $0.group == group }.map(\.id)
    }

    /// Instances by id: group, address.
    public func instances() -> [String: (group: String, privateIP: String)] {
        Dictionary(uniqueKeysWithValues: engine.instances().map { ($0.id, ($0.group, $0.privateIP)) })
    }

    /// A client of its own over `transport` (same credentials and retries as
    /// `ec2`, no observer).
    public func client(_ transport: any HTTPTransport) -> EC2Client {
        EC2Client(aws: AWSQueryClient(service: "ec2", apiVersion: EC2Client.apiVersion, location: location,
                                      credentials: StaticCredentialProvider(credentials), transport: transport,
                                      retryPolicy: retry, logger: quietLogger, observer: nil))
    }

    public func describe(_ ids: [String]) async throws -> [EC2Instance] {
        try await ec2.describeInstances(ids: ids).all()
    }

    public func select(tag key: String, _ value: String) async throws -> FleetSelection {
        try await FleetSelection.resolve(ec2, FleetSelector(tags: [EC2Tag(key: key, value: value)]))
    }

    public func execute(_ plan: FleetPlan, _ options: FleetExecutor.Options = testOptions(),
                        progress: (@Sendable (FleetProgress) -> Void)? = nil) async throws -> FleetReport {
        try await FleetExecutor(ec2: ec2, clock: clock, options: options, progress: progress).execute(plan)
    }

    /// Waits (in real time) until every one of `ids` is in `state` in truth;
    /// records an issue and throws if they are not within `realTimeout`.
    public func waitUntil(_ ids: [String], are state: SimState, realTimeout: Double = 20) async throws {
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

/// Executor options for runs against the simulator: the first poll soon,
/// and a bounded wait, so that a run takes at most a few real seconds.
public func testOptions(_ configure: (inout FleetExecutor.Options) -> Void = { _ in }) -> FleetExecutor.Options {
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
public func testRetryPolicy(maxAttempts: Int = 3) -> RetryPolicy {
    RetryPolicy(maxAttempts: maxAttempts, retryThrottling: false, baseDelay: .milliseconds(1))
}

/// What went wrong in setting up a test's simulator.
public struct SimHarnessError: Error, CustomStringConvertible {
    public let description: String
}

/// Starts a simulator on 127.0.0.1 for `spec` (with probe ports opened if
/// `probes`), runs `body` against it with a client that signs with the
/// spec's first access key, and always stops it.
public func withSimulator<T>(_ spec: FleetSpec, speed: Double = 400, throttle: ThrottleConfig = .aws, probes: Bool = false,
                             retry: RetryPolicy = testRetryPolicy(), log: CallLog? = nil,
                             _ body: (SimHarness) async throws -> T) async throws -> T {
    guard let credentials = spec.credentials.first else {
        throw SimHarnessError(description: "the spec has no credentials for the simulator to accept")
    }
    let simClock = ScaledClock(speed: speed)
    let engine = SimEngine(spec: spec, clock: simClock, throttle: throttle, authenticate: true, probes: probes)
    let simulator = try await RunningSimulator.start(engine: engine, logger: quietLogger)
    var observer: (@Sendable (AWSCallEvent) -> Void)?
    if let log {
        observer = { @Sendable event in log.record(event, at: simClock.now()) }
    }
    do {
        let endpoint = try RequestURL(parsing: simulator.endpoint)
        let location = ServiceLocation(region: spec.region, endpoint: endpoint, endpointSource: "test")
        let aws = AWSQueryClient(service: "ec2", apiVersion: EC2Client.apiVersion, location: location,
                                 credentials: StaticCredentialProvider(credentials), transport: CurlTransport(),
                                 retryPolicy: retry, logger: quietLogger, observer: observer)
        let harness = SimHarness(engine: engine, simulator: simulator, ec2: EC2Client(aws: aws),
                                 clock: ScaledFleetClock(speed: speed, now: { engine.clock.now() }), speed: speed,
                                 location: location, credentials: credentials, retry: retry)
        let result = try await body(harness)
        await simulator.stop()
        return result
    } catch {
        await simulator.stop()
        throw error
    }
}

/// Probe ports of the tests, one range per user. Every simulator on this
/// machine puts its instances on the same 127.16.x.y addresses, so a port two
/// simulators share answers for both. torpor-bench takes its own from 20,000
/// to 25,000 (it runs beside the tests as the fidelity check); the default
/// fleet's 8080 belongs to the serialized simulator suite.
public enum ProbePorts {
    /// The integration tests' `torpor sim` processes.
    public static let integration = 25_000..<28_000
    /// The in-process tracker tests.
    public static let tracker = 28_000..<32_000
}
