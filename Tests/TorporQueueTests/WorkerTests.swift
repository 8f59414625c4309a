import Foundation
import Synchronization
import Testing
import TorporEC2
import TorporFleet
import TorporQueue
@testable import TorporSim
import TorporTestSupport
import TorporWorker

private let protectTags: [(key: String, value: String)] = [(key: "torpor:protect", value: "true")]

// MARK: Payloads

@Suite("Fleet job payloads")
struct FleetJobPayloadTests {
    @Test("a payload survives encoded() and decode() with every field set")
    func roundTrip() throws {
        var payload = FleetJobPayload(selector: FleetSelector(
            ids: ["i-0123456789abcdef0"], tags: [EC2Tag(key: "Env", value: "dev")],
            filters: [EC2Filter(name: "instance-type", values: ["m5.large", "c5.xlarge"])], states: ["running"]))
        payload.hibernate = true
        payload.fallback = .skip
        payload.force = true
        payload.dryRun = true
        payload.maxInstances = 12
        payload.maxShare = 0.25
        payload.overrideBlastRadius = true
        payload.protectTagKey = "keep"
        payload.protectTagValue = "yes"
        payload.wait = false
        let text = payload.encoded()
        #expect(try FleetJobPayload.decode(text, version: FleetJobPayload.version) == payload)
        // Stable text: sorted keys, so equal payloads store equal strings.
        #expect(text == payload.encoded())
        #expect(text.contains(#""hibernate":true"#))

        let rules = payload.rules()
        #expect(rules.protectTagKey == "keep" && rules.protectTagValue == "yes")
        #expect(rules.hibernationFallback == .skip)
        #expect(rules.maxInstances == 12 && rules.maxShare == 0.25)
        #expect(rules.overrideBlastRadius && rules.force)
    }

    @Test("a payload version this worker does not read: a permanent error naming the version")
    func wrongVersion() throws {
        let text = FleetJobPayload(selector: FleetSelector(ids: ["i-1"])).encoded()
        let error = try #require(throws: JobError.self) { try FleetJobPayload.decode(text, version: 2) }
        #expect(!error.retryable)
        #expect(error.message.contains("version 2"), "\(error.message)")
    }

    @Test("a payload without its selector: a permanent error naming the missing field")
    func missingField() throws {
        let text = FleetJobPayload(selector: FleetSelector(ids: ["i-1"])).encoded()
        var object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        object.removeValue(forKey: "selector")
        let stripped = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        let error = try #require(throws: JobError.self) { try FleetJobPayload.decode(stripped, version: 1) }
        #expect(!error.retryable)
        #expect(error.message == "payload is missing 'selector'")
    }

    @Test("malformed JSON and a wrong type: permanent errors that say so")
    func malformed() throws {
        let error = try #require(throws: JobError.self) { try FleetJobPayload.decode("{not json", version: 1) }
        #expect(!error.retryable)
        #expect(error.message.hasPrefix("payload is not valid JSON"), "\(error.message)")

        let text = FleetJobPayload(selector: FleetSelector(ids: ["i-1"])).encoded()
            .replacingOccurrences(of: #""hibernate":false"#, with: #""hibernate":"yes""#)
        let typeError = try #require(throws: JobError.self) { try FleetJobPayload.decode(text, version: 1) }
        #expect(!typeError.retryable)
        #expect(typeError.message.contains("wrong type at 'hibernate'"), "\(typeError.message)")
    }
}

// MARK: The runner against the simulator

@Suite("JobRunner against the simulator", .serialized, .timeLimit(.minutes(1)))
struct JobRunnerTests {
    static let fleet = makeSpec([
        makeGroup("web", 6) { $0.tags = [(key: "Env", value: "dev")]; $0.hibernationConfigured = 0.5 },
        makeGroup("guarded", 2) { $0.tags = [(key: "Env", value: "dev")] + protectTags },
        makeGroup("prod", 3) { $0.tags = [(key: "Env", value: "prod")] },
    ])

