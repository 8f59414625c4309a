import Foundation
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

/// What the tracker keeps when things go wrong around it: the task that
/// registers a start is cancelled, the database is locked by another
/// process, a tracker looks rarely, a resume is seen ready only after its
/// deadline.
@Suite("Resume tracker: nothing lost, nothing claimed", .serialized, .timeLimit(.minutes(2)))
struct ResumeDurabilityTests {
    static func batchFleet(_ count: Int, resume: DurationDistribution = DurationDistribution(median: 8, p95: 14)) -> FleetSpec {
        makeSpec(seed: 17, [
            tierGroup("batch", count) {
                $0.initialState = .hibernated
                $0.timings.resume = resume
                $0.timings.statusOk = DurationDistribution(median: 6, p95: 10)
            },
        ])
    }

    static func settings(deadline: Double = 600, objectives: ResumeObjectives = ResumeObjectives()) -> ResumeSettings {
        var settings = ResumeSettings()
        settings.pollInterval = 2
        var batch = policy("batch", tags: ["Tier": "batch"], readiness: .statusOK, objectives: objectives)
        batch.deadline = deadline
        settings.policies = [batch]
        return settings
    }

    @Test("a start registered from a task that is being cancelled (a job losing its lease) is stored all the same")
    func registerWhileCancelled() async throws {
        try await withSimulator(Self.batchFleet(8), speed: 10) { sim in
            try await withStore { store, _ in
                let tracker = sim.tracker(Self.settings(), store: store)
                try await sim.startAll { starts in
                    await Task {
                        withUnsafeCurrentTask { $0?.cancel() }
                        await tracker.register(starts)
                    }.value
                }
                let stored = try await store.records(since: 0)
                #expect(stored.count == 8, "stored before anything else, though the registering task was cancelled")
                #expect(stored.allSatisfy { $0.state == .tracking && $0.id != nil })
            }
        }
    }

