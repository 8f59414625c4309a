import Foundation

/// An EC2 error as the API returns it.
public struct SimAPIError: Error, Sendable, Equatable {
    public let code: String
    public let message: String
    public let status: Int

    public init(_ code: String, _ message: String, status: Int = 400) {
        self.code = code
        self.message = message
        self.status = status
    }

    static func notFound(_ ids: [String]) -> SimAPIError {
        ids.count == 1
            ? SimAPIError("InvalidInstanceID.NotFound", "The instance ID '\(ids[0])' does not exist")
            : SimAPIError("InvalidInstanceID.NotFound", "The instance IDs '\(ids.joined(separator: ", "))' do not exist")
    }
}

/// A probe listener to open or close, applied outside the state's lock.
struct ProbeChange {
    let address: String
    let port: Int
    let open: Bool
}

/// One instance's move in a StopInstances or StartInstances answer.
struct StateChangeItem {
    let id: String
    let previous: SimState
    let current: SimState
}

/// The whole simulated fleet, driven by explicit simulated times: a value
/// that tests step forward without any server, clock or sleep.
struct FleetState {
    var spec: FleetSpec
    private(set) var instances: [SimInstance] = []
    private(set) var indexByID: [String: Int] = [:]
    private var scheduler = Scheduler()
    private(set) var events: [SimEvent] = []
    var faults: FaultSpec
    /// Probe listeners to open or close since the last drain.
    private(set) var probeChanges: [ProbeChange] = []
    private(set) var now: Double
    let startTime: Double
    var spotMarket: SpotMarket

    init(spec: FleetSpec, now: Double) {
        self.spec = spec
        self.now = now
        startTime = now
        faults = spec.faults
        spotMarket = SpotMarket(series: spec.spotPrices, seed: spec.seed, start: now)
        for group in spec.groups { addGroup(group, cause: "initial") }
    }

    // MARK: Building the fleet

    mutating func addGroup(_ group: GroupSpec, cause: String) {
        let groupIndex: Int
        if let existing = spec.groups.firstIndex(where: { $0.name == group.name }), cause == "initial" {
            groupIndex = existing
        } else {
            spec.groups.append(group)
            groupIndex = spec.groups.count - 1
        }
        var random = SimRandom(seed: spec.seed, 0x67_726F_7570, UInt64(groupIndex))
        // Exact shares, spread through the group by a seeded shuffle.
        var order = Array(0..<group.count)
        order.shuffle(using: &random)
        let unconfigured = Set(order.prefix(Int((Double(group.count) * (1 - group.hibernationConfigured)).rounded())))
        order.shuffle(using: &random)
        let spotCount = Int((Double(group.count) * group.spot).rounded())
        let oneTimeCount = Int((Double(group.count) * group.oneTimeSpot).rounded())
        let persistentSpot = Set(order.prefix(spotCount))
        let oneTimeSpot = Set(order.dropFirst(spotCount).prefix(oneTimeCount))

        var tags = group.tags
        if let asg = group.autoScalingGroup { tags.append((key: "aws:autoscaling:groupName", value: asg)) }
        for member in 0..<group.count {
            let index = instances.count
            var id: String
            repeat {
                // Seventeen hex digits, as EC2's ids have: "0" and sixteen more.
                let hex = String(random.next(), radix: 16)
                id = "i-0" + String(repeating: "0", count: 16 - hex.count) + hex
            } while indexByID[id] != nil
            let isSpot = persistentSpot.contains(member) || oneTimeSpot.contains(member)
            let state: SimState = group.initialState == .running ? .running : .stopped
            var instance = SimInstance(
                id: id, index: index, group: groupIndex, instanceType: group.instanceType,
                zone: group.zones[member % group.zones.count], privateIP: Self.privateIP(index),
                memoryGiB: group.memoryGiB, tags: tags + [(key: "Name", value: "\(group.name)-\(member + 1)")],
                hibernationConfigured: !unconfigured.contains(member),
                lifecycle: isSpot ? "spot" : nil, oneTimeSpot: oneTimeSpot.contains(member),
                spotRequestID: isSpot ? "sir-" + String(random.next() & 0xFFFF_FFFF, radix: 16) : nil,
                rootDeviceType: group.rootDeviceType, probePort: group.probePort,
                state: state,
                // Launched a while ago, so that hibernation is allowed at once.
                launchTime: now - 86_400 - Double(random.next() % 86_400))
            instance.hibernated = group.initialState == .hibernated
            if state == .running {
                instance.statusOk = true
            } else {
                let code = instance.hibernated ? "Client.UserInitiatedHibernate" : "Client.UserInitiatedShutdown"
                instance.stateReason = (code, "\(code): User initiated \(instance.hibernated ? "hibernate" : "shutdown")")
                instance.transitionReason = Self.userInitiated(now - 3600)
            }
            instances.append(instance)
            indexByID[id] = index
            if state == .running, instance.probePort != nil {
                setReachable(index, true, cause: cause)
            }
        }
    }

