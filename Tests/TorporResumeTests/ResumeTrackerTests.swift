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
import TorporSim
import TorporTestSupport

/// The tracker against the in-process simulator, every measurement held to
/// the simulator's ground truth. Serialized: the simulators would share the
/// probe addresses (127.16.x.x) and two cores. Probe ports are picked at
/// random and checked free: other simulators on the machine use the same
/// addresses.
@Suite("Resume tracker on the simulator", .serialized, .timeLimit(.minutes(2)))
struct ResumeTrackerTests {
    static let speed = 10.0
    /// Real scheduling delay the one-interval checks allow, in simulated
    /// seconds: these tests run beside the whole suite on two cores, where a
    /// round can be held up by hundreds of milliseconds (CI has seen 220;
    /// the first seconds of a run, when every suite starts at once, are
    /// worse), so 0.8 s.
    /// The exact bound is the benchmark's (`torpor-bench resume`, speed 1,
    /// an idle machine) and the 1,000-resume fidelity test's (1 s of slack);
    /// the bracket checks here allow nothing.
    static let loadSlack = 0.8 * speed
    static let pollInterval = 2.0
    /// Describes see the simulator's state at an instant of the call, so
    /// their brackets hold exactly, up to clock noise.
    static let describeSlack = 1e-6
    /// The simulator opens a probe port on a timer (every 20 ms real) once
    /// its simulated time has come, so a probe can see it closed a little
    /// after the truth: up to about 60 ms real.
    static var probeSlack: Double { 0.06 * speed }

    /// Web (TCP probe), API (HTTP probe), batch (status checks), all
    /// hibernated; legacy instances stopped cold, matching no policy.
    static func fleet(web: Int = 14, api: Int = 10, batch: Int = 8, legacy: Int = 8, ports: [Int]) -> FleetSpec {
        makeSpec([
            tierGroup("web", web) {
                $0.initialState = .hibernated
                $0.instanceType = "m5.large"
                $0.timings.resume = DurationDistribution(median: 8, p95: 15)
                $0.timings.statusOk = DurationDistribution(median: 10, p95: 20)
                $0.timings.reachable = DurationDistribution(median: 3, p95: 8)
                $0.probePort = ports[0]
            },
            tierGroup("api", api) {
                $0.initialState = .hibernated
                $0.instanceType = "c5.xlarge"
                $0.zones = ["us-east-1c"]
                $0.timings.resume = DurationDistribution(median: 10, p95: 18)
                $0.timings.statusOk = DurationDistribution(median: 8, p95: 16)
                $0.timings.reachable = DurationDistribution(median: 5, p95: 12)
                $0.probePort = ports[1]
            },
            tierGroup("batch", batch) {
                $0.initialState = .hibernated
                $0.instanceType = "r5.large"
                $0.timings.resume = DurationDistribution(median: 12, p95: 20)
                $0.timings.statusOk = DurationDistribution(median: 12, p95: 20)
            },
            tierGroup("legacy", legacy) {
                $0.initialState = .stopped
                $0.instanceType = "t3.medium"
                $0.timings.coldBoot = DurationDistribution(median: 15, p95: 25)
                $0.timings.statusOk = DurationDistribution(median: 8, p95: 15)
            },
        ].filter { $0.count > 0 })
    }

    static func policies(ports: [Int]) -> ResumeSettings {
        var settings = ResumeSettings()
        settings.pollInterval = pollInterval
        settings.policies = [
            policy("web", tags: ["Tier": "web"], readiness: .tcp(port: ports[0]), objectives: ResumeObjectives(p50: 20, p95: 40, max: 60)),
            policy("api", tags: ["Tier": "api"], readiness: .http(url: "http://{ip}:\(ports[1])/healthz", status: 200),
                   objectives: ResumeObjectives(p95: 60)),
            policy("batch", tags: ["Tier": "batch"], readiness: .statusOK),
        ]
        return settings
    }