    @Test("fleet.stop with hibernate: the result's counts and outcomes match the simulator's ground truth")
    func stopWithHibernate() async throws {
        try await withSimulator(Self.fleet) { sim in
            let before = sim.truth()
            let web = sim.ids(group: "web"), guarded = sim.ids(group: "guarded"), prod = sim.ids(group: "prod")
            let configured = web.filter { before[$0]?.hibernationConfigured == true }
            #expect(!configured.isEmpty && configured.count < web.count, "the fleet mixes both kinds (seed)")
            let text = try await sim.runner().run(kind: JobKind.fleetStop,
                                                  payload: payload(tag: "Env", "dev") { $0.hibernate = true }.encoded(),
                                                  payloadVersion: 1)
            let result = try StoredResult.decode(text)
            let truth = sim.truth()
            #expect(result.action == "hibernate")
            #expect(!result.dryRun)
            #expect(result.calls > 0)
            #expect(result.instances.count == 8)
            #expect(Set(result.instances.map(\.instanceID)) == Set(web + guarded))

            // Counts from the simulator's side.
            let hibernatedInTruth = web.filter { truth[$0]?.state == .stopped && truth[$0]?.stateReasonCode == "Client.UserInitiatedHibernate" }
            let stoppedInTruth = web.filter { truth[$0]?.state == .stopped && truth[$0]?.stateReasonCode == "Client.UserInitiatedShutdown" }
            #expect(Set(hibernatedInTruth) == Set(configured))
            #expect(hibernatedInTruth.count + stoppedInTruth.count == web.count)
            #expect(result.counts["hibernated"] == hibernatedInTruth.count)
            #expect(result.counts["stopped"] == stoppedInTruth.count)
            #expect(result.counts["skipped"] == guarded.count)
            #expect(result.counts["failed"] == 0)
            #expect(result.counts.values.reduce(0, +) == 8)
            for id in guarded + prod { #expect(truth[id]?.state == .running, "\(id) was not to be touched") }
            for instance in result.instances {
                let now = try #require(truth[instance.instanceID])
                switch instance.outcome {
                case .hibernated: #expect(now.stateReasonCode == "Client.UserInitiatedHibernate" && now.state == .stopped)
                case .stopped: #expect(now.stateReasonCode == "Client.UserInitiatedShutdown" && now.state == .stopped)
                case .skipped: #expect(now.state == .running && guarded.contains(instance.instanceID))
                default: Issue.record("unexpected outcome \(instance.outcome) for \(instance.instanceID)")
                }
            }
        }
    }

    @Test("a corrupt payload, an unknown kind and an empty selector: permanent errors, and no instance touched")
    func permanentErrors() async throws {
        try await withSimulator(Self.fleet) { sim in
            let runner = sim.runner()
            let good = payload(tag: "Env", "dev").encoded()

            let corrupt = await #expect(throws: JobError.self) {
                _ = try await runner.run(kind: JobKind.fleetStop, payload: "{\"selector\": ", payloadVersion: 1)
            }
            #expect(corrupt?.retryable == false)
            #expect(corrupt?.message.hasPrefix("payload is not valid JSON") == true, "\(corrupt?.message ?? "")")

            let unknown = await #expect(throws: JobError.self) {
                _ = try await runner.run(kind: "fleet.reboot", payload: good, payloadVersion: 1)
            }
            #expect(unknown?.retryable == false)
            #expect(unknown?.message.contains("unknown job kind 'fleet.reboot'") == true, "\(unknown?.message ?? "")")

            let empty = await #expect(throws: JobError.self) {
                _ = try await runner.run(kind: JobKind.fleetStop, payload: FleetJobPayload(selector: FleetSelector()).encoded(),
                                         payloadVersion: 1)
            }
            #expect(empty?.retryable == false)
            #expect(empty?.message.contains("empty selector") == true, "\(empty?.message ?? "")")

            let version = await #expect(throws: JobError.self) {
                _ = try await runner.run(kind: JobKind.fleetStop, payload: good, payloadVersion: 7)
            }
            #expect(version?.retryable == false)

