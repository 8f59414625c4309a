import Foundation
import GRDB
import Testing
import TorporPolicies
import TorporQueue
import TorporReports
import TorporResume
import TorporTestSupport

@Suite("Resume store")
struct ResumeStoreTests {
    /// Three fresh resumes, one of each probe kind.
    static func fresh() -> [ResumeRecord] {
        let web = policy("web", readiness: .tcp(port: 8443), deadline: 120)
        let api = policy("api", readiness: .http(url: "http://{ip}:8080/healthz", status: 204), deadline: 300)
        let batch = policy("batch", readiness: .running)
        return [
            ResumeRecord(instanceID: "i-0000000000000000a", policy: web, instanceType: "m5.large", zone: "us-east-1a",
                         privateIP: "10.0.0.10", mode: .hibernation, jobID: "job-1", accepted: PhaseTime(at: t0 + 1.25, error: 0.125),
                         checkedAt: t0 + 1),
            ResumeRecord(instanceID: "i-0000000000000000b", policy: api, instanceType: "c5.xlarge", zone: "us-east-1b",
                         privateIP: nil, mode: .cold, jobID: nil, accepted: PhaseTime(at: t0 + 2.5, error: 0.25),
                         checkedAt: t0 + 2),
            ResumeRecord(instanceID: "i-0000000000000000c", policy: batch, instanceType: "r5.large", zone: "eu-west-1c",
                         privateIP: "10.0.0.12", mode: .hibernation, jobID: "job-2", accepted: PhaseTime(at: t0, error: 0.5),
                         checkedAt: t0 - 0.5),
        ]
    }

