import Foundation
import Synchronization
import Testing
import TorporAWS
import TorporEC2
import TorporFleet
import TorporPolicies
import TorporQueue
import TorporReports
import TorporResume
import TorporSigV4
import TorporSim
import TorporTestSupport

// MARK: Temporary stores

/// A queue (and the resume store beside it) in a fresh temporary directory.
func withStore<T>(_ body: (ResumeStore, SQLiteJobQueue) async throws -> T) async throws -> T {
    try await withTemporaryDirectory { directory in
        let queue = try SQLiteJobQueue(path: directory + "/queue.sqlite")
        let store = try ResumeStore(queue: queue)
        return try await body(store, queue)
    }
}

// MARK: Records as values

let t0: Double = 1_795_000_000

func policy(_ name: String, tags: [String: String] = [:], types: [String] = [], readiness: Readiness = .statusOK,
            objectives: ResumeObjectives = ResumeObjectives(), window: Double = 7 * 86_400, deadline: Double = 600) -> ResumePolicy {
    var policy = ResumePolicy(name: name)
    policy.targets = PolicyTargets(tags: tags.sorted { $0.key < $1.key }.map { PolicyTag(key: $0.key, value: $0.value) },
                                   instanceTypes: types)
    policy.readiness = readiness
    policy.objectives = objectives
    policy.window = window
    policy.deadline = deadline
    return policy
}

/// A resume accepted at `accepted`, ready `ready` seconds later (nil: not
/// ready), in `state`.
func record(_ id: String, policy: ResumePolicy = policy("web"), type: String = "m5.large", zone: String = "us-east-1a",
            mode: ResumeMode = .hibernation, accepted: Double = t0, ready: Double?, state: ResumeState = .complete,
            lastState: String? = nil, detail: String? = nil) -> ResumeRecord {
    var r = ResumeRecord(instanceID: id, policy: policy, instanceType: type, zone: zone, privateIP: "10.0.0.1", mode: mode,
                         jobID: nil, accepted: PhaseTime(at: accepted, error: 0.1), checkedAt: accepted)
    if let ready {
        // Every phase up to readiness reached; running a little before.
        r.running = PhaseTime(at: accepted + ready * 0.5, error: 0.5)
        r.set(r.readinessPhase, PhaseTime(at: accepted + ready, error: 0.5))
    }
    r.state = state
    r.lastState = lastState
    r.detail = detail
    return r
}

// MARK: The simulator in this process (see Tests/TorporTestSupport)

let testCredentials = AWSCredentials(accessKeyID: "AKIDRESUMETESTS", secretAccessKey: "resume-tests-secret")

/// A group tagged `Tier` = its name (what the policies here select by).
func tierGroup(_ name: String, _ count: Int, _ configure: (inout GroupSpec) -> Void = { _ in }) -> GroupSpec {
    makeGroup(name, count, tags: [(key: "Tier", value: name)], configure)
}

/// A fleet from this module's seed, its simulator accepting `testCredentials`.
func makeSpec(seed: UInt64 = 66, _ groups: [GroupSpec], _ configure: (inout FleetSpec) -> Void = { _ in }) -> FleetSpec {
    fleetSpec(seed: seed, credentials: [testCredentials], groups, configure)
}

extension SimHarness {
    /// Starts every stopped instance; each StartInstances call EC2 accepts
    /// goes to `accepted` before the executor goes on.
    @discardableResult
    func startAll(_ accepted: @escaping @Sendable (AcceptedStarts) async -> Void) async throws -> FleetReport {
        let selection = try await FleetSelection.resolve(ec2, FleetSelector(states: ["stopped"]))
        var rules = PlanRules()
        rules.maxInstances = 10_000
        let plan = Planner.plan(.start, instances: selection.instances, rules: rules)
        var options = FleetExecutor.Options()
        options.waitForFinalStates = false
        return try await FleetExecutor(ec2: ec2, clock: clock, options: options, startsAccepted: accepted).execute(plan)
    }

    func tracker(_ settings: ResumeSettings, store: ResumeStore?, owner: String = "tests", ec2: EC2Client? = nil,
                 configure: (inout ResumeTracker.Settings) -> Void = { _ in }) -> ResumeTracker {
        var trackerSettings = ResumeTracker.Settings(settings)
        configure(&trackerSettings)
        return ResumeTracker(ec2: ec2 ?? self.ec2, clock: clock, store: store, policies: settings,
                             prober: NetworkProber(transport: CurlTransport(), timeout: 0.5), owner: owner,
                             settings: trackerSettings, logger: quietLogger)
    }
}

/// Runs `tracker` (until cancelled, or idle once told to finish).
func track(_ tracker: ResumeTracker, adopting: Bool = false) -> Task<Void, any Error> {
    Task { try await tracker.run(adopting: adopting) }
}

