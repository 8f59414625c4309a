import Foundation
import Synchronization
public import Logging
public import TorporAWS
public import TorporEC2

/// Carries out a plan on a fleet: calls paced to EC2's buckets, batch
/// failures isolated to the instances that cause them, bulk waits, and
/// exactly one outcome for every instance the plan targeted.
public struct FleetExecutor: Sendable {
    public struct Options: Sendable {
        /// Ids per StopInstances/StartInstances call.
        public var batchSize = 1000
        /// Ask EC2's DryRun; nothing changes, every acting instance gets
        /// no-action or failed per EC2's answer.
        public var dryRun = false
        /// Give up waiting for final states after this long.
        public var waitDeadline: Double = 1800
        /// The first poll comes this long after the last call: most
        /// transitions are over by then, so few polls are wasted.
        public var firstPoll: Double = 45
        public var maxPollInterval: Double = 60
        /// "Not ready to hibernate yet" and capacity errors are retried this
        /// long before the instance is reported.
        public var retryWindow: Double = 600
        /// Tag acted instances with torpor:last-action and torpor:last-action-time.
        public var tagInstances = false
        /// Wait until every acted instance reaches its final state. Off,
        /// acted instances end as `accepted` once EC2 takes the call.
        public var waitForFinalStates = true
        public var limits = EC2Limits.aws

        public init() {}
    }

    public let ec2: EC2Client
    public let clock: any FleetClock
    public let options: Options
    let progressHandler: (@Sendable (FleetProgress) -> Void)?
    let startsHandler: (@Sendable (AcceptedStarts) async -> Void)?

    /// `ec2` should not retry throttling itself (`RetryPolicy(retryThrottling: false)`):
    /// the executor's pacer handles it, so that calls after a throttle wait.
    /// `startsAccepted` hears of every StartInstances call EC2 accepted,
    /// before anything else is sent: the resume tracker's first fact.
    public init(ec2: EC2Client, clock: any FleetClock = WallFleetClock(), options: Options = Options(),
                progress: (@Sendable (FleetProgress) -> Void)? = nil,
                startsAccepted: (@Sendable (AcceptedStarts) async -> Void)? = nil) {
        self.ec2 = ec2
        self.clock = clock
        self.options = options
        progressHandler = progress
        startsHandler = startsAccepted
    }

    public func execute(_ plan: FleetPlan) async throws -> FleetReport {
        let run = FleetRun(plan: plan, executor: self)
        return try await run.execute()
    }
}

/// Instances that a StartInstances call moved from stopped to pending, as
/// the plan described them just before (type, zone, address, tags, and the
/// state reason of the stop that tells a hibernation from a plain stop).
public struct AcceptedStarts: Sendable {
    public let instances: [EC2Instance]
    /// When the call was sent and when its answer arrived: EC2 accepted it
    /// in between.
    public let sentAt: Double
    public let answeredAt: Double
    public let requestID: String?
}