    /// Holds one measured phase to the truth: inside its own bracket, and
    /// (with `interval`) within one poll interval.
    static func check(_ label: String, _ time: PhaseTime?, truth: Double?, slack: Double, interval: Double?,
                      sourceLocation: SourceLocation = #_sourceLocation) {
        guard let truth else {
            Issue.record("\(label): no truth", sourceLocation: sourceLocation)
            return
        }
        guard let time else {
            Issue.record("\(label): not measured (truth \(truth))", sourceLocation: sourceLocation)
            return
        }
        let off = abs(time.at - truth)
        #expect(off <= time.error + slack, "\(label): measured \(time.at) ± \(time.error), truth \(truth) (off by \(off))",
                sourceLocation: sourceLocation)
        if let interval {
            #expect(off <= interval + slack + loadSlack, "\(label): off by \(off) s, more than one poll interval",
                    sourceLocation: sourceLocation)
            #expect(time.error <= interval + slack + loadSlack, "\(label): error ±\(time.error) s, more than one poll interval",
                    sourceLocation: sourceLocation)
        }
    }

    /// Every phase of `record` against the truth.
    static func checkAgainstTruth(_ record: ResumeRecord, _ truth: SimEngine.ResumeTruth?, withinInterval: Bool,
                                  sourceLocation: SourceLocation = #_sourceLocation) {
        guard let truth else {
            Issue.record("\(record.instanceID): no resume in the simulator's truth", sourceLocation: sourceLocation)
            return
        }
        let interval = withinInterval ? pollInterval : nil
        let id = record.instanceID
        check("\(id) accepted", record.accepted, truth: truth.accepted, slack: describeSlack, interval: nil, sourceLocation: sourceLocation)
        check("\(id) running", record.running, truth: truth.running, slack: describeSlack, interval: interval, sourceLocation: sourceLocation)
        check("\(id) status ok", record.statusOK, truth: truth.statusOk, slack: describeSlack, interval: interval,
              sourceLocation: sourceLocation)
        if record.probe != nil {
            check("\(id) probe", record.probeOK, truth: truth.reachable, slack: probeSlack, interval: interval,
                  sourceLocation: sourceLocation)
        } else {
            #expect(record.probeOK == nil, sourceLocation: sourceLocation)
        }
    }

    @Test("every phase of every resume within its own bracket of the truth and within one poll interval; calls bounded")
    func fidelity() async throws {
        let ports = await freeProbePorts(2, instances: 40)
        let spec = Self.fleet(ports: ports)
        let n = spec.groups.map(\.count).reduce(0, +)
        try await withSimulator(spec, speed: Self.speed, probes: true) { sim in
            try await withStore { store, _ in
                let tracker = sim.tracker(Self.policies(ports: ports), store: store)
                let tracking = track(tracker)
                let report = try await sim.startAll { await tracker.register($0) }
                #expect(report.results.count == n)
                try await finish(tracker, tracking)

                let finished = await tracker.finished
                #expect(finished.count == n)
                #expect(Set(finished.map(\.instanceID)).count == n, "one resume per instance")
                let truth = sim.engine.resumeTruth()
                let instances = sim.instances()
                let expectedPolicy = ["web": "web", "api": "api", "batch": "batch", "legacy": "default"]
                let expectedType = ["web": "m5.large", "api": "c5.xlarge", "batch": "r5.large", "legacy": "t3.medium"]
                for record in finished {
                    let instance = try #require(instances[record.instanceID])
                    #expect(record.state == .complete, "\(record.instanceID): \(record.state) \(record.lastState ?? "")")
                    #expect(record.policy == expectedPolicy[instance.group])
                    #expect(record.instanceType == expectedType[instance.group])
                    #expect(record.mode == (instance.group == "legacy" ? .cold : .hibernation), "\(record.instanceID) in \(instance.group)")
                    #expect(record.privateIP == instance.privateIP)
                    #expect(record.zone.hasPrefix("us-east-1"))
                    if instance.group == "api" { #expect(record.zone == "us-east-1c") }
                    #expect(record.readinessPhase == (["web", "api"].contains(instance.group) ? .probe : .statusOk))
                    #expect(record.lastState == nil)
                    Self.checkAgainstTruth(record, truth[record.instanceID], withinInterval: true)
                }

                // The store agrees with what the tracker reports.
                let stored = try await store.records(since: 0)
                #expect(stored.count == n)
                let byID = Dictionary(uniqueKeysWithValues: finished.map { ($0.instanceID, $0) })
                for row in stored { #expect(row == byID[row.instanceID], "\(row.instanceID) stored differently") }
                #expect(try await store.adopt(owner: "anyone", now: sim.clock.now() + 3600, staleAfter: 1).isEmpty,
                        "nothing left in flight")

                // Calls: at most one DescribeInstances and two
                // DescribeInstanceStatus (those booting, those first seen
                // running) per 100 ids and per round, rounds one poll interval
                // apart (and no more than the simulator saw).
                let first = finished.map(\.accepted.at).min()!
                let last = finished.compactMap { r in r.phases.compactMap { r.time($0)?.at }.max() }.max()!
                let rounds = ((last - first) / Self.pollInterval).rounded(.up) + 3
                let perRound = 3 * Double((n + 99) / 100)
                let calls = await tracker.calls
                #expect(calls >= 2)
                #expect(Double(calls) <= perRound * rounds, "\(calls) calls for \(n) resumes over \(last - first) s")
                let stats = sim.engine.stats()
                #expect(calls <= (stats.calls["DescribeInstances"] ?? 0) + (stats.calls["DescribeInstanceStatus"] ?? 0))
                #expect(await tracker.throttled == 0)
            }
        }
    }

    @Test("a short deadline: resumes not ready by it are timed out, with the last state seen; ready ones complete without later phases")
    func timeouts() async throws {
        let ports = await freeProbePorts(1, instances: 9)
        let spec = makeSpec([
            // Still pending at the deadline.
            tierGroup("slow", 5) {
                $0.initialState = .hibernated
                $0.timings.resume = DurationDistribution(median: 120, p95: 150)
            },
            // Running at once, its probe port never opens.
            tierGroup("deaf", 4) {
                $0.initialState = .hibernated
                $0.timings.resume = DurationDistribution(median: 2, p95: 3)
                $0.timings.statusOk = DurationDistribution(median: 2, p95: 3)
            },
            // Ready when running; its status checks pass long after the deadline.
            tierGroup("lazy", 3) {
                $0.initialState = .hibernated
                $0.timings.resume = DurationDistribution(median: 2, p95: 3)
                $0.timings.statusOk = DurationDistribution(median: 900, p95: 1000)
            },
        ])
        var settings = ResumeSettings()
        settings.pollInterval = Self.pollInterval
        settings.policies = [
            policy("slow", tags: ["Tier": "slow"], readiness: .statusOK, deadline: 10),
            policy("deaf", tags: ["Tier": "deaf"], readiness: .tcp(port: ports[0]), deadline: 15),
            policy("lazy", tags: ["Tier": "lazy"], readiness: .running, deadline: 12),
        ]
        try await withSimulator(spec, speed: Self.speed, probes: true) { sim in
            try await withStore { store, _ in
                let tracker = sim.tracker(settings, store: store)
                let tracking = track(tracker)
                try await sim.startAll { await tracker.register($0) }
                try await finish(tracker, tracking)
                let all = await tracker.finished
                #expect(all.count == 12)
                let truth = sim.engine.resumeTruth()
                // Ready in time, a later phase never seen: complete without it.
                let lazy = all.filter { $0.policy == "lazy" }
                #expect(lazy.count == 3)
                for record in lazy {
                    #expect(record.state == .complete, "\(record.instanceID): \(record.state)")
                    #expect(record.statusOK == nil)
                    #expect(record.readinessPhase == .running)
                    Self.check("\(record.instanceID) running", record.running, truth: truth[record.instanceID]?.running,
                               slack: Self.describeSlack, interval: Self.pollInterval)
                }
                let finished = all.filter { $0.policy != "lazy" }
                for record in finished {
                    #expect(record.state == .timedOut, "\(record.instanceID) \(record.policy): \(record.state)")
                    let real = try #require(truth[record.instanceID])
                    if record.policy == "slow" {
                        #expect(record.lastState == "pending")
                        #expect(record.running == nil)
                        #expect(real.running.map { $0 > record.deadline } ?? true, "it really was not running by the deadline")
                        #expect(record.deadline == record.accepted.at + 10)
                    } else {
                        let last = try #require(record.lastState)
                        #expect(last.hasPrefix("running"), "\(last)")
                        #expect(last.contains("probe refused"), "\(last)")
                        #expect(record.probeOK == nil)
                        Self.check("\(record.instanceID) running", record.running, truth: real.running, slack: Self.describeSlack,
                                   interval: Self.pollInterval)
                    }
                    #expect(record.detail == nil)
                }
                let stored = try await store.records(since: 0).filter { $0.policy != "lazy" }
                #expect(stored.map(\.state) == Array(repeating: .timedOut, count: 9))
                #expect(Set(stored.compactMap(\.lastState)) == Set(finished.compactMap(\.lastState)))
                // The report counts them as timeouts.
                let report = ResumeReportBuilder(settings: settings, since: 0, now: sim.clock.now())
                    .build(try await store.records(since: 0))
                #expect(report.policies.map(\.summary.timeouts) == [5, 4, 0])
                #expect(report.policies.map(\.summary.maxTimedOut) == [true, true, false])
                #expect(report.policies.last?.summary.completed == 3)
            }
        }
    }

    @Test("starts that fail (pending → stopped, Client.InternalError): failed, with EC2's reason")
    func failures() async throws {
        let spec = makeSpec([
            tierGroup("web", 6) {
                $0.initialState = .hibernated
                $0.timings.resume = DurationDistribution(median: 4, p95: 6)
            },
        ]) { $0.faults.startFailureRate = 1 }
        try await withSimulator(spec, speed: Self.speed, probes: true) { sim in
            try await withStore { store, _ in
                let tracker = sim.tracker(Self.policies(ports: [8443, 8080]), store: store)
                let tracking = track(tracker)
                try await sim.startAll { await tracker.register($0) }
                try await finish(tracker, tracking)
                let finished = await tracker.finished
                #expect(finished.count == 6)
                for record in finished {
                    #expect(record.state == .failed)
                    #expect(record.running == nil)
                    #expect(record.lastState == "stopped")
                    let detail = try #require(record.detail)
                    #expect(detail.contains("Client.InternalError"), "\(detail)")
                    #expect(detail.contains("stopped"), "\(detail)")
                }
                #expect(try await store.records(since: 0).allSatisfy { $0.state == .failed && $0.detail?.contains("Client.InternalError") == true })
                // Well before the deadline: a failure is not waited out.
                let last = finished.map(\.checkedAt).max() ?? 0
                #expect(finished.allSatisfy { last < $0.deadline })
                let report = ResumeReportBuilder(settings: Self.policies(ports: [8443, 8080]), since: 0, now: sim.clock.now())
                    .build(try await store.records(since: 0))
                let web = try #require(report.policies.first { $0.name == "web" })
                #expect(web.summary.failed == 6)
                #expect(web.summary.count == 0)
            }
        }
    }

    struct Restart: Sendable, CustomTestStringConvertible {
        let owner: String
        let staleAfter: Double
        /// A stops cleanly, releasing its rows.
        var release = false
        /// B finds the rows itself, as a worker's tracker does.
        var adoptingRun = false
        let testDescription: String
    }

    static let restarts = [
        Restart(owner: "A", staleAfter: 30, adoptingRun: true, testDescription: "the same owner (a restarted worker), at once"),
        // 30 s is 3 s of real time at speed 10: the check that A's heartbeat
        // is still fresh must not lose it to a loaded machine (10 s left 1 s).
        Restart(owner: "B", staleAfter: 30, testDescription: "another owner, once A's heartbeat is stale"),
        Restart(owner: "B", staleAfter: 3600, release: true, testDescription: "another owner, at once after A released its rows"),
    ]

    @Test("a tracker cancelled mid-way leaves its rows tracking; another picks them up and completes them true to the truth",
          arguments: restarts)
    func restart(_ restart: Restart) async throws {
        let ports = await freeProbePorts(2, instances: 18)
        let spec = makeSpec([
            // Status checks slow enough that none passes before the
            // instance is first seen running (see lateFirstLook for why).
            tierGroup("web", 12) {
                $0.initialState = .hibernated
                $0.timings.resume = DurationDistribution(median: 6, p95: 12)
                $0.timings.statusOk = DurationDistribution(median: 40, p95: 60)
                $0.timings.reachable = DurationDistribution(median: 12, p95: 20)
                $0.probePort = ports[0]
            },
            tierGroup("legacy", 6) {
                $0.initialState = .stopped
                $0.timings.coldBoot = DurationDistribution(median: 10, p95: 20)
                $0.timings.statusOk = DurationDistribution(median: 40, p95: 60)
            },
        ])
        let settings = Self.policies(ports: ports)
        try await withSimulator(spec, speed: Self.speed, probes: true) { sim in
            try await withTemporaryDirectory { directory in
                let path = directory + "/queue.sqlite"
                let storeA = try ResumeStore(queue: SQLiteJobQueue(path: path))
                let a = sim.tracker(settings, store: storeA, owner: "A")
                let runningA = track(a)
                try await sim.startAll { await a.register($0) }
                // Mid-way: some resumes seen running, none complete yet.
                let midway = try await eventually(timeout: 10, every: .milliseconds(10)) {
                    try await storeA.records(since: 0).contains { $0.running != nil }
                }
                #expect(midway)
                runningA.cancel()
                _ = await runningA.result
                if restart.release { await a.release() }
                let rows = try await storeA.records(since: 0)
                #expect(rows.count == 18)
                let inFlight = rows.filter { $0.state == .tracking }
                #expect(inFlight.count >= 12, "most resumes were still in flight: \(rows.map(\.state))")

                // Another process: its own pool over the same file.
                let storeB = try ResumeStore(queue: SQLiteJobQueue(path: path))
                let b = sim.tracker(settings, store: storeB, owner: restart.owner) { $0.staleAfter = restart.staleAfter }
                if restart.adoptingRun {
                    let runningB = track(b, adopting: true)
                    let picked = await eventually(timeout: 10, every: .milliseconds(10)) {
                        let following = await b.inFlightCount
                        let done = await b.finished.count
                        return following + done > 0
                    }
                    #expect(picked, "the tracker picked nothing up")
                    try await finish(b, runningB)
                } else {
                    if !restart.release {
                        await b.adopt()
                        #expect(await b.inFlightCount == 0, "A's heartbeat is still fresh")
                    }
                    let adopted = await eventually(timeout: 10, every: .milliseconds(10)) {
                        await b.adopt()
                        return await b.inFlightCount == inFlight.count
                    }
                    let adoptedCount = await b.inFlightCount
                    #expect(adopted, "adopted \(adoptedCount) of \(inFlight.count)")
                    try await finish(b, track(b))
                }

                let finished = await b.finished
                #expect(Set(finished.map(\.instanceID)) == Set(inFlight.map(\.instanceID)))
                let truth = sim.engine.resumeTruth()
                let instances = sim.instances()
                let stored = try await storeB.records(since: 0)
                #expect(stored.count == 18)
                for row in stored {
                    #expect(row.state == .complete, "\(row.instanceID): \(row.state)")
                    #expect(row.mode == (instances[row.instanceID]?.group == "legacy" ? .cold : .hibernation))
                    // Phases reached while no tracker looked have wider
                    // brackets, but the truth stays inside them.
                    Self.checkAgainstTruth(row, truth[row.instanceID], withinInterval: false)
                }
                // The accepted time and its error are A's, unchanged.
                let before = Dictionary(uniqueKeysWithValues: rows.map { ($0.instanceID, $0.accepted) })
                #expect(stored.allSatisfy { before[$0.instanceID] == $0.accepted })
                #expect(try await storeB.adopt(owner: "C", now: sim.clock.now() + 3600, staleAfter: 1).isEmpty)
            }
        }
    }

    @Test("register without a store: followed in memory all the same")
    func withoutStore() async throws {
        let ports = await freeProbePorts(2, instances: 9)
        let spec = Self.fleet(web: 4, api: 0, batch: 3, legacy: 2, ports: ports)
        try await withSimulator(spec, speed: Self.speed, probes: true) { sim in
            let tracker = sim.tracker(Self.policies(ports: ports), store: nil)
            let tracking = track(tracker)
            try await sim.startAll { await tracker.register($0, jobID: "job-7") }
            try await finish(tracker, tracking)
            let finished = await tracker.finished
            #expect(finished.count == 9)
            #expect(finished.allSatisfy { $0.state == .complete && $0.jobID == "job-7" && $0.id == nil })
            let truth = sim.engine.resumeTruth()
            for record in finished { Self.checkAgainstTruth(record, truth[record.instanceID], withinInterval: true) }
        }
    }

    @Test("phases reached before the tracker's first look (a late start, or a gap in tracking): the truth still inside every bracket")
    func lateFirstLook() async throws {
        let spec = makeSpec([
            tierGroup("batch", 8) {
                $0.initialState = .hibernated
                $0.timings.resume = DurationDistribution(median: 3, p95: 5)
                $0.timings.statusOk = DurationDistribution(median: 3, p95: 5)
            },
        ])
        try await withSimulator(spec, speed: Self.speed, probes: true) { sim in
            let tracker = sim.tracker(Self.policies(ports: [8443, 8080]), store: nil)
            try await sim.startAll { await tracker.register($0) }
            // Nobody looks until every instance runs with its checks passed.
            let ready = await eventually(timeout: 5, every: .milliseconds(10)) {
                let truth = sim.engine.resumeTruth()
                return truth.count == 8 && truth.values.allSatisfy { $0.statusOk != nil }
            }
            try #require(ready)
            try await finish(tracker, track(tracker))
            let finished = await tracker.finished
            #expect(finished.count == 8)
            let truth = sim.engine.resumeTruth()
            for record in finished { Self.checkAgainstTruth(record, truth[record.instanceID], withinInterval: false) }
        }
    }

    @Test("past the time its policy expects, a resume is looked at every slow interval: fewer calls, wider but true brackets")
    func slowCadence() async throws {
        let speed = 30.0
        let spec = makeSpec([
            tierGroup("late", 5) {
                $0.initialState = .hibernated
                $0.timings.resume = DurationDistribution(median: 40, p95: 50)
                // Slower than a slow interval: none passes before the
                // instance is seen running (see lateFirstLook).
                $0.timings.statusOk = DurationDistribution(median: 25, p95: 30)
            },
        ])
        var settings = ResumeSettings()
        settings.pollInterval = Self.pollInterval
        // Expected within 5 s: due for 7.5 s, then late.
        settings.policies = [policy("late", tags: ["Tier": "late"], readiness: .running, objectives: ResumeObjectives(max: 5),
                                    deadline: 300)]
        try await withSimulator(spec, speed: speed, probes: true) { sim in
            let tracker = sim.tracker(settings, store: nil)
            let slowInterval = ResumeTracker.Settings(settings).slowInterval
            #expect(slowInterval == 10)
            let tracking = track(tracker)
            try await sim.startAll { await tracker.register($0) }
            try await finish(tracker, tracking)
            let finished = await tracker.finished
            #expect(finished.count == 5)
            let truth = sim.engine.resumeTruth()
            for record in finished {
                #expect(record.state == .complete)
                Self.checkAgainstTruth(record, truth[record.instanceID], withinInterval: false)
                let running = try #require(record.running)
                #expect(running.error > Self.pollInterval, "looked at slowly: ±\(running.error)")
                #expect(running.error <= slowInterval / 2 + 1, "±\(running.error)")
            }
            let first = finished.map(\.accepted.at).min()!
            let last = finished.compactMap { $0.statusOK?.at }.max()!
            let fastRounds = 7.5 / Self.pollInterval + 2
            let slowRounds = (last - first) / slowInterval + 3
            let calls = await tracker.calls
            #expect(Double(calls) <= 2 * (fastRounds + slowRounds), "\(calls) calls over \(last - first) s")
        }
    }

    @Test("register stores every accepted start before anything else; a second start of the same instance supersedes the first")
    func registerAndSupersede() async throws {
        let spec = makeSpec([
            tierGroup("web", 3) { $0.initialState = .hibernated },
            tierGroup("legacy", 2) {
                $0.initialState = .stopped
                $0.instanceType = "t3.medium"
                $0.zones = ["us-east-1f"]
            },
        ])
        try await withSimulator(spec, speed: Self.speed, probes: true) { sim in
            try await withStore { store, _ in
                let tracker = sim.tracker(Self.policies(ports: [8443, 8080]), store: store, owner: "A")
                let captured = Captured()
                // Not running: registration alone must have stored them.
                try await sim.startAll { starts in
                    captured.add(starts)
                    await tracker.register(starts, jobID: "job-1")
                }
                let batches = captured.all
                try #require(batches.count == 1)
                let starts = batches[0]
                #expect(starts.instances.count == 5)
                let rows = try await store.records(since: 0)
                #expect(rows.count == 5)
                let truth = sim.engine.resumeTruth()
                let instances = sim.instances()
                for row in rows {
                    let group = try #require(instances[row.instanceID]?.group)
                    #expect(row.state == .tracking)
                    #expect(row.jobID == "job-1")
                    #expect(row.policy == (group == "web" ? "web" : "default"))
                    #expect(row.readiness == (group == "web" ? "tcp 8443" : "status-ok"))
                    #expect(row.mode == (group == "web" ? .hibernation : .cold))
                    #expect(row.instanceType == (group == "web" ? "m5.large" : "t3.medium"))
                    if group == "legacy" { #expect(row.zone == "us-east-1f") }
                    #expect(row.privateIP == instances[row.instanceID]?.privateIP)
                    // The accepted time is the middle of the call, its error half the call.
                    #expect(row.accepted.at == (starts.sentAt + starts.answeredAt) / 2)
                    #expect(row.accepted.error == (starts.answeredAt - starts.sentAt) / 2)
                    #expect(row.checkedAt == starts.sentAt)
                    #expect(row.deadline == row.accepted.at + 600)
                    Self.check("\(row.instanceID) accepted", row.accepted, truth: truth[row.instanceID]?.accepted,
                               slack: Self.describeSlack, interval: nil)
                }
                #expect(await tracker.inFlightCount == 5)

                // The same start registered again (as a second start of the
                // same instances would be): the first resumes end, superseded.
                await tracker.register(starts, jobID: "job-2")
                #expect(await tracker.inFlightCount == 5)
                let superseded = try await eventually(timeout: 5, every: .milliseconds(10)) {
                    try await store.records(since: 0).filter { $0.jobID == "job-1" }.allSatisfy { $0.state == .failed }
                }
                #expect(superseded)
                let all = try await store.records(since: 0)
                #expect(all.count == 10)
                for row in all where row.jobID == "job-1" {
                    #expect(row.state == .failed)
                    #expect(row.detail == "superseded by a later start")
                }
                #expect(all.filter { $0.jobID == "job-2" }.allSatisfy { $0.state == .tracking })
                #expect(try await store.adopt(owner: "A", now: sim.clock.now(), staleAfter: 30).map(\.jobID)
                    == Array(repeating: "job-2", count: 5))
            }
        }
    }

    @Test("hundreds of resumes: 100 ids a call, calls per round bounded by in-flight/100, not by instances")
    func bulkCalls() async throws {
        let n = 250
        let spec = makeSpec([
            tierGroup("batch", n) {
                $0.initialState = .hibernated
                $0.instanceType = "r5.large"
                $0.timings.resume = DurationDistribution(median: 6, p95: 12)
                $0.timings.statusOk = DurationDistribution(median: 6, p95: 12)
            },
        ])
        try await withSimulator(spec, speed: Self.speed, probes: true) { sim in
            let counting = CountingTransport()
            let tracker = sim.tracker(Self.policies(ports: [8443, 8080]), store: nil, ec2: sim.client(counting))
            let tracking = track(tracker)
            try await sim.startAll { await tracker.register($0) }
            try await finish(tracker, tracking)
            let finished = await tracker.finished
            #expect(finished.count == n)
            #expect(finished.allSatisfy { $0.state == .complete && $0.policy == "batch" })
            let truth = sim.engine.resumeTruth()
            for record in finished { Self.checkAgainstTruth(record, truth[record.instanceID], withinInterval: true) }

            let calls = counting.calls
            #expect(calls.count == (await tracker.calls))
            #expect(Set(calls.map(\.action)).isSubset(of: ["DescribeInstances", "DescribeInstanceStatus"]))
            #expect(calls.allSatisfy { $0.ids >= 1 && $0.ids <= 100 }, "\(calls.map(\.ids))")
            #expect(calls.map(\.ids).max() == 100, "full calls while many are in flight")
            // Every id is asked about once a round: the ids asked for add up
            // to at most (in flight) × rounds, and the calls to that / 100
            // plus one partial call per kind and round.
            let first = finished.map(\.accepted.at).min()!
            let last = finished.compactMap { $0.statusOK?.at }.max()!
            let rounds = ((last - first) / Self.pollInterval).rounded(.up) + 3
            #expect(Double(calls.count) <= rounds * 6, "\(calls.count) calls over \(rounds) rounds")
            let idsAsked = calls.map(\.ids).reduce(0, +)
            #expect(calls.count <= (idsAsked + 99) / 100 + 2 * Int(rounds), "\(calls.count) calls for \(idsAsked) ids")
            #expect(Double(calls.count) / Double(n) < 0.5, "\(calls.count) calls for \(n) resumes")
        }
    }
}

/// Values handed to a hook, kept for the test.
final class Captured: Sendable {
    private let values = Mutex<[AcceptedStarts]>([])
    func add(_ starts: AcceptedStarts) { values.withLock { $0.append(starts) } }
    var all: [AcceptedStarts] { values.withLock { $0 } }
}