    /// A distinct loopback address per instance (127.16.0.1 upward), which
    /// Linux answers on without any set-up.
    static func privateIP(_ index: Int) -> String {
        let value = 0x10_0001 + index
        return "127.\((value >> 16) & 0xFF).\((value >> 8) & 0xFF).\(value & 0xFF)"
    }

    static func userInitiated(_ time: Double) -> String {
        let date = Date(timeIntervalSince1970: time)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "User initiated (%04d-%02d-%02d %02d:%02d:%02d GMT)", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    // MARK: Time

    /// Carries out every transition due by `time`, in time order.
    mutating func advance(to time: Double) {
        while let entry = scheduler.popDue(by: time) {
            now = max(now, entry.time)
            guard instances[entry.instance].generation == entry.generation else { continue }
            fire(entry)
        }
        now = max(now, time)
    }

    /// Transitions scheduled and not yet fired (stale ones included until
    /// their time comes).
    var scheduledCount: Int { scheduler.count }

    private mutating func fire(_ entry: Scheduler.Entry) {
        let index = entry.instance
        let timings = spec.groups[instances[index].group].timings
        switch entry.kind {
        case .stopped:
            transition(index, to: .stopped, cause: "scheduled")
        case .running:
            transition(index, to: .running, cause: "scheduled")
            setStatus(index, ok: false, cause: "scheduled", from: "not-applicable", to: "initializing")
            let generation = instances[index].generation
            scheduler.schedule(at: now + draw(index, timings.statusOk), instance: index, generation: generation, kind: .statusOk)
            if instances[index].probePort != nil {
                scheduler.schedule(at: now + draw(index, timings.reachable), instance: index, generation: generation, kind: .reachable)
            }
        case .statusOk:
            setStatus(index, ok: true, cause: "scheduled", from: "initializing", to: "ok")
        case .reachable:
            setReachable(index, true, cause: "scheduled")
        case .terminated:
            transition(index, to: .terminated, cause: "interruption")
        case .startFailed:
            // The instance never got going: EC2 puts it back to stopped.
            instances[index].stateReason = ("Client.InternalError", "Client.InternalError: Client error on launch")
            transition(index, to: .stopped, cause: "injected-fault")
        }
    }

    /// A duration from the instance's own stream of draws.
    private mutating func draw(_ index: Int, _ distribution: DurationDistribution) -> Double {
        instances[index].draws += 1
        var random = SimRandom(seed: spec.seed, 0x64_7261_77, UInt64(index), instances[index].draws)
        return distribution.quantile(random.unit())
    }

    private mutating func chance(_ index: Int, _ probability: Double) -> Bool {
        guard probability > 0 else { return false }
        instances[index].draws += 1
        var random = SimRandom(seed: spec.seed, 0x63_6861_6E63, UInt64(index), instances[index].draws)
        return random.unit() < probability
    }

    private mutating func record(_ index: Int, _ kind: SimEvent.Kind, from: String, to: String, cause: String) {
        events.append(SimEvent(sequence: events.count, time: now, instanceID: instances[index].id, kind: kind,
                               from: from, to: to, cause: cause))
    }

    private mutating func transition(_ index: Int, to state: SimState, cause: String) {
        let from = instances[index].state
        guard from != state else { return }
        instances[index].state = state
        instances[index].generation += 1
        record(index, .state, from: from.rawValue, to: state.rawValue, cause: cause)
    }

    private mutating func setStatus(_ index: Int, ok: Bool, cause: String, from: String, to: String) {
        instances[index].statusOk = ok
        record(index, .status, from: from, to: to, cause: cause)
    }

    private mutating func setReachable(_ index: Int, _ open: Bool, cause: String) {
        guard instances[index].reachable != open, let port = instances[index].probePort else { return }
        instances[index].reachable = open
        record(index, .reachability, from: open ? "closed" : "open", to: open ? "open" : "closed", cause: cause)
        probeChanges.append(ProbeChange(address: instances[index].privateIP, port: port, open: open))
    }

    mutating func drainProbeChanges() -> [ProbeChange] {
        defer { probeChanges = [] }
        return probeChanges
    }

    // MARK: Lookups

    static func isWellFormedID(_ id: String) -> Bool {
        guard id.hasPrefix("i-") else { return false }
        let digits = id.dropFirst(2)
        return (digits.count == 8 || digits.count == 17) && digits.allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }

    /// Indexes of `ids`, or EC2's error for the first malformed id or for
    /// every unknown one.
    func resolve(_ ids: [String]) throws(SimAPIError) -> [Int] {
        if let bad = ids.first(where: { !Self.isWellFormedID($0) }) {
            throw SimAPIError("InvalidInstanceID.Malformed", "Invalid id: \"\(bad)\"")
        }
        let missing = ids.filter { indexByID[$0] == nil }
        if !missing.isEmpty { throw SimAPIError.notFound(missing) }
        var seen = Set<Int>()
        return ids.compactMap { indexByID[$0] }.filter { seen.insert($0).inserted }
    }

    func instance(_ index: Int) -> SimInstance { instances[index] }

    // MARK: StopInstances

    mutating func stop(ids: [String], hibernate: Bool, force: Bool, dryRun: Bool, requestID: String) throws(SimAPIError) -> [StateChangeItem] {
        guard !ids.isEmpty else { throw SimAPIError("MissingParameter", "The request must contain the parameter InstanceId") }
        let indexes = try resolve(ids)
        for index in indexes {
            let instance = instances[index]
            switch instance.state {
            case .terminated, .shuttingDown, .pending:
                throw SimAPIError("IncorrectInstanceState", "This instance '\(instance.id)' is not in a state from which it can be stopped.")
            default: break
            }
            if instance.rootDeviceType != "ebs" {
                throw SimAPIError("UnsupportedOperation", "The instance '\(instance.id)' does not have an 'ebs' root device type and cannot be stopped.")
            }
            if instance.oneTimeSpot {
                throw SimAPIError("UnsupportedOperation", "You can't stop the Spot Instance '\(instance.id)' because it is associated with a one-time Spot Instance request. You can only stop Spot Instances associated with persistent Spot Instance requests.")
            }
        }
        if hibernate {
            let unconfigured = indexes.filter { !instances[$0].hibernationConfigured }.map { instances[$0].id }
            if !unconfigured.isEmpty {
                throw SimAPIError("UnsupportedHibernationConfiguration", "For hibernation, the instance must be configured for hibernation: \(unconfigured.joined(separator: ", ")) is not configured for hibernation.")
            }
            if let young = indexes.first(where: { instances[$0].state == .running && now - instances[$0].launchTime < spec.hibernateReadyAfter }) {
                throw SimAPIError("UnsupportedOperation", "Instance '\(instances[young].id)' is not ready to hibernate yet, please try again in a few minutes.")
            }
        }
        if dryRun { throw SimAPIError("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", status: 412) }

        var changes: [StateChangeItem] = []
        for index in indexes {
            let previous = instances[index].state
            if previous == .running {
                let code = hibernate ? "Client.UserInitiatedHibernate" : "Client.UserInitiatedShutdown"
                instances[index].stateReason = (code, "\(code): User initiated \(hibernate ? "hibernate" : "shutdown")")
                instances[index].transitionReason = Self.userInitiated(now)
                instances[index].hibernated = hibernate
                transition(index, to: .stopping, cause: requestID)
                if instances[index].statusOk { setStatus(index, ok: false, cause: requestID, from: "ok", to: "not-applicable") }
                else { setStatus(index, ok: false, cause: requestID, from: "initializing", to: "not-applicable") }
                setReachable(index, false, cause: requestID)
                let timings = spec.groups[instances[index].group].timings
                var duration = hibernate
                    ? draw(index, timings.hibernate) + timings.hibernatePerGiB * instances[index].memoryGiB
                    : draw(index, timings.stop)
                if force { duration *= 0.5 }
                scheduler.schedule(at: now + duration, instance: index, generation: instances[index].generation, kind: .stopped)
            }
            changes.append(StateChangeItem(id: instances[index].id, previous: previous, current: instances[index].state))
        }
        return changes
    }

    // MARK: StartInstances

    mutating func start(ids: [String], dryRun: Bool, requestID: String) throws(SimAPIError) -> [StateChangeItem] {
        guard !ids.isEmpty else { throw SimAPIError("MissingParameter", "The request must contain the parameter InstanceId") }
        let indexes = try resolve(ids)
        for index in indexes {
            let instance = instances[index]
            switch instance.state {
            case .stopping, .terminated, .shuttingDown:
                throw SimAPIError("IncorrectInstanceState", "The instance '\(instance.id)' is not in a state from which it can be started.")
            default: break
            }
            if instance.state == .stopped,
               faults.noCapacity.contains(.init(instanceType: instance.instanceType, zone: instance.zone)) {
                throw SimAPIError("InsufficientInstanceCapacity", "We currently do not have sufficient \(instance.instanceType) capacity in the Availability Zone you requested (\(instance.zone)). Our system will be working on provisioning additional capacity. You can currently get \(instance.instanceType) capacity by not specifying an Availability Zone in your request or choosing a different Availability Zone.", status: 500)
            }
        }
        if dryRun { throw SimAPIError("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", status: 412) }

        var changes: [StateChangeItem] = []
        for index in indexes {
            let previous = instances[index].state
            if previous == .stopped {
                instances[index].stateReason = nil
                instances[index].transitionReason = ""
                instances[index].launchTime = now
                transition(index, to: .pending, cause: requestID)
                let timings = spec.groups[instances[index].group].timings
                let generation = instances[index].generation
                if chance(index, faults.startFailureRate) {
                    scheduler.schedule(at: now + draw(index, timings.resume), instance: index, generation: generation, kind: .startFailed)
                } else {
                    let duration = draw(index, instances[index].hibernated ? timings.resume : timings.coldBoot)
                    scheduler.schedule(at: now + duration, instance: index, generation: generation, kind: .running)
                }
            }
            changes.append(StateChangeItem(id: instances[index].id, previous: previous, current: instances[index].state))
        }
        return changes
    }

    // MARK: Spot interruptions and tags

    /// A spot interruption: EC2 stops, hibernates or terminates the instance
    /// on its own, with the Server.* state reason.
    mutating func interrupt(ids: [String], behavior: String) throws(SimAPIError) {
        let indexes = try resolve(ids)
        for index in indexes where instances[index].state == .running || instances[index].state == .pending {
            let terminate = behavior == "terminate"
            let code = terminate ? "Server.SpotInstanceTermination" : "Server.SpotInstanceShutdown"
            instances[index].stateReason = (code, "\(code): Spot instance \(terminate ? "termination" : "shutdown")")
            instances[index].hibernated = behavior == "hibernate" && instances[index].hibernationConfigured
            // A pending instance's status was not-applicable already.
            let wasRunning = instances[index].state == .running
            transition(index, to: terminate ? .shuttingDown : .stopping, cause: "interruption")
            if wasRunning {
                setStatus(index, ok: false, cause: "interruption", from: instances[index].statusOk ? "ok" : "initializing", to: "not-applicable")
            }
            setReachable(index, false, cause: "interruption")
            let duration = draw(index, spec.groups[instances[index].group].timings.stop)
            scheduler.schedule(at: now + duration, instance: index, generation: instances[index].generation,
                               kind: terminate ? .terminated : .stopped)
        }
    }

    mutating func createTags(ids: [String], tags: [(String, String)]) throws(SimAPIError) {
        let indexes = try resolve(ids)
        for index in indexes {
            for (key, value) in tags {
                if let existing = instances[index].tags.firstIndex(where: { $0.key == key }) {
                    instances[index].tags[existing].value = value
                } else {
                    instances[index].tags.append((key: key, value: value))
                }
            }
        }
    }

    // MARK: Counting

    func count(in state: SimState) -> Int { instances.reduce(0) { $0 + ($1.state == state ? 1 : 0) } }
}
