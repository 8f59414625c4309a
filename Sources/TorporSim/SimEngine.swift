import Foundation
import Synchronization
import TorporSigV4

/// What the server should do with one EC2 request.
public enum SimOutcome: Sendable {
    case reply(EC2Reply)
    /// Close the connection without answering (an injected fault).
    case reset
}

/// Calls, throttles and errors so far, and the fleet's states.
public struct SimStats: Sendable, Codable {
    public var simulatedTime: Double
    public var simulatedSince: Double
    public var calls: [String: Int]
    public var throttled: [String: Int]
    public var errors: [String: Int]
    public var instances: [String: Int]
    public var pendingTransitions: Int
}

/// The simulator: a fleet, a clock, EC2's throttling and injected faults,
/// behind one lock. Thread-safe; the HTTP server and tests call it directly.
public final class SimEngine: Sendable {
    public let clock: any SimClock
    public let throttle: ThrottleConfig
    public let authenticate: Bool

    private struct Guarded {
        var fleet: FleetState
        var buckets: TokenBuckets
        var calls: [String: Int] = [:]
        var throttled: [String: Int] = [:]
        var errors: [String: Int] = [:]
        var requests: UInt64 = 0
        var faultRandom: SimRandom
    }

    private let guarded: Mutex<Guarded>
    private let credentials: [String: String]
    let probes: ProbeListeners?

    /// - Parameters:
    ///   - probes: opens the probe ports; nil leaves reachability as events only.
    public init(spec: FleetSpec, clock: any SimClock, throttle: ThrottleConfig = .aws, authenticate: Bool = true,
                probes: Bool = false) {
        self.clock = clock
        self.throttle = throttle
        self.authenticate = authenticate
        let now = clock.now()
        var fleet = FleetState(spec: spec, now: now)
        let initialProbes = fleet.drainProbeChanges()
        guarded = Mutex(Guarded(fleet: fleet, buckets: TokenBuckets(config: throttle, now: now),
                                faultRandom: SimRandom(seed: spec.seed, 0x66_6175_6C74)))
        credentials = Dictionary(spec.credentials.map { ($0.accessKeyID, $0.secretAccessKey) }, uniquingKeysWith: { first, _ in first })
        self.probes = probes ? ProbeListeners(now: { [clock] in clock.now() }) : nil
        self.probes?.apply(initialProbes)
    }

    public var region: String { guarded.withLock { $0.fleet.spec.region } }

    /// The secret for an access key of the fleet file, for signature checks.
    func secret(for accessKeyID: String) -> String? { credentials[accessKeyID] }

    /// Fires every transition due by now. The server calls this on a timer
    /// so that probe ports open and close on time between requests.
    public func tick() {
        let changes = guarded.withLock { state -> [ProbeChange] in
            state.fleet.advance(to: clock.now())
            return state.fleet.drainProbeChanges()
        }
        probes?.apply(changes)
    }

    static func throttleCosts(_ call: EC2Call) -> [(ThrottleConfig.Category, Double)] {
        switch call.action {
        case "DescribeInstances":
            let unfiltered = call.filters.isEmpty && call.list("InstanceId").isEmpty && call.parameters["MaxResults"] == nil
            return [(unfiltered ? .describeInstancesUnfiltered : .nonMutating, 1)]
        case "StartInstances":
            return [(.startInstances, 1), (.startInstancesResources, Double(call.list("InstanceId").count))]
        case "StopInstances":
            return [(.mutating, 1), (.stopInstancesResources, Double(call.list("InstanceId").count))]
        case "CreateTags":
            return [(.mutating, 1)]
        default:
            return [(.nonMutating, 1)]
        }
    }