            #expect(sim.truth().values.allSatisfy { $0.state == .running })
        }
    }

    @Test("a plan past the blast radius is refused: a permanent error, no instance touched; the override lets it through")
    func blastRadiusRefusal() async throws {
        try await withSimulator(Self.fleet) { sim in
            let runner = sim.runner()
            let error = await #expect(throws: JobError.self) {
                _ = try await runner.run(kind: JobKind.fleetStop, payload: payload(tag: "Env", "prod") { $0.maxInstances = 2 }.encoded(),
                                         payloadVersion: 1)
            }
            #expect(error?.retryable == false)
            #expect(error?.message.hasPrefix("plan refused") == true, "\(error?.message ?? "")")
            let share = await #expect(throws: JobError.self) {
                _ = try await runner.run(kind: JobKind.fleetStop, payload: payload(tag: "Env", "prod") { $0.maxShare = 0.5 }.encoded(),
                                         payloadVersion: 1)
            }
            #expect(share?.retryable == false)
            #expect(sim.truth().values.allSatisfy { $0.state == .running }, "a refused plan makes no call that changes state")

            let text = try await runner.run(kind: JobKind.fleetStop,
                                            payload: payload(tag: "Env", "prod") { $0.maxInstances = 2; $0.overrideBlastRadius = true }.encoded(),
                                            payloadVersion: 1)
            #expect(try StoredResult.decode(text).counts["stopped"] == 3)
            let truth = sim.truth()
            #expect(sim.ids(group: "prod").allSatisfy { truth[$0]?.state == .stopped })
        }
    }
}

// MARK: The consumer

@Suite("QueueConsumer against the simulator", .serialized, .timeLimit(.minutes(1)))
struct QueueConsumerTests {
    @Test("a queued fleet.stop job ends succeeded, with its result stored")
    func stopJobSucceeds() async throws {
        let spec = makeSpec([makeGroup("web", 4) { $0.tags = [(key: "Run", value: "a")] },
                             makeGroup("bystanders", 2) { $0.tags = [(key: "Run", value: "b")] }])
        try await withSimulator(spec) { sim in
            try await withQueue { queue, _ in
                let (job, _) = try await queue.enqueue(NewJob(kind: JobKind.fleetStop, payload: payload(tag: "Run", "a").encoded()),
                                                       now: Date().timeIntervalSince1970)
                try await withConsumers([makeConsumer(queue, sim.runner(), owner: "c1", consumerSettings())]) { _ in
                    let done = try await eventually { try await queue.job(id: job.id).state == .succeeded }
                    let current = try await queue.job(id: job.id)
                    #expect(done, "the job did not succeed in time: \(current)")
                }
                let finished = try await queue.job(id: job.id)
                #expect(finished.state == .succeeded)
                #expect(finished.attempts == 1)
                #expect(finished.leaseOwner == nil && finished.lastError == nil)
                let result = try StoredResult.decode(finished.result)
                #expect(result.action == "stop")
                #expect(result.counts["stopped"] == 4)
                #expect(Set(result.instances.map(\.instanceID)) == Set(sim.ids(group: "web")))
                let truth = sim.truth()
                #expect(sim.ids(group: "web").allSatisfy { truth[$0]?.state == .stopped })
                #expect(sim.ids(group: "bystanders").allSatisfy { truth[$0]?.state == .running })
            }
        }
    }

    @Test("corrupt payload, unknown kind, unsupported version: dead at once with the reason; the good job behind them succeeds")
    func badJobsDieWithoutBlocking() async throws {
        let spec = makeSpec([makeGroup("web", 2) { $0.tags = [(key: "Run", value: "a")] }])
        try await withSimulator(spec) { sim in
            try await withQueue { queue, _ in
                let now = Date().timeIntervalSince1970
                let good = payload(tag: "Run", "a").encoded()
                // The bad ones are the most urgent, so the one slot meets them first.
                let corrupt = try await queue.enqueue(NewJob(kind: JobKind.fleetStop, payload: "{\"selector\":", priority: 10), now: now).job
                let unknown = try await queue.enqueue(NewJob(kind: "fleet.reboot", payload: good, priority: 10), now: now).job
                let version = try await queue.enqueue(NewJob(kind: JobKind.fleetStop, payload: good, payloadVersion: 9, priority: 10), now: now).job
                let fine = try await queue.enqueue(NewJob(kind: JobKind.fleetStop, payload: good), now: now).job
                try await withConsumers([makeConsumer(queue, sim.runner(), owner: "c1", consumerSettings())]) { _ in
                    let done = try await eventually {
                        let states = try await [corrupt, unknown, version, fine].asyncMap { try await queue.job(id: $0.id).state }
                        return states == [.dead, .dead, .dead, .succeeded]
                    }
                    #expect(done)
                }
                let deadCorrupt = try await queue.job(id: corrupt.id)
                #expect(deadCorrupt.state == .dead && deadCorrupt.attempts == 1)
                #expect(deadCorrupt.lastError?.hasPrefix("payload is not valid JSON") == true, "\(deadCorrupt.lastError ?? "nil")")
                let deadUnknown = try await queue.job(id: unknown.id)
                #expect(deadUnknown.state == .dead && deadUnknown.attempts == 1)
                #expect(deadUnknown.lastError?.contains("unknown job kind 'fleet.reboot'") == true, "\(deadUnknown.lastError ?? "nil")")
                let deadVersion = try await queue.job(id: version.id)
                #expect(deadVersion.state == .dead && deadVersion.attempts == 1)
                #expect(deadVersion.lastError?.contains("version 9") == true, "\(deadVersion.lastError ?? "nil")")
                let succeeded = try await queue.job(id: fine.id)
                #expect(succeeded.state == .succeeded)
                #expect(try StoredResult.decode(succeeded.result).counts["stopped"] == 2)
            }
        }
    }