    @Test("insert then records: every field back as it went in, ids given, oldest first")
    func insertRoundTrip() async throws {
        try await withStore { store, _ in
            let records = Self.fresh()
            let stored = try await store.insert(records, owner: "a", now: t0 + 3)
            #expect(stored.allSatisfy { $0.id != nil })
            #expect(Set(stored.compactMap(\.id)).count == 3)
            for (original, back) in zip(records, stored) {
                var expected = original
                expected.id = back.id
                #expect(back == expected)
            }
            let read = try await store.records(since: 0)
            // Ordered by accepted time: c (t0), a (t0 + 1.25), b (t0 + 2.5).
            #expect(read.map(\.instanceID) == ["i-0000000000000000c", "i-0000000000000000a", "i-0000000000000000b"])
            let byID = Dictionary(uniqueKeysWithValues: read.map { ($0.instanceID, $0) })
            for original in stored { #expect(byID[original.instanceID] == original) }
            // The probe specs, spelled out.
            #expect(byID["i-0000000000000000a"]?.probe == .tcp(port: 8443))
            #expect(byID["i-0000000000000000a"]?.readiness == "tcp 8443")
            #expect(byID["i-0000000000000000a"]?.readinessPhase == .probe)
            #expect(byID["i-0000000000000000a"]?.deadline == t0 + 1.25 + 120)
            #expect(byID["i-0000000000000000b"]?.probe == .http(url: "http://{ip}:8080/healthz", status: 204))
            #expect(byID["i-0000000000000000b"]?.privateIP == nil)
            #expect(byID["i-0000000000000000b"]?.mode == .cold)
            #expect(byID["i-0000000000000000c"]?.probe == nil)
            #expect(byID["i-0000000000000000c"]?.readinessPhase == .running)
            #expect(byID["i-0000000000000000c"]?.accepted == PhaseTime(at: t0, error: 0.5))
            #expect(read.allSatisfy { $0.state == .tracking })
        }
    }

    @Test("update persists phases with their errors, state, last state, detail, address and checkedAt")
    func updateRoundTrip() async throws {
        try await withStore { store, _ in
            var stored = try await store.insert(Self.fresh(), owner: "a", now: t0 + 3)
            stored[0].running = PhaseTime(at: t0 + 11.5, error: 1.25)
            stored[0].statusOK = PhaseTime(at: t0 + 30.75, error: 0.875)
            stored[0].probeOK = PhaseTime(at: t0 + 17, error: 2)
            stored[0].state = .complete
            stored[0].checkedAt = t0 + 29
            stored[1].running = PhaseTime(at: t0 + 40, error: 1)
            stored[1].state = .timedOut
            stored[1].lastState = "running, status ok, probe status 503"
            stored[1].privateIP = "10.0.0.11"
            stored[1].checkedAt = t0 + 300
            stored[2].state = .failed
            stored[2].lastState = "stopped"
            stored[2].detail = "went to stopped instead of running (Client.InternalError: Client error on launch)"
            try await store.update(stored, owner: "a", now: t0 + 400)
            let read = try await store.records(since: 0)
            let byID = Dictionary(uniqueKeysWithValues: read.map { ($0.instanceID, $0) })
            for record in stored { #expect(byID[record.instanceID] == record) }

            // Then updates of a row still in flight: a phase cleared is cleared.
            var fresh = try await store.insert([Self.fresh()[0]], owner: "a", now: t0 + 401)
            fresh[0].running = PhaseTime(at: t0 + 20, error: 1)
            fresh[0].probeOK = PhaseTime(at: t0 + 25, error: 1)
            #expect(try await store.update(fresh, owner: "a", now: t0 + 402).isEmpty)
            fresh[0].probeOK = nil
            #expect(try await store.update(fresh, owner: "a", now: t0 + 403).isEmpty)
            let reread = try await store.records(since: 0).first { $0.id == fresh[0].id }
            #expect(reread == fresh[0], "an update writes every phase, a cleared one included")
            // A settled row is no one's: a later update of it is refused and reported.
            var late = stored[0]
            late.state = .tracking
            late.probeOK = nil
            #expect(try await store.update([late], owner: "a", now: t0 + 404) == [try #require(late.id)])
            #expect(try await store.records(since: 0).first { $0.id == late.id } == stored[0], "the settled row is as it was")
        }
    }

    @Test("records: since and policy filters")
    func filters() async throws {
        try await withStore { store, _ in
            _ = try await store.insert(Self.fresh(), owner: "a", now: t0)
            #expect(try await store.records(since: t0 + 1).map(\.policy) == ["web", "api"])
            #expect(try await store.records(since: t0 + 1.25).map(\.policy) == ["web", "api"], "at `since` is included")
            #expect(try await store.records(since: t0 + 1.26).map(\.policy) == ["api"])
            #expect(try await store.records(since: 0, policy: "batch").map(\.instanceID) == ["i-0000000000000000c"])
            #expect(try await store.records(since: t0 + 1, policy: "batch").isEmpty)
            #expect(try await store.records(since: 0, policy: "nope").isEmpty)
        }
    }

    @Test("adopt: own rows, released rows and stale rows, never fresh rows of another owner nor settled rows")
    func adopt() async throws {
        try await withStore { store, _ in
            func one(_ id: String) -> ResumeRecord {
                record(id, accepted: t0, ready: nil, state: .tracking)
            }
            // Heartbeats: mine at t0 + 100, other's fresh one at t0 + 95, a
            // stale one at t0 + 50, a released one.
            _ = try await store.insert([one("i-mine")], owner: "me", now: t0 + 100)
            _ = try await store.insert([one("i-fresh")], owner: "other", now: t0 + 95)
            _ = try await store.insert([one("i-stale")], owner: "dead", now: t0 + 50)
            _ = try await store.insert([one("i-released")], owner: "leaving", now: t0 + 99)
            try await store.release(owner: "leaving")
            var done = try await store.insert([one("i-done")], owner: "dead", now: t0 + 50)
            done[0].state = .complete
            try await store.update(done, owner: "dead", now: t0 + 50)

            // At t0 + 100 with 30 s: "dead" (50) is stale, "other" (95) is not.
            let mine = try await store.adopt(owner: "me", now: t0 + 100, staleAfter: 30)
            #expect(mine.map(\.instanceID).sorted() == ["i-mine", "i-released", "i-stale"])
            #expect(mine.allSatisfy { $0.state == .tracking })

            // The other owner still has its own, and only that.
            let others = try await store.adopt(owner: "other", now: t0 + 101, staleAfter: 30)
            #expect(others.map(\.instanceID) == ["i-fresh"])

            // Adoption stamped my heartbeat: at t0 + 120 a third tracker with
            // 30 s takes nothing of mine (nor of other's, stamped at 101).
            let third = try await store.adopt(owner: "third", now: t0 + 120, staleAfter: 30)
            #expect(third.isEmpty)
            // Later, once both are stale, it takes everything in flight.
            let later = try await store.adopt(owner: "third", now: t0 + 200, staleAfter: 30)
            #expect(later.map(\.instanceID).sorted() == ["i-fresh", "i-mine", "i-released", "i-stale"])
        }
    }

    @Test("update stamps the owner's heartbeat; a settled row leaves its owner; release hands rows over at once")
    func heartbeatAndRelease() async throws {
        try await withStore { store, _ in
            var rows = try await store.insert([record("i-1", ready: nil, state: .tracking), record("i-2", ready: nil, state: .tracking)],
                                              owner: "a", now: t0)
            // A round at t0 + 60 keeps a's rows fresh.
            try await store.update([rows[0]], owner: "a", now: t0 + 60)
            #expect(try await store.adopt(owner: "b", now: t0 + 70, staleAfter: 30).isEmpty,
                    "both rows were stamped, not only the one updated")
            // One settles.
            rows[1].state = .complete
            rows[1].running = PhaseTime(at: t0 + 5, error: 1)
            rows[1].statusOK = PhaseTime(at: t0 + 9, error: 1)
            try await store.update([rows[1]], owner: "a", now: t0 + 61)
            // a releases: b takes the one still in flight, with a fresh heartbeat.
            try await store.release(owner: "a")
            let adopted = try await store.adopt(owner: "b", now: t0 + 62, staleAfter: 30)
            #expect(adopted.map(\.instanceID) == ["i-1"])
            #expect(try await store.adopt(owner: "a", now: t0 + 63, staleAfter: 30).isEmpty, "a's own rows are b's now")
        }
    }

    @Test("owners lists who holds in-flight rows; adopt takes the rows of owners named gone at once, whatever their heartbeat")
    func adoptFromGoneOwners() async throws {
        try await withStore { store, _ in
            _ = try await store.insert([record("i-1", ready: nil, state: .tracking)], owner: "worker@h:101", now: t0)
            _ = try await store.insert([record("i-2", ready: nil, state: .tracking)], owner: "worker@h:102", now: t0)
            _ = try await store.insert([record("i-3", ready: nil, state: .tracking)], owner: "cli@h:103", now: t0)
            _ = try await store.insert([record("i-4", ready: nil, state: .complete)], owner: "cli@h:104", now: t0)
            #expect(try await store.owners() == ["cli@h:103", "worker@h:101", "worker@h:102"], "settled rows have no owner")
            // Fresh heartbeats: only the gone owners' rows move.
            let adopted = try await store.adopt(owner: "worker@h:200", now: t0 + 1, staleAfter: 30, gone: ["worker@h:101", "cli@h:103"])
            #expect(adopted.map(\.instanceID) == ["i-1", "i-3"])
            #expect(try await store.owners() == ["worker@h:102", "worker@h:200"])
            #expect(try await store.adopt(owner: "worker@h:300", now: t0 + 2, staleAfter: 30, gone: []).isEmpty)
        }
    }

    @Test("update writes only the owner's rows; rows another tracker took over, in flight or settled since, are returned, untouched")
    func updateRespectsOwnership() async throws {
        try await withStore { store, queue in
            var rows = try await store.insert([record("i-1", ready: nil, state: .tracking), record("i-2", ready: nil, state: .tracking)],
                                              owner: "a", now: t0)
            // b takes a's rows over (a was silent for 30 s) and settles one.
            var taken = try await store.adopt(owner: "b", now: t0 + 100, staleAfter: 30)
            #expect(taken.count == 2)
            taken[1].state = .complete
            taken[1].running = PhaseTime(at: t0 + 9, error: 1)
            #expect(try await store.update([taken[1]], owner: "b", now: t0 + 100).isEmpty)

            rows[0].running = PhaseTime(at: t0 + 5, error: 1)
            rows[1].running = PhaseTime(at: t0 + 6, error: 1)
            let lost = try await store.update(rows, owner: "a", now: t0 + 101)
            #expect(Set(lost) == Set(rows.compactMap(\.id)))
            let now = try await store.records(since: 0)
            #expect(now.first { $0.instanceID == "i-1" }?.running == nil, "a wrote nothing to b's row in flight")
            #expect(now.first { $0.instanceID == "i-2" } == taken[1], "nor to the one b settled")
            let heartbeats = try await queue.database.read { db in try Double.fetchAll(db, sql: "SELECT heartbeatAt FROM resume ORDER BY id") }
            #expect(heartbeats == [t0 + 100, t0 + 100], "nor stamped them")
            #expect(try await store.update([taken[0]], owner: "b", now: t0 + 102).isEmpty)
        }
    }

    @Test("TrackerOwner: a process of this host that ended is gone; a live one, another host's or a malformed name is not")
    func trackerOwner() async throws {
        let host = ProcessInfo.processInfo.hostName
        let me = TrackerOwner.current("worker")
        let namespace = TrackerOwner.pidNamespace.map { "/\($0)" } ?? ""
        #expect(me == "worker@\(host):\(ProcessInfo.processInfo.processIdentifier)\(namespace)")
        #expect(!TrackerOwner.isGone(me), "this process is alive")
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try startProcess(child)
        child.waitUntilExit()
        let ended = "worker@\(host):\(child.processIdentifier)\(namespace)"
        #expect(TrackerOwner.isGone(ended), "an ended (and reaped) process")
        #expect(!TrackerOwner.isGone("worker@\(host):\(child.processIdentifier)/999999"),
                "another process-id namespace (a container sharing the hostname): the heartbeat decides")
        #expect(!TrackerOwner.isGone("worker@another-host-\(UUID().uuidString):\(child.processIdentifier)"), "another host: the heartbeat decides")
        for malformed in ["worker@\(host)", "worker@\(host):", "worker@\(host):abc", "worker@\(host):-1", "nohost", ""] {
            #expect(!TrackerOwner.isGone(malformed), "\(malformed)")
        }
    }