    @Test("the database locked by another process when the starts come: followed in memory, stored once it is free, none lost",
          .enabled(if: pythonSQLiteAvailable, "python3 with sqlite3 holds the lock from another process"))
    func lockedAtRegistration() async throws {
        try await withSimulator(Self.batchFleet(10), speed: 10) { sim in
            try await withTemporaryDirectory { directory in
                let path = directory + "/queue.sqlite"
                let store = try ResumeStore(queue: SQLiteJobQueue(path: path, busyTimeout: 0.2))
                let lock = try HeldLock(path: path)
                defer { lock.stop() }
                let tracker = sim.tracker(Self.settings(), store: store)
                try await sim.startAll { await tracker.register($0) }
                // Readers pass an exclusive lock in WAL mode: nothing was written.
                #expect(try await store.records(since: 0).isEmpty, "the lock kept the first insert out")
                let tracking = track(tracker)
                // A few rounds against the locked store, then it frees up.
                try await sim.clock.sleep(seconds: 6)
                #expect(try await store.records(since: 0).isEmpty, "still locked: nothing written")
                lock.stop()
                try await finish(tracker, tracking)

                let finished = await tracker.finished
                #expect(finished.count == 10)
                #expect(finished.allSatisfy { $0.id != nil }, "every finished resume got its row")
                let stored = try await store.records(since: 0)
                #expect(stored.count == 10, "every resume stored once the lock was gone")
                let byID = Dictionary(uniqueKeysWithValues: finished.map { ($0.instanceID, $0) })
                for row in stored { #expect(row == byID[row.instanceID], "\(row.instanceID) stored differently") }
                #expect(stored.allSatisfy { $0.state == .complete })
            }
        }
    }

    @Test("a tracker looking rarely still stamps its heartbeat: another cannot adopt its live rows")
    func heartbeatBetweenSlowLooks() async throws {
        // Objectives of a second: every resume is a straggler at once and
        // looked at every 120 s; others call a tracker dead after 30 s, and
        // its heartbeat is at most about 15 s old: 15 simulated seconds
        // (almost 4 real) of margin.
        try await withSimulator(Self.batchFleet(6, resume: DurationDistribution(median: 200, p95: 250)), speed: 4) { sim in
            try await withStore { store, _ in
                let tracker = sim.tracker(Self.settings(objectives: ResumeObjectives(max: 1)), store: store) {
                    $0.slowInterval = 120
                    $0.staleAfter = 30
                }
                try await sim.startAll { await tracker.register($0) }
                let tracking = track(tracker)
                defer { tracking.cancel() }
                let start = sim.clock.now()
                while sim.clock.now() - start < 60 {
                    try await sim.clock.sleep(seconds: 4)
                    let stolen = try await store.adopt(owner: "other", now: sim.clock.now(), staleAfter: 30)
                    #expect(stolen.isEmpty, "\(stolen.count) live rows adopted at +\(Int(sim.clock.now() - start)) s")
                    if !stolen.isEmpty { break }
                }
                #expect(await tracker.inFlightCount == 6)
            }
        }
    }

    @Test("rows another tracker took over are let go: never written again, not counted, even when they settle in that round",
          arguments: [0.0, 60.0])
    func takenOver(firstLookAfter: Double) async throws {
        try await withSimulator(Self.batchFleet(6), speed: 10) { sim in
            try await withStore { store, _ in
                let tracker = sim.tracker(Self.settings(), store: store)
                try await sim.startAll { await tracker.register($0) }
                // Another tracker thought this one dead and took its rows.
                let taken = try await store.adopt(owner: "other", now: sim.clock.now() + 3600, staleAfter: 1)
                #expect(taken.count == 6)
                // With a late first look, every resume is ready in it.
                try await sim.clock.sleep(seconds: firstLookAfter)
                let tracking = track(tracker)
                try await finish(tracker, tracking)
                #expect(await tracker.inFlightCount == 0)
                #expect(await tracker.finished.isEmpty, "nothing settled by a tracker that no longer owns the rows")
                let rows = try await store.records(since: 0)
                #expect(rows.count == 6)
                #expect(rows.allSatisfy { $0.state == .tracking && $0.running == nil }, "the rows are as the other tracker took them")
                #expect(try await store.owners() == ["other"])
            }
        }
    }

    @Test("a resume first seen ready past its deadline is a timeout, not a slow success")
    func readyAfterDeadline() async throws {
        try await withSimulator(Self.batchFleet(5, resume: DurationDistribution(median: 6, p95: 9)), speed: 20) { sim in
            try await withStore { store, _ in
                let tracker = sim.tracker(Self.settings(deadline: 12), store: store)
                try await sim.startAll { await tracker.register($0) }
                // Nobody looks until long after the deadline (a tracker that
                // was down): the looks say ready, at ~(0 + 60) / 2 s.
                try await sim.clock.sleep(seconds: 60)
                let tracking = track(tracker)
                try await finish(tracker, tracking)
                let finished = await tracker.finished
                #expect(finished.count == 5)
                for record in finished {
                    #expect(record.state == .timedOut, "\(record.instanceID): \(record.state)")
                    #expect(record.lastState == "ready only after the deadline", "\(record.lastState ?? "")")
                    #expect(record.readyTime != nil, "the measurement itself is kept")
                }
            }
        }
    }
}


struct LockError: Error, CustomStringConvertible {
    var description: String { "the helper process did not take the lock" }
}

/// An exclusive lock on an SQLite file, held by another process until
/// `stop()` (or at most a minute); returns once it is held.
final class HeldLock: @unchecked Sendable {
    let process = Process()
    let input = Pipe()

    init(path: String) throws {
        let script = """
            import sqlite3, sys, select
            connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
            connection.execute("BEGIN EXCLUSIVE")
            print("locked", flush=True)
            select.select([sys.stdin], [], [], 60)
            connection.execute("ROLLBACK")
            connection.close()
            """
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, path]
        process.standardInput = input
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try startProcess(process)
        let line = output.fileHandleForReading.availableData
        guard String(decoding: line, as: UTF8.self).hasPrefix("locked") else {
            stop()
            throw LockError()
        }
    }

    /// Releases the lock: closing its input ends the helper's wait; and
    /// SIGTERM, in case a process another test started at that moment
    /// inherited the pipe and holds it open (dying releases the lock too).
    func stop() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}