    @Test("a transient failure (no capacity): failed with a backoff, then dead after maxAttempts, the last result kept")
    func transientFailureThenDead() async throws {
        let spec = makeSpec([makeGroup("cap", 2) {
            $0.tags = [(key: "Run", value: "cap")]
            $0.initialState = .stopped
            $0.instanceType = "m5.large"
            $0.zones = ["us-east-1a"]
        }])
        try await withSimulator(spec) { sim in
            var faults = FaultSpec()
            faults.noCapacity = [.init(instanceType: "m5.large", zone: "us-east-1a")]
            sim.engine.setFaults(faults)
            try await withQueue { queue, _ in
                let (job, _) = try await queue.enqueue(NewJob(kind: JobKind.fleetStart, payload: payload(tag: "Run", "cap").encoded(),
                                                              maxAttempts: 3),
                                                       now: Date().timeIntervalSince1970)
                let settings = consumerSettings { $0.retryBase = 0.5 }
                let runner = sim.runner { $0.retryWindow = 0 }
                // Every failed state seen between attempts: attempts -> delay before the next.
                var backoffs: [Int: Double] = [:]
                var sawFuture = false
                try await withConsumers([makeConsumer(queue, runner, owner: "c1", settings)]) { _ in
                    let dead = try await eventually(timeout: 12, every: .milliseconds(5)) {
                        let current = try await queue.job(id: job.id)
                        if current.state == .failed {
                            backoffs[current.attempts] = current.notBefore - current.updatedAt
                            if current.notBefore > Date().timeIntervalSince1970 { sawFuture = true }
                        }
                        return current.state == .dead
                    }
                    #expect(dead)
                }
                #expect(sawFuture, "a failed job waits until a not-before in the future")
                #expect(Set(backoffs.keys) == [1, 2], "failed after the first and second attempts: \(backoffs)")
                #expect(abs((backoffs[1] ?? 0) - 0.5) < 0.1, "retryBase x 2^0: \(backoffs)")
                #expect(abs((backoffs[2] ?? 0) - 1.0) < 0.1, "retryBase x 2^1: \(backoffs)")
                let final = try await queue.job(id: job.id)
                #expect(final.state == .dead)
                #expect(final.attempts == 3)
                #expect(final.lastError?.contains("InsufficientInstanceCapacity") == true, "\(final.lastError ?? "nil")")
                #expect(final.lastError?.contains("2 of 2 instance(s) failed") == true, "\(final.lastError ?? "nil")")
                let result = try StoredResult.decode(final.result)
                #expect(result.counts["failed"] == 2)
                #expect(result.instances.allSatisfy { $0.errorCode == "InsufficientInstanceCapacity" })
                let truth = sim.truth()
                #expect(sim.ids(group: "cap").allSatisfy { truth[$0]?.state == .stopped })
            }
        }
    }

