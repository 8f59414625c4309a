import Foundation
public import Logging
import TorporAWS
public import TorporEC2
public import TorporFleet
public import TorporPolicies
import TorporReports

/// Follows every in-flight resume together, from the accepted start to
/// readiness, and measures each phase.
///
/// How it looks: in rounds. A round takes the resumes due for a look and
/// asks EC2 about them in bulk, 100 ids a call: DescribeInstances for those
/// not yet seen running (state and state reason), DescribeInstanceStatus for
/// those running whose status checks are not yet `ok`. Then it probes those
/// seen running whose readiness probe has not yet answered. Calls are paced
/// by a pacer of its own holding the tracker to `describeRate` calls a
/// second, so that tracking never starves the fleet engine.
///
/// How it measures: every look is a bracket. A call sent at `s` and
/// answered at `a` saw the instance as it was at some moment in [s, a]. A
/// phase not reached at one look and reached at the next happened between
/// the first's `s` and the second's `a`; the estimate is the middle of that
/// bracket and the error half its width, stored with the time. So a
/// measurement is never further from the truth than one poll interval
/// (plus a call's latency), and usually half that.
///
/// How often: every `pollInterval` while the resume's transitions are due
/// (up to 1.5 × the policy's largest objective, or 1.5 × 2 min without), then
/// every `slowInterval` until its deadline. See ARCHITECTURE.md.
public actor ResumeTracker {
    public struct Settings: Sendable {
        public var pollInterval: Double = 2
        /// Once a resume is past the time its policy expects, look this often.
        public var slowInterval: Double = 10
        public var describeRate: Double = 10
        /// Ids per DescribeInstances / DescribeInstanceStatus call.
        public var idsPerCall = 100
        /// Calls in flight at once.
        public var callConcurrency = 4
        public var probeConcurrency = 256
        /// Another tracker's rows are adopted once its heartbeat is this old.
        public var staleAfter: Double = 30
        /// How often to look in the store for rows to adopt.
        public var adoptEvery: Double = 10
        /// Whether the tracker that owns rows has ended (its rows are
        /// adopted at once, not after `staleAfter`); nil: only the heartbeat
        /// tells. See `TrackerOwner`.
        public var ownerGone: (@Sendable (String) -> Bool)?
        /// Keep every finished resume in `finished`, for a command that
        /// reports what it started. Off in the worker, which runs for months:
        /// its resumes are in the store.
        public var keepFinished = true

        public init() {}

        public init(_ resume: ResumeSettings) {
            pollInterval = resume.pollInterval
            describeRate = resume.describeRate
            slowInterval = max(10, resume.pollInterval * 5)
            // The heartbeat is stamped at least every staleAfter / 3 (see
            // `run`); a slow poll must not make a live tracker look dead.
            staleAfter = max(30, resume.pollInterval * 6)
        }
    }

    /// An in-flight resume with what the tracker knows beyond the record.
    struct Tracked {
        var record: ResumeRecord
        /// Per phase not yet reached: the latest moment it was seen not
        /// reached.
        var lower: [ResumePhase: Double]
        var nextLook: Double
        /// When the resume stops being "due" and is looked at slowly.
        var dueUntil: Double
        var reported: Set<ResumePhase> = []
    }

    /// What a round saw of one instance.
    struct Look {
        let id: String
        let sentAt: Double
        let answeredAt: Double
        let state: String?
        let statusOK: Bool?
        let stateReason: StateReason?
        let probe: ProbeResult?
        let privateIP: String?
    }

    public nonisolated let owner: String
    let ec2: EC2Client
    let clock: any FleetClock
    let store: ResumeStore?
    let policies: ResumeSettings
    let prober: any ReadinessProber
    let metrics: ResumeMetrics
    let logger: Logger
    public nonisolated let settings: Settings
    let pacer: RatePacer

    var inFlight: [String: Tracked] = [:]
    var lastAdopt = -Double.infinity
    /// Describe calls made so far (DescribeInstances and DescribeInstanceStatus).
    public private(set) var calls = 0
    public private(set) var throttled = 0
    /// Resumes finished by this tracker, for callers that show them.
    public private(set) var finished: [ResumeRecord] = []
    /// Per policy and objective: whether the window's percentile was over
    /// its limit at the last check (a violation is counted when it goes over).
    var percentileViolated: Set<String> = []
    /// Window of finished resume times per policy, loaded from the store on
    /// first need and kept up to date.
    var windows: [String: [ResumeRecord]] = [:]

    public init(ec2: EC2Client, clock: any FleetClock, store: ResumeStore?, policies: ResumeSettings,
                prober: any ReadinessProber, owner: String, settings: Settings? = nil, metrics: ResumeMetrics = ResumeMetrics(),
                logger: Logger) {
        self.ec2 = ec2
        self.clock = clock
        self.store = store
        self.policies = policies
        self.prober = prober
        self.owner = owner
        let settings = settings ?? Settings(policies)
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
        var limits = EC2Limits.aws
        limits.nonMutating = .init(capacity: max(1, settings.describeRate * 2), refill: settings.describeRate)
        pacer = RatePacer(limits: limits, clock: clock)
    }

    public var inFlightCount: Int { inFlight.count }
    /// In-flight resumes the store has no row for (it refused the insert):
    /// no other tracker can take them over.
    public var unstoredInFlightCount: Int { inFlight.values.filter { $0.record.id == nil }.count }

    // MARK: Registering

    /// Starts following the instances a StartInstances call moved from
    /// stopped to pending; stores them first, so that a crash from here on
    /// loses nothing.
    public func register(_ starts: AcceptedStarts, jobID: String? = nil) async {
        let accepted = PhaseTime(at: (starts.sentAt + starts.answeredAt) / 2, error: (starts.answeredAt - starts.sentAt) / 2)
        var records: [ResumeRecord] = []
        for instance in starts.instances {
            let tags = Dictionary(instance.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
            let policy = policies.policy(tags: tags, instanceType: instance.instanceType)
            records.append(ResumeRecord(
                instanceID: instance.instanceID, policy: policy, instanceType: instance.instanceType,
                zone: instance.availabilityZone ?? "unknown", privateIP: instance.privateIPAddress,
                mode: ResumeMode(stateReasonCode: instance.stateReason?.code), jobID: jobID, accepted: accepted,
                checkedAt: starts.sentAt))
        }
        if let store {
            do {
                records = try await store.insert(records, owner: owner, now: clock.now())
            } catch {
                logger.error("cannot store resume measurements yet; following them in memory, storing them again each round",
                             metadata: ["error": "\(error)"])
            }
        }
        for record in records { await follow(record, lower: starts.sentAt) }
        updateGauges()
    }

    /// Whether two records are the same resume: by row id, or, while
    /// neither has one (the store refused them), by when the start was
    /// accepted.
    static func same(_ a: ResumeRecord, _ b: ResumeRecord) -> Bool {
        guard a.instanceID == b.instanceID else { return false }
        return a.id != nil || b.id != nil ? a.id == b.id : a.accepted.at == b.accepted.at
    }

    func follow(_ record: ResumeRecord, lower: Double) async {
        if let old = inFlight[record.instanceID], !Self.same(old.record, record) {
            // Two starts of the same instance: the earlier resume never got
            // anywhere the tracker could see. (An adopted row can be the
            // earlier one.)
            let (earlier, later) = old.record.accepted.at <= record.accepted.at ? (old.record, record) : (record, old.record)
            var superseded = earlier
            superseded.state = superseded.isReady ? .complete : .failed
            superseded.detail = superseded.isReady ? nil : "superseded by a later start"
            await save([superseded], now: clock.now())
            guard Self.same(later, record) else { return }
        }
        var bounds: [ResumePhase: Double] = [:]
        for phase in record.phases where record.time(phase) == nil { bounds[phase] = max(lower, record.accepted.at - record.accepted.error) }
        let policy = policies.policy(named: record.policy) ?? ResumePolicy.fallback
        let expected = [policy.objectives.max, policy.objectives.p95, policy.objectives.p50].compactMap { $0 }.first ?? 120
        inFlight[record.instanceID] = Tracked(
            record: record, lower: bounds, nextLook: clock.now(),
            dueUntil: record.accepted.at + min(expected * 1.5, record.deadline - record.accepted.at),
            reported: Set(record.phases.filter { record.time($0) != nil }))
    }

    /// Picks up in-flight resumes from the store: those of trackers that
    /// stopped (released), ended (`ownerGone`) or went silent.
    public func adopt() async {
        guard let store else { return }
        lastAdopt = clock.now()
        // Rows still marked in flight because their last save failed are
        // this tracker's own news, not orphans: save them first.
        await save([], now: clock.now())
        do {
            var gone: [String] = []
            if let ownerGone = settings.ownerGone { gone = try await store.owners().filter { $0 != owner && ownerGone($0) } }
            let records = try await store.adopt(owner: owner, now: clock.now(), staleAfter: settings.staleAfter, gone: gone)
            let new = records.filter { row in
                !(inFlight[row.instanceID].map { Self.same($0.record, row) } ?? false) && !unsaved.contains { Self.same($0, row) }
            }
            for record in new { await follow(record, lower: record.checkedAt) }
            if !new.isEmpty {
                logger.info("picked up in-flight resumes", metadata: ["count": "\(new.count)"])
                updateGauges()
            }
        } catch {
            logger.error("cannot read in-flight resumes", metadata: ["error": "\(error)"])
        }
    }

    /// Leaves in-flight resumes for the next tracker (a clean shutdown).
    public func release() async {
        try? await store?.release(owner: owner)
    }

    // MARK: Running

    /// Follows resumes until cancelled, or until `finishWhenIdle()` was
    /// called and none is left in flight. With `adopting`, picks up orphaned
    /// resumes from the store as it goes (the worker does; a command line
    /// follows only its own).
    public func run(adopting: Bool) async throws {
        // The heartbeat beats on its own, so that a long round (thousands
        // of probes timing out) does not make this tracker look dead.
        let clock = self.clock, every = settings.staleAfter / 6
        let heart = Task {
            while !Task.isCancelled {
                await self.beat()
                try? await clock.sleep(seconds: every)
            }
        }
        defer { heart.cancel() }
        do {
            while true {
                try Task.checkCancellation()
                if closing && inFlight.isEmpty {
                    try await saveBeforeClosing()
                    return
                }
                if adopting, clock.now() - lastAdopt >= settings.adoptEvery { await adopt() }
                try await step()
            }
        } catch {
            // Cancelled (a shutdown, Ctrl-C): what the store refused so far
            // gets one last try (store writes finish even when cancelled).
            await save([], now: clock.now())
            reportUnsaved()
            throw error
        }
    }

    /// Stamps this tracker's heartbeat when rounds alone would not (slow
    /// looks, nothing due): others adopt its rows only once it is silent.
    func beat() async {
        guard let store, !(inFlight.isEmpty && unsaved.isEmpty), clock.now() - lastBeat >= settings.staleAfter / 3 else { return }
        lastBeat = clock.now()
        do { try await store.heartbeat(owner: owner, now: lastBeat) } catch {
            logger.error("cannot stamp the resume tracker's heartbeat", metadata: ["error": "\(error)"])
        }
    }

    var lastBeat = -Double.infinity

    /// Lets `run` return once nothing is in flight.
    public func finishWhenIdle() { closing = true }

    var closing = false

    /// One round if any resume is due; else a sleep until one is (at most
    /// one poll interval, so that new registrations are picked up).
    func step() async throws {
        let now = clock.now()
        let next = inFlight.values.map(\.nextLook).min() ?? now + settings.pollInterval
        if next > now {
            try await clock.sleep(seconds: min(next - now, settings.pollInterval))
            return
        }
        await round()
    }

    /// One round over every resume due for a look.
    func round() async {
        let now = clock.now()
        let due = inFlight.values.filter { $0.nextLook <= now }.map(\.record)
        // Which were ready before this round's looks: those that become
        // ready in it are held to objectives after it.
        let readyBefore = Set(due.filter(\.isReady).map(\.instanceID))
        let unseen = due.filter { $0.running == nil }.map(\.instanceID).sorted()
        let booting = due.filter { $0.running != nil && $0.statusOK == nil }.map(\.instanceID).sorted()

        var looks = await describe(unseen, status: false) + describe(booting, status: true)
        for look in looks { apply(look) }
        // Those first seen running now: their status checks at once too, so
        // that the status bracket starts here, not at the last `pending`.
        let risen = unseen.filter { id in inFlight[id].map { $0.record.running != nil && $0.record.statusOK == nil && $0.record.state == .tracking } ?? false }
        let risenLooks = await describe(risen, status: true)
        for look in risenLooks { apply(look) }
        looks += risenLooks
        // Probes after the describes, so that an instance first seen running
        // in this round is probed in it too.
        let probing = inFlight.values.filter { tracked in
            tracked.nextLook <= now && tracked.record.running != nil && tracked.record.probe != nil && tracked.record.probeOK == nil
                && tracked.record.state == .tracking
        }.map(\.record)
        let probes = await probe(probing)
        for look in probes { apply(look) }
        looks += probes

        let after = clock.now()
        var changed: [ResumeRecord] = []
        var newlySettled: Set<String> = []
        for id in Set(due.map(\.instanceID)) {
            guard var tracked = inFlight[id] else { continue }
            let wasReady = readyBefore.contains(id)
            if tracked.record.state == .tracking, after >= tracked.record.deadline { expire(&tracked) }
            if tracked.record.state == .tracking, tracked.record.phases.allSatisfy({ tracked.record.time($0) != nil }) {
                tracked.record.state = .complete
                tracked.record.lastState = nil
            }
            tracked.record.checkedAt = tracked.lower.values.min() ?? tracked.record.checkedAt
            // Settled now: ready for the first time, or timed out. (A resume
            // ready earlier that completes now was already held to objectives.)
            if (!wasReady && tracked.record.isReady) || tracked.record.state == .timedOut { newlySettled.insert(id) }
            if tracked.record.state == .tracking {
                // A fixed cadence from the round's start: a round that took
                // long does not push the next look further out.
                tracked.nextLook = max(now + (after < tracked.dueUntil ? settings.pollInterval : settings.slowInterval), after)
            }
            changed.append(tracked.record)
            inFlight[id] = tracked
        }
        // Saved before anything is counted: a row another tracker took over
        // meanwhile is its to count (`save` lets go of it).
        await save(changed, now: after)
        var counted: [ResumeRecord] = []
        var settled: [ResumeRecord] = []
        for id in changed.map(\.instanceID) {
            // Still this round's resume (not let go of, not superseded by a
            // start registered while the save waited).
            guard var tracked = inFlight[id], let mine = changed.first(where: { $0.instanceID == id }),
                  Self.same(tracked.record, mine) || (mine.id == nil && tracked.record.accepted.at == mine.accepted.at) else { continue }
            reportPhases(&tracked)
            if newlySettled.contains(id) { settled.append(tracked.record) }
            counted.append(tracked.record)
            if tracked.record.state == .tracking {
                inFlight[id] = tracked
            } else {
                inFlight[id] = nil
                if settings.keepFinished { finished.append(tracked.record) }
                if tracked.record.state == .timedOut { metrics.timeout(policy: tracked.record.policy) }
            }
        }
        for record in counted where record.state != .tracking || record.isReady { remember(record) }
        for policy in Set(settled.map(\.policy)).sorted() { await checkObjectives(policy, newly: settled.filter { $0.policy == policy }) }
        updateGauges()
    }

    /// Saves what changed, with whatever an earlier save could not; kept
    /// for the next round when the store refuses (locked, full). Returns the
    /// rows another tracker took over (let go of). One save at a time: a
    /// registration's save may come while a round's is waiting on the store.
    @discardableResult
    func save(_ changed: [ResumeRecord], now: Double) async -> Set<Int64> {
        let previous = saving
        let task = Task { () -> Set<Int64> in
            _ = await previous?.value
            return await self.saveNow(changed, now: now)
        }
        saving = task
        return await task.value
    }

    var saving: Task<Set<Int64>, Never>?

    func saveNow(_ changed: [ResumeRecord], now: Double) async -> Set<Int64> {
        guard let store, !(changed.isEmpty && unsaved.isEmpty) else { return [] }
        var pending = unsaved.filter { old in !changed.contains { Self.same($0, old) } } + changed
        do {
            try await storeUnstored(&pending, in: store, now: now)
            let lost = Set(try await store.update(pending, owner: owner, now: now))
            if !lost.isEmpty { letGo(lost) }
            if !unsaved.isEmpty { logger.info("saved resume measurements held back", metadata: ["count": "\(unsaved.count)"]) }
            unsaved = []
            lastBeat = now
            return lost
        } catch {
            if unsaved.isEmpty {
                logger.error("cannot save resume measurements; trying again each round", metadata: ["error": "\(error)"])
            }
            unsaved = pending
            return []
        }
    }

    /// Stops following rows another tracker took over (this one was silent
    /// past `staleAfter`): one tracker per row, or both would count it.
    func letGo(_ ids: Set<Int64>) {
        let gone = inFlight.values.filter { $0.record.id.map(ids.contains) ?? false }.map(\.record.instanceID)
        guard !gone.isEmpty else { return }
        for id in gone { inFlight[id] = nil }
        logger.warning("in-flight resumes taken over by another tracker; no longer following them",
                       metadata: ["count": "\(gone.count)", "instances": "\(gone.prefix(10).joined(separator: ","))"])
        updateGauges()
    }

    /// Measurements the store refused so far, newest version of each.
    var unsaved: [ResumeRecord] = []

    /// Nothing in flight, told to finish: tries to save what is held back
    /// for up to `staleAfter`, then says what is lost.
    func saveBeforeClosing() async throws {
        let giveUpAt = clock.now() + settings.staleAfter
        while !unsaved.isEmpty && clock.now() < giveUpAt {
            try await clock.sleep(seconds: settings.pollInterval)
            await save([], now: clock.now())
        }
        reportUnsaved()
    }

    /// Says what the store never took, as the tracker stops.
    func reportUnsaved() {
        guard !unsaved.isEmpty else { return }
        logger.error("resume measurements could not be stored", metadata: [
            "count": "\(unsaved.count)", "instances": "\(unsaved.prefix(10).map(\.instanceID).joined(separator: ","))",
        ])
    }

    /// Inserts the records whose first store failed (they have no id), and
    /// gives them, in flight and finished, their ids.
    func storeUnstored(_ records: inout [ResumeRecord], in store: ResumeStore, now: Double) async throws {
        let unstored = records.filter { $0.id == nil }
        guard !unstored.isEmpty else { return }
        let stored = try await store.insert(unstored, owner: owner, now: now)
        for (index, row) in zip(records.indices.filter { records[$0].id == nil }, stored) {
            // Inserted in order: the row is the record at `index`.
            let before = records[index]
            records[index].id = row.id
            if let tracked = inFlight[before.instanceID], Self.same(tracked.record, before) { inFlight[before.instanceID]?.record.id = row.id }
            if let last = finished.lastIndex(where: { Self.same($0, before) }) { finished[last].id = row.id }
        }
        logger.info("stored resume measurements that could not be stored before", metadata: ["count": "\(stored.count)"])
    }

    func expire(_ tracked: inout Tracked) {
        if let ready = tracked.record.readyTime, ready.at > tracked.record.deadline {
            // Seen ready, but measured past the deadline (a gap in tracking,
            // a late adoption): a timeout all the same; the times are kept.
            tracked.record.state = .timedOut
            tracked.record.lastState = "ready only after the deadline"
            logTimeout(tracked.record)
        } else if tracked.record.isReady {
            // Ready in time; a later phase (status checks after a probe)
            // never came. The resume counts as complete without it.
            tracked.record.state = .complete
        } else {
            tracked.record.state = .timedOut
            logTimeout(tracked.record)
        }
    }

    func logTimeout(_ record: ResumeRecord) {
        logger.warning("resume timed out", metadata: [
            "instance": "\(record.instanceID)", "policy": "\(record.policy)",
            "deadline": "\(String(format: "%.0f", record.deadline - record.accepted.at)) s",
            "last-state": "\(record.lastState ?? "unknown")",
        ])
    }

    /// Feeds each newly known phase to the histograms once.
    func reportPhases(_ tracked: inout Tracked) {
        for phase in tracked.record.phases where !tracked.reported.contains(phase) {
            guard let seconds = tracked.record.seconds(to: phase) else { continue }
            metrics.phase(policy: tracked.record.policy, phase, seconds: seconds)
            tracked.reported.insert(phase)
        }
    }

    // MARK: Looking

    /// Bulk describes of `ids`, 100 a call, a few calls at once, paced.
    func describe(_ ids: [String], status: Bool) async -> [Look] {
        await Self.concurrently(ids.chunks(of: settings.idsPerCall), atMost: settings.callConcurrency) { chunk in
            await self.call(Array(chunk), status: status)
        }.flatMap { $0 }
    }

    /// `body` of every item, at most `limit` at once; results in no
    /// particular order.
    static func concurrently<Item: Sendable, Result: Sendable>(
        _ items: [Item], atMost limit: Int, _ body: @escaping @Sendable (Item) async -> Result
    ) async -> [Result] {
        var results: [Result] = []
        await withTaskGroup(of: Result.self) { group in
            var next = 0
            func add() {
                guard next < items.count else { return }
                let item = items[next]
                next += 1
                group.addTask { await body(item) }
            }
            for _ in 0..<limit { add() }
            while let result = await group.next() {
                results.append(result)
                add()
            }
        }
        return results
    }

    /// One call. A throttle or transient failure leaves these ids unseen
    /// this round (their brackets widen; nothing is guessed); ids EC2 no
    /// longer knows are reported as gone and the rest asked again.
    func call(_ ids: [String], status: Bool) async -> [Look] {
        var ids = ids
        for _ in 0..<3 {
            guard !ids.isEmpty else { return [] }
            do { try await pacer.acquire(.describe) } catch { return [] }
            calls += 1
            let sentAt = clock.now()
            do {
                let looks: [Look]
                if status {
                    let statuses = try await ec2.describeInstanceStatus(ids: ids, includeAllInstances: true).all()
                    let answeredAt = clock.now()
                    looks = statuses.map {
                        Look(id: $0.instanceID, sentAt: sentAt, answeredAt: answeredAt, state: $0.state.name,
                             statusOK: $0.systemStatus == "ok" && $0.instanceStatus == "ok", stateReason: nil, probe: nil, privateIP: nil)
                    }
                } else {
                    let instances = try await ec2.describeInstances(ids: ids).all()
                    let answeredAt = clock.now()
                    looks = instances.map {
                        Look(id: $0.instanceID, sentAt: sentAt, answeredAt: answeredAt, state: $0.state.name, statusOK: nil,
                             stateReason: $0.stateReason, probe: nil, privateIP: $0.privateIPAddress)
                    }
                }
                await pacer.observe(callDuration: clock.now() - sentAt)
                await pacer.accepted()
                return looks
            } catch let error as AWSServiceError where RetryPolicy.throttlingCodes.contains(error.code) {
                throttled += 1
                await pacer.throttled(.describe)
            } catch let error as AWSServiceError where error.code == "InvalidInstanceID.NotFound" {
                let gone = Set(EC2ErrorCode.instanceIDs(in: error.message)).intersection(ids)
                guard !gone.isEmpty else { return [] }
                for id in gone { vanish(id) }
                ids.removeAll { gone.contains($0) }
            } catch let error as AWSServiceError where Self.refusals.contains(error.code) {
                // Not transient: say so once, loudly; resumes time out
                // with the last state seen unless it is fixed.
                if !warnedRefusal {
                    warnedRefusal = true
                    logger.error("""
                        EC2 refuses the resume tracker's describe calls; resumes cannot be measured until the \
                        credentials allow ec2:DescribeInstances and ec2:DescribeInstanceStatus
                        """,
                                 metadata: ["code": "\(error.code)", "action": "\(status ? "DescribeInstanceStatus" : "DescribeInstances")"])
                }
                return []
            } catch {
                logger.debug("describe for resume tracking failed; trying again next round", metadata: ["error": "\(error)"])
                return []
            }
        }
        return []
    }

    static let refusals: Set<String> = ["UnauthorizedOperation", "AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "OptInRequired"]
    var warnedRefusal = false

    func vanish(_ id: String) {
        guard var tracked = inFlight[id], tracked.record.state == .tracking else { return }
        if !tracked.record.isReady {
            tracked.record.state = .failed
            tracked.record.detail = "EC2 no longer knows the instance"
        }
        tracked.nextLook = clock.now()
        inFlight[id] = tracked
    }

    func probe(_ records: [ResumeRecord]) async -> [Look] {
        let prober = self.prober
        let clock = self.clock
        return await Self.concurrently(records, atMost: settings.probeConcurrency) { record -> Look? in
            guard let spec = record.probe, let ip = record.privateIP else { return nil }
            let sentAt = clock.now()
            let result = await prober.probe(spec, ip: ip)
            return Look(id: record.instanceID, sentAt: sentAt, answeredAt: clock.now(), state: nil, statusOK: nil,
                        stateReason: nil, probe: result, privateIP: nil)
        }.compactMap { $0 }
    }

    /// Folds one look into the resume's brackets.
    func apply(_ look: Look) {
        guard var tracked = inFlight[look.id], tracked.record.state == .tracking else { return }
        if let ip = look.privateIP, tracked.record.privateIP == nil { tracked.record.privateIP = ip }
        if let state = look.state {
            if state == "running" {
                reach(.running, &tracked, look)
                if let ok = look.statusOK {
                    if ok { reach(.statusOk, &tracked, look) } else { notYet(.statusOk, &tracked, look) }
                    tracked.record.lastState = ok ? "running, status ok" : "running, status initializing"
                } else {
                    // DescribeInstances says nothing of status checks: they may
                    // have passed already.
                    tracked.record.lastState = "running"
                }
            } else if state == "pending" {
                for phase in tracked.record.phases { notYet(phase, &tracked, look) }
                tracked.record.lastState = "pending"
            } else {
                tracked.record.lastState = state
                fellBack(&tracked, state: state, reason: look.stateReason, at: look.answeredAt)
            }
        }
        if let result = look.probe {
            switch result {
            case .ready:
                reach(.probe, &tracked, look)
            case .notReady(let why):
                notYet(.probe, &tracked, look)
                let base = (tracked.record.lastState ?? "running").components(separatedBy: ", probe ")[0]
                tracked.record.lastState = base + ", probe \(why)"
            }
        }
        inFlight[look.id] = tracked
    }

    /// An instance seen stopped (or worse) after its start was accepted. Right
    /// after the call, EC2 can still show the stop before it (the same
    /// user-initiated reason): that is not a failure yet.
    func fellBack(_ tracked: inout Tracked, state: String, reason: StateReason?, at time: Double) {
        let stale = (reason?.code.hasPrefix("Client.UserInitiated") ?? false) && time - tracked.record.accepted.at < 15
        guard !stale, state != "pending" else { return }
        if tracked.record.isReady {
            // Ready, then stopped (an interruption): the resume itself is done.
            tracked.record.state = .complete
            return
        }
        tracked.record.state = .failed
        tracked.record.detail = "went to \(state) instead of running" + (reason.map { " (\($0.code): \($0.message))" } ?? "")
        logger.warning("resume failed", metadata: ["instance": "\(tracked.record.instanceID)", "state": "\(state)",
                                                   "reason": "\(reason?.code ?? "none")"])
    }

    /// Status checks and probes both follow `running`, but not each other:
    /// a probe can answer before the status checks pass, or after.
    static func follows(_ later: ResumePhase, _ earlier: ResumePhase) -> Bool {
        earlier == .running && later != .running
    }

    func notYet(_ phase: ResumePhase, _ tracked: inout Tracked, _ look: Look) {
        guard tracked.record.time(phase) == nil else { return }
        // EC2 saw it not reached at some moment of the call: no later than
        // the send. What follows it cannot have happened either.
        for other in tracked.record.phases where (other == phase || Self.follows(other, phase)) && tracked.record.time(other) == nil {
            tracked.lower[other] = max(tracked.lower[other] ?? look.sentAt, look.sentAt)
        }
    }

    func reach(_ phase: ResumePhase, _ tracked: inout Tracked, _ look: Look) {
        guard tracked.record.time(phase) == nil, tracked.record.phases.contains(phase) else { return }
        // What it follows must have happened by now too (a probe answering
        // means the instance runs, even if no describe said so yet).
        if Self.follows(phase, .running) && tracked.record.running == nil { reach(.running, &tracked, look) }
        var lower = tracked.lower[phase] ?? tracked.record.accepted.at
        if Self.follows(phase, .running), let running = tracked.record.running { lower = max(lower, running.at - running.error) }
        let upper = max(look.answeredAt, lower)
        tracked.record.set(phase, PhaseTime(at: (lower + upper) / 2, error: (upper - lower) / 2))
        tracked.lower[phase] = nil
    }

    // MARK: Objectives

    func remember(_ record: ResumeRecord) {
        guard windows[record.policy] != nil else { return }
        windows[record.policy]!.removeAll { $0.id == record.id && $0.id != nil }
        windows[record.policy]!.append(record)
    }

    /// Holds the policy's window against its objectives, after resumes of it
    /// completed (or timed out).
    func checkObjectives(_ name: String, newly: [ResumeRecord]) async {
        guard let policy = policies.policy(named: name) else { return }
        let objectives = policy.objectives
        guard !objectives.isEmpty else { return }
        let now = clock.now()
        if windows[name] == nil {
            var loaded = (try? await store?.records(since: now - policy.window, policy: name)) ?? []
            let known = Set(loaded.compactMap(\.id))
            loaded += finished.filter { $0.policy == name && ($0.id == nil || !known.contains($0.id!)) }
            windows[name] = loaded.filter { $0.state != .tracking || $0.isReady }
        }
        windows[name]!.removeAll { $0.accepted.at < now - policy.window }
        let window = windows[name]!

        // Every resume slower than max is a violation of its own.
        if let limit = objectives.max {
            for record in newly where record.state == .timedOut || (record.state != .failed && (record.resumeSeconds ?? 0) > limit) {
                guard record.state == .timedOut || record.isReady else { continue }
                metrics.violation(policy: name, objective: "max")
                logger.warning("resume objective violated", metadata: [
                    "policy": "\(name)", "objective": "max \(Self.seconds(limit))", "instance": "\(record.instanceID)",
                    "resume": "\(record.state == .timedOut ? "timed out" : Self.seconds(record.resumeSeconds ?? 0))",
                ])
            }
        }
        // Percentiles: counted when they go over, logged with the culprits.
        let violations = ResumeStatistics.violations(window, objectives: ResumeObjectives(p50: objectives.p50, p95: objectives.p95, max: nil))
        for objective in ["p50", "p95"] {
            let key = "\(name)/\(objective)"
            if let violation = violations.first(where: { $0.objective == objective }) {
                guard !percentileViolated.contains(key) else { continue }
                percentileViolated.insert(key)
                metrics.violation(policy: name, objective: objective)
                logger.warning("resume objective violated", metadata: [
                    "policy": "\(name)", "objective": "\(objective) \(Self.seconds(violation.limit))",
                    "actual": "\(violation.actual.map(Self.seconds) ?? "past the deadline")",
                    "resumes": "\(window.count)",
                    "instances": "\(violation.instanceIDs.prefix(10).joined(separator: ","))\(violation.instanceIDs.count > 10 ? ",+\(violation.instanceIDs.count - 10) more" : "")",
                ])
            } else if percentileViolated.remove(key) != nil {
                logger.info("resume objective met again", metadata: ["policy": "\(name)", "objective": "\(objective)"])
            }
        }
    }

    static func seconds(_ value: Double) -> String { String(format: "%.1fs", value) }

    func updateGauges() {
        var counts: [String: Int] = [:]
        // Every policy ever shown, so that one drained (the built-in
        // default, a policy since removed from the config) reads 0.
        for name in gaugePolicies { counts[name] = 0 }
        for policy in policies.policies { counts[policy.name] = 0 }
        for tracked in inFlight.values { counts[tracked.record.policy, default: 0] += 1 }
        gaugePolicies.formUnion(counts.keys)
        for (policy, count) in counts { metrics.inFlight(policy: policy, count: count) }
    }

    var gaugePolicies: Set<String> = []
}