    /// Handles one EC2 call whose signature was already checked.
    public func handle(action: String, parameters: [String: String]) -> SimOutcome {
        let (outcome, changes) = guarded.withLock { state -> (SimOutcome, [ProbeChange]) in
            let now = clock.now()
            state.fleet.advance(to: now)
            state.requests += 1
            let requestID = Self.requestID(state.requests)
            let call = EC2Call(action: action, parameters: parameters, requestID: requestID)
            state.calls[action, default: 0] += 1

            let faults = state.fleet.faults
            if faults.resetRate > 0, state.faultRandom.unit() < faults.resetRate {
                state.errors["ConnectionReset", default: 0] += 1
                return (.reset, state.fleet.drainProbeChanges())
            }
            if faults.errorRate > 0, state.faultRandom.unit() < faults.errorRate {
                let unavailable = state.faultRandom.unit() < 0.5
                let error = unavailable
                    ? SimAPIError("Unavailable", "The service is unavailable. Please try again shortly.", status: 503)
                    : SimAPIError("InternalError", "An internal error has occurred", status: 500)
                state.errors[error.code, default: 0] += 1
                return (.reply(.error(error, requestID: requestID)), state.fleet.drainProbeChanges())
            }
            let costs = Self.throttleCosts(call)
            guard state.buckets.take(costs, now: now) else {
                state.throttled[action, default: 0] += 1
                state.errors["RequestLimitExceeded", default: 0] += 1
                return (.reply(.error(SimAPIError("RequestLimitExceeded", "Request limit exceeded.", status: 503), requestID: requestID)),
                        state.fleet.drainProbeChanges())
            }
            let reply = state.fleet.handle(call)
            if let code = reply.errorCode {
                state.errors[code, default: 0] += 1
                state.buckets.refund(costs)
            } else if faults.lostReplyRate > 0, state.faultRandom.unit() < faults.lostReplyRate {
                state.errors["ReplyLost", default: 0] += 1
                return (.reset, state.fleet.drainProbeChanges())
            }
            return (.reply(reply), state.fleet.drainProbeChanges())
        }
        probes?.apply(changes)
        return outcome
    }

    /// Counts an answer the server gave before the engine saw the call
    /// (AuthFailure, RequestExpired).
    public func recordRejected(action: String, code: String) {
        guarded.withLock { state in
            state.calls[action, default: 0] += 1
            state.errors[code, default: 0] += 1
        }
    }

    public func nextRequestID() -> String {
        guarded.withLock { state in
            state.requests += 1
            return Self.requestID(state.requests)
        }
    }

    static func requestID(_ number: UInt64) -> String {
        let hex = String(number, radix: 16)
        return "00000000-0000-4000-8000-" + String(repeating: "0", count: max(0, 12 - hex.count)) + hex
    }

    // MARK: Ground truth and control

    /// Transitions from `since` (a sequence number) on, optionally of one instance.
    public func events(since: Int = 0, instanceID: String? = nil) -> [SimEvent] {
        tick()
        return guarded.withLock { state in
            let slice = state.fleet.events.dropFirst(max(0, since))
            guard let instanceID else { return Array(slice) }
            return slice.filter { $0.instanceID == instanceID }
        }
    }

    public func stats() -> SimStats {
        tick()
        return guarded.withLock { state in
            var byState: [String: Int] = [:]
            for s in SimState.allCases { byState[s.rawValue] = state.fleet.count(in: s) }
            return SimStats(simulatedTime: state.fleet.now, simulatedSince: state.fleet.startTime, calls: state.calls,
                            throttled: state.throttled, errors: state.errors, instances: byState,
                            pendingTransitions: state.fleet.scheduledCount)
        }
    }

    public var faults: FaultSpec {
        get { guarded.withLock { $0.fleet.faults } }
    }

    public func setFaults(_ faults: FaultSpec) {
        guarded.withLock { $0.fleet.faults = faults }
    }

    public func setSpotPrice(instanceType: String, zone: String, product: String, price: Double) {
        guarded.withLock { state in
            state.fleet.spotMarket.set(.init(instanceType: instanceType, zone: zone, product: product), price: price, at: clock.now())
        }
    }

    /// Adds groups of instances; returns the new instances' ids.
    public func addGroups(_ groups: [GroupSpec]) -> [String] {
        let (ids, changes) = guarded.withLock { state -> ([String], [ProbeChange]) in
            state.fleet.advance(to: clock.now())
            let before = state.fleet.instances.count
            for group in groups { state.fleet.addGroup(group, cause: "fleet-change") }
            let ids = state.fleet.instances[before...].map(\.id)
            return (ids, state.fleet.drainProbeChanges())
        }
        probes?.apply(changes)
        return ids
    }

    /// A spot interruption of these instances: `stop`, `hibernate` or `terminate`.
    public func interrupt(_ ids: [String], behavior: String) throws(SimAPIError) {
        let changes = try guarded.withLock { (state) throws(SimAPIError) -> [ProbeChange] in
            state.fleet.advance(to: clock.now())
            try state.fleet.interrupt(ids: ids, behavior: behavior)
            return state.fleet.drainProbeChanges()
        }
        probes?.apply(changes)
    }