    @Test("graceful shutdown during a long job releases the lease without counting the attempt; a second consumer finishes it")
    func shutdownReleasesLease() async throws {
        let spec = makeSpec([makeGroup("web", 3) { $0.tags = [(key: "Run", value: "slow")] }])
        try await withSimulator(spec) { sim in
            // Every EC2 answer takes 2 real seconds: the job is slow.
            var slow = FaultSpec()
            slow.latencyMilliseconds = 2000
            sim.engine.setFaults(slow)
            try await withQueue { queue, _ in
                let (job, _) = try await queue.enqueue(NewJob(kind: JobKind.fleetStop, payload: payload(tag: "Run", "slow").encoded()),
                                                       now: Date().timeIntervalSince1970)
                let first = RunningConsumers([makeConsumer(queue, sim.runner(), owner: "c1", consumerSettings { $0.gracePeriod = 0.1 })])
                let claimed = (try? await eventually(timeout: 5) { try await queue.job(id: job.id).leaseOwner == "c1" }) ?? false
                #expect(claimed)
                try? await Task.sleep(for: .milliseconds(300))
                let took = await first.stop()
                #expect(took < 5, "shutdown waits the grace period and the call in flight, no more (took \(took) s)")
                let released = try await queue.job(id: job.id)
                #expect(released.state == .queued)
                #expect(released.attempts == 0, "a released attempt is not counted")
                #expect(released.leaseOwner == nil && released.leaseExpiry == nil)
                #expect(released.lastError == nil)

                sim.engine.setFaults(FaultSpec())
                try await withConsumers([makeConsumer(queue, sim.runner(), owner: "c2", consumerSettings())]) { _ in
                    let done = try await eventually { try await queue.job(id: job.id).state == .succeeded }
                    #expect(done)
                }
                let finished = try await queue.job(id: job.id)
                #expect(finished.state == .succeeded)
                #expect(finished.attempts == 1)
                let truth = sim.truth()
                #expect(sim.ids(group: "web").allSatisfy { truth[$0]?.state == .stopped })
            }
        }
    }

    @Test("lease renewal keeps a long job from a second consumer (lease 1 s, job of several seconds)")
    func renewalKeepsTheJob() async throws {
        let spec = makeSpec([
            makeGroup("long", 2) { $0.tags = [(key: "Run", value: "long")]; $0.timings = fixedTimings(80) },
            makeGroup("short", 2) { $0.tags = [(key: "Run", value: "short")]; $0.timings = fixedTimings(10) },
        ])
        // At 20x, a stop of 80 simulated seconds takes 4 real seconds.
        try await withSimulator(spec, speed: 20) { sim in
            try await withQueue { queue, _ in
                let settings = consumerSettings { $0.lease = 1 }
                let (long, _) = try await queue.enqueue(NewJob(kind: JobKind.fleetStop, payload: payload(tag: "Run", "long").encoded()),
                                                        now: Date().timeIntervalSince1970)
                let first = RunningConsumers([makeConsumer(queue, sim.runner(), owner: "c1", settings)])
                do {
                    let claimed = try await eventually(timeout: 5) { try await queue.job(id: long.id).leaseOwner == "c1" }
                    #expect(claimed)
                    let startedAt = Date()
                    try await withConsumers([makeConsumer(queue, sim.runner(), owner: "c2", settings)]) { _ in
                        // A second job, for c2 to show it is polling (c1 has one slot).
                        let (short, _) = try await queue.enqueue(NewJob(kind: JobKind.fleetStop, payload: payload(tag: "Run", "short").encoded()),
                                                                 now: Date().timeIntervalSince1970)
                        var longOwners: Set<String> = []
                        var shortOwners: Set<String> = []
                        var maxAttempts = 0
                        let done = try await eventually(timeout: 12, every: .milliseconds(20)) {
                            let current = try await queue.job(id: long.id)
                            if let owner = current.leaseOwner { longOwners.insert(owner) }
                            maxAttempts = max(maxAttempts, current.attempts)
                            let other = try await queue.job(id: short.id)
                            if let owner = other.leaseOwner { shortOwners.insert(owner) }
                            return current.state == .succeeded && other.state == .succeeded
                        }
                        #expect(done)
                        #expect(longOwners == ["c1"], "only c1 ever held the long job")
                        #expect(shortOwners == ["c2"], "c2 was polling and took the other job")
                        #expect(maxAttempts == 1)
                    }
                    let seconds = Date().timeIntervalSince(startedAt)
                    #expect(seconds > 2, "the job outlived its 1 s lease several times over (\(seconds) s)")
                } catch {
                    await first.stop()
                    throw error
                }
                await first.stop()
                let finished = try await queue.job(id: long.id)
                #expect(finished.state == .succeeded && finished.attempts == 1)
                #expect(try StoredResult.decode(finished.result).counts["stopped"] == 2)
            }
        }
    }
}

extension Array where Element: Sendable {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