/// Lets `tracker` finish what is in flight and waits for `task` (its
/// `run`) to end; cancels it and fails after `realTimeout` seconds.
func finish(_ tracker: ResumeTracker, _ task: Task<Void, any Error>, realTimeout: Double = 20,
            sourceLocation: SourceLocation = #_sourceLocation) async throws {
    await tracker.finishWhenIdle()
    let watchdog = Task {
        try await Task.sleep(for: .seconds(realTimeout))
        task.cancel()
    }
    defer { watchdog.cancel() }
    do {
        try await task.value
    } catch is CancellationError {
        Issue.record("the tracker still had \(await tracker.inFlightCount) resumes in flight after \(realTimeout) s",
                     sourceLocation: sourceLocation)
    }
}

/// The simulator's private address of its `index`th instance (127.16.0.1
/// upward, as `FleetState.privateIP` gives them).
func simulatedAddress(_ index: Int) -> String {
    let value = 0x10_0001 + index
    return "127.\((value >> 16) & 0xFF).\((value >> 8) & 0xFF).\(value & 0xFF)"
}

/// `count` probe ports on which nothing listens yet at the first
/// `instances` simulated addresses. Every simulator on this machine (a
/// `torpor sim`, the demo, the benchmark, other tests) puts its instances on
/// the same 127.16.x.x addresses, most with ports 8443 or 8080: a port of
/// theirs would answer this test's probes before its own instances open it.
func freeProbePorts(_ count: Int, instances: Int) async -> [Int] {
    let prober = NetworkProber(transport: CurlTransport(), timeout: 0.2)
    var ports: [Int] = []
    for _ in 0..<200 where ports.count < count {
        let port = Int.random(in: ProbePorts.tracker)
        guard !ports.contains(port) else { continue }
        var free = true
        for index in 0..<instances where await prober.probe(.tcp(port: port), ip: simulatedAddress(index)) == .ready {
            free = false
            break
        }
        if free { ports.append(port) }
    }
    return ports
}

/// A transport that notes, for every request, its action and how many
/// instance ids it names.
final class CountingTransport: HTTPTransport {
    struct Call: Sendable {
        let action: String
        let ids: Int
    }

    private let inner = CurlTransport()
    private let log = Mutex<[Call]>([])

    var calls: [Call] { log.withLock { $0 } }

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let pairs = String(decoding: request.body, as: UTF8.self).split(separator: "&")
        let action = pairs.first { $0.hasPrefix("Action=") }.map { String($0.dropFirst("Action=".count)) } ?? "?"
        let ids = pairs.filter { $0.hasPrefix("InstanceId.") }.count
        log.withLock { $0.append(Call(action: action, ids: ids)) }
        return try await inner.send(request)
    }
}

// MARK: Local servers for probes

/// A TCP socket on 127.0.0.1 (an ephemeral port): listening, answering the
/// first bytes of every connection with `response` and closing it; or bound
/// but not listening, so that connections to it are refused. It stops by
/// itself after `lifetime` seconds at the latest.
final class LocalServer: Sendable {
    let port: Int
    private let fd: Int32
    private let stopped = Mutex(false)
    private let done = Mutex(false)

    init(listening: Bool, response: String? = nil, lifetime: Double = 20) throws {
        let sock = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard sock >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(sock, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { Glibc.close(sock); throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(sock, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        fd = sock
        guard listening else {
            done.withLock { $0 = true }
            return
        }
        guard listen(sock, 16) == 0 else { Glibc.close(sock); throw POSIXError(.EADDRINUSE) }
        let listener = fd
        let deadline = Date().addingTimeInterval(lifetime)
        let thread = Thread { [self] in
            defer { done.withLock { $0 = true } }
            while Date() < deadline, !stopped.withLock({ $0 }) {
                var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 20) > 0 else { continue }
                let client = accept(listener, nil, nil)
                guard client >= 0 else { continue }
                if let response {
                    // Read the request (or whatever comes within a second).
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    var request = Data()
                    let readBy = Date().addingTimeInterval(1)
                    while Date() < readBy, !String(decoding: request, as: UTF8.self).contains("\r\n\r\n") {
                        var clientPoll = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
                        guard poll(&clientPoll, 1, 20) > 0 else { continue }
                        let n = read(client, &buffer, buffer.count)
                        if n <= 0 { break }
                        request.append(contentsOf: buffer[0..<n])
                    }
                    _ = response.withCString { write(client, $0, strlen($0)) }
                }
                Glibc.close(client)
            }
        }
        thread.start()
    }

    /// Stops accepting and closes the socket.
    func stop() {
        stopped.withLock { $0 = true }
        let deadline = Date().addingTimeInterval(2)
        while !done.withLock({ $0 }), Date() < deadline { usleep(5_000) }
        Glibc.close(fd)
    }
}

func httpResponse(_ status: Int, _ reason: String) -> String {
    "HTTP/1.1 \(status) \(reason)\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nhi\n"
}