    @Test("two stores over one file (a worker restarted): rows survive and are picked up")
    func survivesReopening() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/queue.sqlite"
            do {
                let store = try ResumeStore(queue: SQLiteJobQueue(path: path))
                _ = try await store.insert(Self.fresh(), owner: "worker@host", now: t0)
            }
            let reopened = try ResumeStore(queue: SQLiteJobQueue(path: path))
            let adopted = try await reopened.adopt(owner: "worker@host", now: t0 + 1, staleAfter: 30)
            #expect(adopted.count == 3)
            #expect(adopted.map(\.probe) == Self.fresh().map(\.probe))
        }
    }

    @Test("damaged enum values in a row: records still reads it, with fallbacks")
    func damagedEnums() async throws {
        try await withStore { store, queue in
            let stored = try await store.insert(Self.fresh(), owner: "a", now: t0)
            let id = try #require(stored[0].id)
            try await queue.database.write { db in
                try db.execute(sql: """
                    UPDATE resume SET state = 'exploded', mode = 'warp', readinessPhase = 'soon', probeKind = 'udp'
                    WHERE id = ?
                    """, arguments: [id])
                // An http probe without its URL.
                try db.execute(sql: "UPDATE resume SET probeURL = NULL WHERE probeKind = 'http'")
            }
            let read = try await store.records(since: 0)
            #expect(read.count == 3)
            let damaged = try #require(read.first { $0.id == id })
            #expect(damaged.state == .failed)
            #expect(damaged.mode == .cold)
            #expect(damaged.readinessPhase == .statusOk)
            #expect(damaged.probe == nil)
            #expect(damaged.instanceID == stored[0].instanceID)
            #expect(read.first { $0.policy == "api" }?.probe == nil)
            // And a report can still be built from it.
            let report = ResumeReportBuilder(settings: ResumeSettings(), since: 0, now: t0 + 10).build(read)
            #expect(report.policies.map(\.name) == ["api", "batch", "web"])
        }
    }

    @Test("text where a number belongs in a row: records does not crash")
    func damagedNumbers() async throws {
        try await withStore { store, queue in
            let stored = try await store.insert(Self.fresh(), owner: "a", now: t0)
            let id = try #require(stored[0].id)
            try await queue.database.write { db in
                try db.execute(sql: "UPDATE resume SET runningAt = 'soon', runningError = 'x', probePort = 'https' WHERE id = ?",
                               arguments: [id])
            }
            let read = try await store.records(since: 0)
            #expect(read.count == 3)
        }
    }
}