/// One execution's mutable state.
actor FleetRun {
    let plan: FleetPlan
    let executor: FleetExecutor
    let pacer: RatePacer
    var ec2: EC2Client { executor.ec2 }
    var options: FleetExecutor.Options { executor.options }

    var results: [String: InstanceResult] = [:]
    /// Accepted, final state not yet confirmed: id -> what we asked for.
    var awaiting: [String: PendingInstance] = [:]
    var calls = 0
    var throttled = 0
    var firstCallAt: Double?
    var lastDispatchAt: Double?

    struct PendingInstance {
        let planned: PlannedInstance
        let hibernate: Bool
        let fallbackReason: String?
        let acceptedAt: Double
    }

    /// A batch waiting to be sent, possibly not before some time.
    struct Batch {
        var ids: [String]
        var hibernate: Bool
        var notBefore: Double = 0
        var attempts = 0
        /// When this batch was first sent: a resend after a lost answer may
        /// find EC2 already acted on the first.
        var firstSentAt: Double?
    }

    let byID: [String: PlannedInstance]

    init(plan: FleetPlan, executor: FleetExecutor) {
        self.plan = plan
        self.executor = executor
        pacer = RatePacer(limits: executor.options.limits, clock: executor.clock)
        byID = Dictionary(plan.instances.map { ($0.instanceID, $0) }, uniquingKeysWith: { first, _ in first })
    }

    func execute() async throws -> FleetReport {
        let now = executor.clock.now()
        for planned in plan.instances {
            switch planned.decision {
            case .noActionNeeded where !options.dryRun && isOnTheWay(planned.instance.state.name):
                // No call is needed, but the outcome is not known until the
                // instance gets there: an attempt resumed after a worker died
                // finds its own earlier calls' instances in this state.
                awaiting[planned.instanceID] = PendingInstance(
                    planned: planned, hibernate: plan.action == .hibernate, fallbackReason: nil, acceptedAt: now)
            case .noActionNeeded(let reason):
                finish(planned, .noActionNeeded, reason: reason)
            case .skip(let reason):
                finish(planned, .skipped, reason: reason)
            case .fail(let reason):
                finish(planned, .failed, reason: reason, code: "PlanRefused", message: reason)
            default: break
            }
        }
        for missing in plan.missing {
            results[missing.instanceID] = InstanceResult(
                instanceID: missing.instanceID, name: nil, outcome: .failed, reason: nil, errorCode: missing.code,
                errorMessage: missing.message, previousState: "unknown", lastState: "unknown")
        }

        try await dispatch()
        if options.dryRun {
            // Nothing to wait for.
        } else if options.waitForFinalStates {
            try await waitForFinalStates()
        } else {
            for (id, pending) in awaiting {
                finish(pending.planned, .accepted, reason: "EC2 accepted the call; the final state was not waited for",
                       lastState: lastSeen[id])
            }
        }
        if options.tagInstances && !options.dryRun { await tagActedInstances() }
        report("done")

        return FleetReport(
            action: plan.action, dryRun: options.dryRun,
            results: plan.instances.map(\.instanceID).compactMap { results[$0] } + plan.missing.compactMap { results[$0.instanceID] },
            calls: calls, throttled: throttled, firstCallAt: firstCallAt, lastDispatchAt: lastDispatchAt,
            settledAt: options.dryRun ? lastDispatchAt : executor.clock.now())
    }

    // MARK: Outcomes

    /// A state on its way to the plan's target.
    func isOnTheWay(_ state: String) -> Bool {
        plan.action == .start ? state == "pending" : state == "stopping"
    }

    func finish(_ planned: PlannedInstance, _ outcome: InstanceResult.Outcome, reason: String? = nil, code: String? = nil,
                message: String? = nil, lastState: String? = nil) {
        results[planned.instanceID] = InstanceResult(
            instanceID: planned.instanceID, name: planned.instance.name, outcome: outcome, reason: reason, errorCode: code,
            errorMessage: message, previousState: planned.instance.state.name, lastState: lastState ?? planned.instance.state.name)
        awaiting[planned.instanceID] = nil
    }

    func report(_ phase: String) {
        guard let handler = executor.progressHandler else { return }
        handler(FleetProgress(total: plan.instances.count + plan.missing.count, done: results.count,
                              failed: results.values.filter { $0.outcome == .failed }.count, waiting: awaiting.count,
                              calls: calls, throttled: throttled, phase: phase))
    }

    func noteCall() {
        calls += 1
        if firstCallAt == nil { firstCallAt = executor.clock.now() }
    }

    // MARK: Dispatch

    func dispatch() async throws {
        var queue: [Batch] = []
        let acting = plan.acting
        let hibernating = acting.filter { $0.decision == .hibernate }.map(\.instanceID)
        let stopping = acting.filter { if case .stop = $0.decision { return true } else { return false } }.map(\.instanceID)
        let starting = acting.filter { $0.decision == .start }.map(\.instanceID)
        for (ids, hibernate) in [(hibernating, true), (stopping, false), (starting, false)] where !ids.isEmpty {
            queue += ids.chunks(of: options.batchSize).map { Batch(ids: Array($0), hibernate: hibernate) }
        }
        report("dispatching")
        while !queue.isEmpty {
            // The earliest batch that may go now; else wait for the next.
            let now = executor.clock.now()
            guard let index = queue.firstIndex(where: { $0.notBefore <= now }) else {
                let next = queue.map(\.notBefore).min()!
                try await executor.clock.sleep(seconds: next - now)
                continue
            }
            let batch = queue.remove(at: index)
            queue.insert(contentsOf: try await send(batch), at: min(index, queue.count))
            report("dispatching")
        }
    }

    var kind: CallKind { plan.action == .start ? .start : .stop }

    /// Sends one batch; returns batches to send again (split, deferred or
    /// resent after a throttle).
    func send(_ batch: Batch) async throws -> [Batch] {
        guard !batch.ids.isEmpty else { return [] }
        try await pacer.acquire(kind, instances: batch.ids.count)
        noteCall()
        let sentAt = executor.clock.now()
        let result: Result<StateChangeResult, any Error>
        do {
            switch plan.action {
            case .start:
                result = .success(try await ec2.startInstances(ids: batch.ids, dryRun: options.dryRun))
            case .hibernate, .stop:
                result = .success(try await ec2.stopInstances(
                    ids: batch.ids, hibernate: batch.hibernate, force: plan.rules.force && !batch.hibernate, dryRun: options.dryRun))
            }
        } catch {
            result = .failure(error)
        }
        // Before anything else is sent: the next wait depends on it.
        await pacer.observe(callDuration: executor.clock.now() - sentAt)
        switch result {
        case .success(let answer):
            await pacer.accepted()
            let answeredAt = executor.clock.now()
            lastDispatchAt = answeredAt
            accept(batch, answer)
            if plan.action == .start, !answer.dryRunPermitted, let handler = executor.startsHandler {
                await announceStarts(answer, batch: batch, sentAt: sentAt, answeredAt: answeredAt, to: handler)
            }
            return []
        case .failure(let error as AWSServiceError):
            // An attempt within this call may have been carried out with its
            // answer lost (the client, or libcurl on a reused connection,
            // sent it again): whatever is sent again keeps this first send.
            return try await handle(error, batch).map { again in
                var again = again
                again.firstSentAt = again.firstSentAt ?? batch.firstSentAt ?? sentAt
                return again
            }
        case .failure(let error as TransportError):
            // The client already retried what its policy allows.
            await pacer.refund(kind, instances: batch.ids.count)
            if batch.attempts < 3 {
                var again = batch
                again.attempts += 1
                again.firstSentAt = batch.firstSentAt ?? sentAt
                again.notBefore = executor.clock.now() + 5 * Double(again.attempts)
                return [again]
            }
            for id in batch.ids { fail(id, code: "TransportError", message: error.description) }
            return []
        case .failure(let error):
            throw error
        }
    }

    /// Hands the starts EC2 accepted to the resume tracker. Stopped before:
    /// accepted by this call. Pending or running before, where the plan saw
    /// the instance stopped: a start of ours whose answer was lost (the
    /// client retried, libcurl resent on a fresh connection, or this batch
    /// is a resend), accepted at some moment since the batch was first sent.
    /// (Someone else starting the instance between the plan and the call
    /// would be taken for ours: the window is seconds.)
    func announceStarts(_ answer: StateChangeResult, batch: Batch, sentAt: Double, answeredAt: Double,
                        to handler: @Sendable (AcceptedStarts) async -> Void) async {
        var now: [EC2Instance] = [], earlier: [EC2Instance] = []
        for change in answer.changes {
            guard let instance = byID[change.instanceID]?.instance else { continue }
            let before = change.previousState.name
            if before == "stopped" {
                now.append(instance)
            } else if before == "pending" || before == "running", instance.state.name == "stopped" {
                earlier.append(instance)
            }
        }
        let firstSentAt = batch.firstSentAt ?? sentAt
        if firstSentAt >= sentAt { now += earlier; earlier = [] }
        if !now.isEmpty {
            await handler(AcceptedStarts(instances: now, sentAt: sentAt, answeredAt: answeredAt, requestID: answer.requestID))
        }
        if !earlier.isEmpty {
            await handler(AcceptedStarts(instances: earlier, sentAt: firstSentAt, answeredAt: answeredAt, requestID: answer.requestID))
        }
    }

    func accept(_ batch: Batch, _ answer: StateChangeResult) {
        let now = executor.clock.now()
        for id in batch.ids {
            guard let planned = byID[id] else { continue }
            if answer.dryRunPermitted {
                finish(planned, .noActionNeeded, reason: "dry run: EC2 would \(batch.hibernate ? "hibernate" : plan.action == .start ? "start" : "stop") this instance")
                continue
            }
            let fallback: String?
            if case .stop(let reason) = planned.decision { fallback = reason } else { fallback = nil }
            awaiting[id] = PendingInstance(planned: planned, hibernate: batch.hibernate, fallbackReason: fallback ?? fallbackNotes[id],
                                           acceptedAt: now)
        }
        for change in answer.changes where awaiting[change.instanceID] != nil {
            lastSeen[change.instanceID] = change.currentState.name
        }
        for id in batch.ids where awaiting[id] == nil && results[id] == nil {
            if let planned = byID[id] {
                finish(planned, .failed, code: "MissingFromResponse", message: "EC2 accepted the call but did not report this instance")
            }
        }
    }

    var lastSeen: [String: String] = [:]
    /// Why an instance was moved from hibernation to a plain stop by EC2's answer.
    var fallbackNotes: [String: String] = [:]

    func fail(_ id: String, code: String, message: String) {
        guard let planned = byID[id] else { return }
        finish(planned, .failed, code: code, message: message, lastState: lastSeen[id])
    }

    static let callWide: Set<String> = [
        "AuthFailure", "UnauthorizedOperation", "SignatureDoesNotMatch", "InvalidClientTokenId", "OptInRequired", "Blocked",
        "RequestExpired",
    ]

    func handle(_ error: AWSServiceError, _ batch: Batch) async throws -> [Batch] {
        let now = executor.clock.now()
        if RetryPolicy.throttlingCodes.contains(error.code) {
            throttled += 1
            await pacer.throttled(kind)
            await pacer.refund(kind, instances: batch.ids.count)
            return [batch] // the pacer makes it wait
        }
        // EC2 refused the whole call: it acted on none of these instances.
        await pacer.refund(kind, instances: batch.ids.count)
        if Self.callWide.contains(error.code) {
            for id in batch.ids { fail(id, code: error.code, message: error.message) }
            return []
        }
        if error.code == EC2ErrorCode.dryRunOperation {
            accept(batch, StateChangeResult(changes: [], requestID: error.requestID, dryRunPermitted: true))
            return []
        }
        let named = Set(EC2ErrorCode.instanceIDs(in: error.message)).intersection(batch.ids)
        var rest = batch
        rest.ids.removeAll { named.contains($0) }

        switch error.code {
        case _ where error.code.hasPrefix("InvalidInstanceID") && !named.isEmpty:
            for id in named { fail(id, code: error.code, message: error.message) }
            return [rest]
        case EC2ErrorCode.unsupportedHibernation where batch.hibernate && !named.isEmpty:
            // The plan thought these were configured; EC2 says not. Apply the
            // plan's fallback to exactly those.
            var fallbackBatch = Batch(ids: [], hibernate: false)
            for id in named {
                switch plan.rules.hibernationFallback {
                case .stop:
                    fallbackNotes[id] = "EC2 refused hibernation: \(error.message)"
                    fallbackBatch.ids.append(id)
                case .skip:
                    if let planned = byID[id] { finish(planned, .skipped, reason: "EC2 refused hibernation: \(error.message)") }
                case .fail:
                    fail(id, code: error.code, message: error.message)
                }
            }
            return [rest, fallbackBatch]
        default:
            break
        }
        guard batch.ids.count == 1 else {
            // Any other error: split until the instance that causes it.
            let middle = batch.ids.count / 2
            var left = batch, right = batch
            left.ids = Array(batch.ids[..<middle])
            right.ids = Array(batch.ids[middle...])
            return [left, right]
        }
        let id = batch.ids[0]
        switch error.code {
        case EC2ErrorCode.unsupportedOperation where error.message.contains("not ready to hibernate"):
            return retryLater(batch, error, after: 60, now: now)
        case EC2ErrorCode.insufficientCapacity:
            return retryLater(batch, error, after: 30 * pow(2, Double(batch.attempts)), now: now)
        case EC2ErrorCode.unsupportedOperation where error.message.contains("one-time Spot"):
            if let planned = byID[id] { finish(planned, .skipped, reason: "one-time spot instance: EC2 cannot stop it") }
            return []
        case EC2ErrorCode.unsupportedHibernation where batch.hibernate:
            switch plan.rules.hibernationFallback {
            case .stop:
                fallbackNotes[id] = "EC2 refused hibernation: \(error.message)"
                return [Batch(ids: [id], hibernate: false)]
            case .skip:
                if let planned = byID[id] { finish(planned, .skipped, reason: "EC2 refused hibernation: \(error.message)") }
                return []
            case .fail:
                fail(id, code: error.code, message: error.message)
                return []
            }
        case EC2ErrorCode.incorrectInstanceState:
            return try await reconcile(batch, error, now: now)
        default:
            fail(id, code: error.code, message: error.message)
            return []
        }
    }

    func retryLater(_ batch: Batch, _ error: AWSServiceError, after delay: Double, now: Double) -> [Batch] {
        let firstTried = firstRefusal[batch.ids[0]] ?? now
        firstRefusal[batch.ids[0]] = firstTried
        guard now - firstTried + delay <= options.retryWindow else {
            fail(batch.ids[0], code: error.code, message: error.message + " (retried for \(Int(now - firstTried)) s)")
            return []
        }
        var again = batch
        again.attempts += 1
        again.notBefore = now + delay
        return [again]
    }

    var firstRefusal: [String: Double] = [:]

    /// IncorrectInstanceState: look at the instance again and act on what
    /// is there now.
    func reconcile(_ batch: Batch, _ error: AWSServiceError, now: Double) async throws -> [Batch] {
        let id = batch.ids[0]
        guard let planned = byID[id] else { return [] }
        try await pacer.acquire(.describe)
        noteCall()
        let current = try? await ec2.describeInstances(ids: [id]).all().first
        guard let state = current?.state.name else {
            fail(id, code: error.code, message: error.message)
            return []
        }
        lastSeen[id] = state
        switch (plan.action, state) {
        case (.start, "running"), (.start, "pending"):
            finish(planned, .noActionNeeded, reason: "already \(state) when Torpor got to it", lastState: state)
            return []
        case (.hibernate, "stopped"), (.stop, "stopped"), (.hibernate, "stopping"), (.stop, "stopping"):
            finish(planned, .noActionNeeded, reason: "already \(state) when Torpor got to it", lastState: state)
            return []
        case (_, "terminated"), (_, "shutting-down"):
            finish(planned, .skipped, reason: "instance is \(state)", lastState: state)
            return []
        default:
            // In a transition the other way (stopping before a start,
            // pending before a stop): try again once it is over.
            return retryLater(batch, error, after: 15, now: now)
        }
    }

    // MARK: Waits

    func waitForFinalStates() async throws {
        guard !awaiting.isEmpty else { return }
        let lastDispatch = lastDispatchAt ?? executor.clock.now()
        let deadline = lastDispatch + options.waitDeadline
        var interval = options.firstPoll
        var nextPoll = lastDispatch + options.firstPoll
        report("waiting")
        while !awaiting.isEmpty {
            let now = executor.clock.now()
            if now < nextPoll { try await executor.clock.sleep(seconds: nextPoll - now) }
            try await pollAwaiting()
            report("waiting")
            if awaiting.isEmpty { break }
            if executor.clock.now() >= deadline {
                for (id, pending) in awaiting {
                    let state = lastSeen[id] ?? "unknown"
                    finish(pending.planned, .failed, code: "WaitTimeout",
                           message: "did not reach \(plan.action == .start ? "running" : "stopped") within \(Int(options.waitDeadline)) s; last seen \(state)",
                           lastState: state)
                }
                break
            }
            // After the first round only stragglers are left: look again
            // soon, then less and less often.
            interval = interval == options.firstPoll ? 10 : min(options.maxPollInterval, interval * 1.5)
            nextPoll = executor.clock.now() + interval
        }
    }

    /// One bulk describe round over everything still awaited. A transient
    /// failure ends the round early (the next round tries again); an error
    /// about the caller ends the wait, and every awaited instance is
    /// reported with it instead of losing all outcomes.
    func pollAwaiting() async throws {
        let ids = Array(awaiting.keys).sorted()
        var described: [EC2Instance] = []
        var start = 0
        rounds: while start < ids.count {
            let chunk = Array(ids[start..<min(ids.count, start + 1000)])
            try await pacer.acquire(.describe)
            noteCall()
            do {
                described += try await ec2.describeInstances(ids: chunk).all()
                await pacer.accepted()
            } catch let error as AWSServiceError where RetryPolicy.throttlingCodes.contains(error.code) {
                throttled += 1
                await pacer.throttled(.describe)
                continue // the same chunk again, after the pacer's wait
            } catch let error as AWSServiceError where Self.callWide.contains(error.code) {
                for id in ids where awaiting[id] != nil {
                    fail(id, code: error.code, message: "accepted, but its final state could not be confirmed: \(error.message)")
                }
                return
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                break rounds
            }
            start += 1000
        }
        for instance in described {
            guard let pending = awaiting[instance.instanceID] else { continue }
            let state = instance.state.name
            lastSeen[instance.instanceID] = state
            switch plan.action {
            case .start:
                if state == "running" {
                    finish(pending.planned, .started, lastState: state)
                } else if state == "stopped" || state == "terminated" || state == "shutting-down" {
                    // EC2 accepted the start, but the instance did not stay up
                    // (a missing KMS grant does this).
                    let reason = instance.stateReason
                    finish(pending.planned, .failed, code: reason?.code ?? "StartDidNotHold",
                           message: "the start was accepted but the instance went back to \(state)"
                               + (reason.map { ": \($0.message)" } ?? ""), lastState: state)
                }
            case .hibernate, .stop:
                if state == "stopped" {
                    let hibernated = instance.stateReason?.code == "Client.UserInitiatedHibernate"
                    if pending.hibernate && hibernated {
                        finish(pending.planned, .hibernated, lastState: state)
                    } else {
                        finish(pending.planned, .stopped, reason: pending.fallbackReason, lastState: state)
                    }
                } else if state == "running" && executor.clock.now() - pending.acceptedAt > 120 {
                    finish(pending.planned, .failed, code: "StopDidNotHold",
                           message: "the stop was accepted but the instance is running again", lastState: state)
                } else if state == "terminated" {
                    finish(pending.planned, .failed, code: "Terminated", message: "the instance was terminated", lastState: state)
                }
            }
        }
    }

    // MARK: Tags

    func tagActedInstances() async {
        let acted = results.values.filter { [.hibernated, .stopped, .started, .accepted].contains($0.outcome) }.map(\.instanceID).sorted()
        guard !acted.isEmpty else { return }
        let stamp = ISO8601.format(Int64(Date().timeIntervalSince1970))
        let tags = [Tag(key: "torpor:last-action", value: plan.action.rawValue), Tag(key: "torpor:last-action-time", value: stamp)]
        for chunk in acted.chunks(of: 1000) {
            try? await pacer.acquire(.tags)
            noteCall()
            // Informational: a failure to tag never changes an outcome.
            try? await ec2.createTags(resourceIDs: Array(chunk), tags: tags)
        }
    }
}

extension EC2Client {
    /// A client for the fleet engine: standard retries for 5xx and network
    /// errors, but throttling left to the engine's pacer.
    public static func forFleet(location: ServiceLocation, credentials: any CredentialProvider,
                                transport: any HTTPTransport = CurlTransport(), logger: Logger) -> EC2Client {
        EC2Client(aws: AWSQueryClient(service: "ec2", apiVersion: apiVersion, location: location, credentials: credentials,
                                      transport: transport, retryPolicy: RetryPolicy(retryThrottling: false), logger: logger))
    }
}