    /// Every instance's id, state and private address, for tests and tools.
    public func instances() -> [(id: String, state: SimState, privateIP: String, group: String)] {
        tick()
        return guarded.withLock { state in
            state.fleet.instances.map { ($0.id, $0.state, $0.privateIP, state.fleet.spec.groups[$0.group].name) }
        }
    }

    /// One instance as the simulator knows it: the ground truth a
    /// benchmark checks outcomes against.
    public struct InstanceTruth: Sendable {
        public let id: String
        public let state: SimState
        public let stateReasonCode: String?
        public let hibernationConfigured: Bool
        public let group: String
    }

    /// Whether the simulator agrees with an outcome a tool reported.
    ///
    /// - Parameters:
    ///   - outcome: hibernated, stopped, started, no-action-needed, skipped, failed or accepted.
    ///   - before: the instance's state before the run (a skipped instance
    ///     must not have changed).
    ///   - starting: whether the run started instances (else it stopped them).
    /// The moments of each instance's latest start, from the ground truth:
    /// accepted (stopped → pending), running, both status checks ok, and the
    /// probe port open (when its listener really accepted, if later than
    /// the recorded moment). What resume measurements are checked against.
    public struct ResumeTruth: Sendable, Equatable {
        public var accepted: Double
        public var running: Double?
        public var statusOk: Double?
        public var reachable: Double?
    }

    public func resumeTruth() -> [String: ResumeTruth] {
        var truth: [String: ResumeTruth] = [:]
        for event in events() {
            switch (event.kind, event.to) {
            case (.state, "pending") where event.from == "stopped":
                truth[event.instanceID] = ResumeTruth(accepted: event.time)
            case (.state, "running"):
                if truth[event.instanceID]?.running == nil { truth[event.instanceID]?.running = event.time }
            case (.status, "ok"):
                if truth[event.instanceID]?.statusOk == nil { truth[event.instanceID]?.statusOk = event.time }
            case (.reachability, "open"):
                if truth[event.instanceID]?.reachable == nil { truth[event.instanceID]?.reachable = event.time }
            default:
                break
            }
        }
        // A probe could connect only once the listener accepted: if that
        // came after the recorded moment, it is the truth a prober can see.
        if let probes {
            let listeners = guarded.withLock { state in
                truth.keys.compactMap { id -> (String, String, Int)? in
                    guard let index = state.fleet.indexByID[id], let port = state.fleet.instance(index).probePort else { return nil }
                    return (id, state.fleet.instance(index).privateIP, port)
                }
            }
            for (id, address, port) in listeners {
                if let reachable = truth[id]?.reachable, let opened = probes.openedAt(address: address, port: port), opened > reachable {
                    truth[id]?.reachable = opened
                }
            }
        }
        return truth
    }

    public static func confirms(_ truth: InstanceTruth?, outcome: String, before: SimState?, starting: Bool) -> Bool {
        guard let truth else { return false }
        switch outcome {
        case "hibernated": return truth.state == .stopped && truth.stateReasonCode == "Client.UserInitiatedHibernate"
        case "stopped": return truth.state == .stopped && truth.stateReasonCode != "Client.UserInitiatedHibernate"
        case "started": return truth.state == .running
        case "accepted":
            return starting ? [.pending, .running].contains(truth.state) : [.stopping, .stopped].contains(truth.state)
        case "no-action-needed":
            return starting ? truth.state == .running || truth.state == .pending : truth.state == .stopped || truth.state == .stopping
        case "skipped": return before.map { truth.state == $0 } ?? false
        // A failure is right only if the instance really did not get there.
        case "failed": return starting ? truth.state != .running : truth.state != .stopped
        default: return false
        }
    }

    public func truth() -> [InstanceTruth] {
        tick()
        return guarded.withLock { state in
            state.fleet.instances.map {
                InstanceTruth(id: $0.id, state: $0.state, stateReasonCode: $0.stateReason?.code,
                              hibernationConfigured: $0.hibernationConfigured, group: state.fleet.spec.groups[$0.group].name)
            }
        }
    }

    public func shutdown() {
        probes?.closeAll()
    }
}
