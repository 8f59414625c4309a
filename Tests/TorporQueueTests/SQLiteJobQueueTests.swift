import Foundation
import Synchronization
import Testing
import TorporQueue
import TorporTestSupport

/// The embedded queue, driven with explicit `now:` values (no sleeping).
@Suite("SQLiteJobQueue")
struct SQLiteJobQueueTests {
    // MARK: Enqueue

    @Test("enqueue stores every field; defaults: version 1, priority 0, not before now, 5 attempts, queued")
    func enqueueFieldsAndDefaults() async throws {
        try await withQueue { queue, _ in
            let (job, created) = try await queue.enqueue(NewJob(kind: "fleet.stop", payload: #"{"a":1}"#), now: 1000)
            #expect(created)
            #expect(job.id.hasPrefix("job-"))
            #expect(job.kind == "fleet.stop")
            #expect(job.payload == #"{"a":1}"#)
            #expect(job.payloadVersion == 1)
            #expect(job.idempotencyKey == nil)
            #expect(job.priority == 0)
            #expect(job.notBefore == 1000)
            #expect(job.attempts == 0)
            #expect(job.maxAttempts == 5)
            #expect(job.state == .queued)
            #expect(job.leaseOwner == nil)
            #expect(job.leaseExpiry == nil)
            #expect(job.createdAt == 1000)
            #expect(job.updatedAt == 1000)
            #expect(job.lastError == nil)
            #expect(job.result == nil)
            #expect(try await queue.job(id: job.id) == job)

            let (other, _) = try await queue.enqueue(
                NewJob(kind: "fleet.start", payload: "{}", payloadVersion: 2, idempotencyKey: "key-1", priority: 7,
                       notBefore: 5000, maxAttempts: 0),
                now: 1001)
            #expect(other.id != job.id)
            #expect(other.kind == "fleet.start")
            #expect(other.payloadVersion == 2)
            #expect(other.idempotencyKey == "key-1")
            #expect(other.priority == 7)
            #expect(other.notBefore == 5000)
            #expect(other.maxAttempts == 1, "maxAttempts is at least 1")
            #expect(other.createdAt == 1001)
            #expect(try await queue.job(id: other.id) == other)
        }
    }

    @Test("the same idempotency key returns the existing job, created false, and stores nothing new")
    func idempotencyKey() async throws {
        try await withQueue { queue, _ in
            let (first, created) = try await queue.enqueue(NewJob(kind: "fleet.stop", payload: "first", idempotencyKey: "nightly"), now: 10)
            #expect(created)
            let (again, createdAgain) = try await queue.enqueue(
                NewJob(kind: "fleet.start", payload: "second", idempotencyKey: "nightly", priority: 9), now: 20)
            #expect(!createdAgain)
            #expect(again == first)
            #expect(again.payload == "first")
            // Another key, or none, is a new job.
            let (third, createdThird) = try await queue.enqueue(NewJob(kind: "fleet.stop", payload: "third", idempotencyKey: "weekly"), now: 30)
            #expect(createdThird && third.id != first.id)
            let (fourth, createdFourth) = try await queue.enqueue(NewJob(kind: "fleet.stop", payload: "fourth"), now: 40)
            #expect(createdFourth && fourth.id != first.id)
            #expect(try await queue.jobs(state: nil, limit: 100).count == 3)
            // The key still finds the job once it is no longer queued.
            let claimed = try #require(try await queue.claim(owner: "w", lease: 60, now: 50))
            #expect(claimed.id == first.id || claimed.id == third.id || claimed.id == fourth.id)
            let (later, createdLater) = try await queue.enqueue(NewJob(kind: "fleet.stop", payload: "x", idempotencyKey: "nightly"), now: 60)
            #expect(!createdLater && later.id == first.id)
        }
    }

    // MARK: Claims

    @Test("claims take priority first, then the earliest not-before, then the oldest")
    func claimOrder() async throws {
        try await withQueue { queue, _ in
            // Enqueued in an order unlike the expected claim order.
            func add(_ name: String, priority: Int, notBefore: Double?, now: Double) async throws -> String {
                try await queue.enqueue(NewJob(kind: "k", payload: name, priority: priority, notBefore: notBefore), now: now).job.id
            }
            let a = try await add("A", priority: 0, notBefore: nil, now: 100)
            let f = try await add("F", priority: 1, notBefore: 10, now: 201)
            let b = try await add("B", priority: 5, notBefore: nil, now: 101)
            let e = try await add("E", priority: 1, notBefore: 10, now: 200)
            let d = try await add("D", priority: 0, notBefore: nil, now: 99)
            let c = try await add("C", priority: 5, notBefore: 50, now: 102)
            let g = try await add("G", priority: -3, notBefore: 1, now: 1)
            var order: [String] = []
            while let job = try await queue.claim(owner: "w", lease: 60, now: 1000) { order.append(job.id) }
            #expect(order == [c, b, e, f, d, a, g])
        }
    }

    @Test("a job whose not-before is in the future is claimed from that time on, not before")
    func notBeforeInTheFuture() async throws {
        try await withQueue { queue, _ in
            let (job, _) = try await queue.enqueue(NewJob(kind: "k", payload: "{}", priority: 100, notBefore: 500), now: 100)
            let (soon, _) = try await queue.enqueue(NewJob(kind: "k", payload: "{}"), now: 100)
            // The due job is taken although the other has a higher priority.
            #expect(try await queue.claim(owner: "w", lease: 10_000, now: 101)?.id == soon.id)
            #expect(try await queue.claim(owner: "w", lease: 60, now: 499.999) == nil)
            let claimed = try await queue.claim(owner: "w", lease: 60, now: 500)
            #expect(claimed?.id == job.id)
        }
    }

    @Test("a job whose workers keep dying (leases expiring) is not claimed again once its attempts are used up")
    func expiredLeasesRespectMaxAttempts() async throws {
        try await withQueue { queue, _ in
            let (job, _) = try await queue.enqueue(NewJob(kind: "k", payload: "{}", maxAttempts: 2), now: 100)
            #expect(try await queue.claim(owner: "w1", lease: 10, now: 100)?.attempts == 1)
            #expect(try await queue.claim(owner: "w2", lease: 10, now: 111)?.attempts == 2)
            // Both attempts used, the second worker died too: no third attempt.
            let third = try await queue.claim(owner: "w3", lease: 10, now: 122)
            #expect(third == nil, "claimed again with attempts \(third?.attempts ?? 0) of \(job.maxAttempts)")
            #expect(try await queue.job(id: job.id).attempts <= job.maxAttempts)
        }
    }

    @Test("a claim counts an attempt and sets the lease owner and expiry")
    func claimSetsLease() async throws {
        try await withQueue { queue, _ in
            let (job, _) = try await queue.enqueue(NewJob(kind: "k", payload: "{}"), now: 100)
            let claimed = try #require(try await queue.claim(owner: "worker-1", lease: 30, now: 110))
            #expect(claimed.id == job.id)
            #expect(claimed.state == .running)
            #expect(claimed.attempts == 1)
            #expect(claimed.leaseOwner == "worker-1")
            #expect(claimed.leaseExpiry == 140)
            #expect(claimed.updatedAt == 110)
            #expect(claimed.createdAt == 100)
            #expect(try await queue.job(id: job.id) == claimed)
            // Held: nobody else gets it while the lease runs.
            #expect(try await queue.claim(owner: "worker-2", lease: 30, now: 139) == nil)
        }
    }

    @Test("a running job whose lease expired is claimed by another owner, who then holds it")
    func expiredLeaseIsReclaimed() async throws {
        try await withQueue { queue, _ in
            let (job, _) = try await queue.enqueue(NewJob(kind: "k", payload: "{}"), now: 100)
            _ = try #require(try await queue.claim(owner: "dead-worker", lease: 10, now: 100))
            #expect(try await queue.claim(owner: "w2", lease: 10, now: 110) == nil, "not before the lease has expired")
            let taken = try #require(try await queue.claim(owner: "w2", lease: 10, now: 110.5))
            #expect(taken.id == job.id)
            #expect(taken.leaseOwner == "w2")
            #expect(taken.leaseExpiry == 120.5)
            #expect(taken.attempts == 2)
            #expect(taken.state == .running)
            // The first owner has lost it.
            await expectQueueError(.leaseLost) { try await queue.renew(id: job.id, owner: "dead-worker", lease: 10, now: 111) }
            await expectQueueError(.leaseLost) { try await queue.complete(id: job.id, owner: "dead-worker", result: "{}", now: 111) }
            try await queue.complete(id: job.id, owner: "w2", result: "ok", now: 112)
            #expect(try await queue.job(id: job.id).state == .succeeded)
        }
    }

    @Test("renew, complete, fail and release by anyone but the owner throw leaseLost and change nothing")
    func nonOwnerLosesLease() async throws {
        try await withQueue { queue, _ in
            let (job, _) = try await queue.enqueue(NewJob(kind: "k", payload: "{}"), now: 100)
            let claimed = try #require(try await queue.claim(owner: "owner", lease: 60, now: 100))
            let error = await expectQueueError(.leaseLost) { try await queue.renew(id: job.id, owner: "intruder", lease: 60, now: 101) }
            #expect(error?.message.contains(job.id) == true)
            await expectQueueError(.leaseLost) { try await queue.complete(id: job.id, owner: "intruder", result: "r", now: 101) }
            await expectQueueError(.leaseLost) {
                try await queue.fail(id: job.id, owner: "intruder", error: "e", result: nil, retryAt: 200, now: 101)
            }
            await expectQueueError(.leaseLost) { try await queue.release(id: job.id, owner: "intruder", now: 101) }
            #expect(try await queue.job(id: job.id) == claimed)

            // The owner can renew: the expiry moves.
            try await queue.renew(id: job.id, owner: "owner", lease: 60, now: 150)
            let renewed = try await queue.job(id: job.id)
            #expect(renewed.leaseExpiry == 210)
            #expect(renewed.leaseOwner == "owner")
            #expect(renewed.attempts == 1)
            #expect(try await queue.claim(owner: "intruder", lease: 60, now: 200) == nil, "renewed: not expired at 200")

            // A job nobody holds: leaseLost too, even for the old owner.
            let (queued, _) = try await queue.enqueue(NewJob(kind: "k", payload: "{}", notBefore: 10_000), now: 100)
            await expectQueueError(.leaseLost) { try await queue.renew(id: queued.id, owner: "owner", lease: 60, now: 101) }
            await expectQueueError(.leaseLost) { try await queue.complete(id: "job-unknown", owner: "owner", result: "r", now: 101) }
        }
    }

    // MARK: Ends of attempts

    @Test("complete stores the result and ends the lease; the job is not claimed again")
    func completeStoresResult() async throws {
        try await withQueue { queue, _ in
            let (job, _) = try await queue.enqueue(NewJob(kind: "k", payload: "{}"), now: 100)
            _ = try #require(try await queue.claim(owner: "w", lease: 60, now: 100))
            try await queue.complete(id: job.id, owner: "w", result: #"{"stopped":3}"#, now: 105)
            let done = try await queue.job(id: job.id)
            #expect(done.state == .succeeded)
            #expect(done.result == #"{"stopped":3}"#)
            #expect(done.leaseOwner == nil)
            #expect(done.leaseExpiry == nil)
            #expect(done.lastError == nil)
            #expect(done.attempts == 1)
            #expect(done.updatedAt == 105)
            #expect(try await queue.claim(owner: "w", lease: 60, now: 10_000) == nil)
            await expectQueueError(.leaseLost) { try await queue.complete(id: job.id, owner: "w", result: "again", now: 106) }
            #expect(try await queue.job(id: job.id).result == #"{"stopped":3}"#)
        }
    }

    @Test("fail with retryAt: state failed, error and result kept, claimable again at retryAt and not before")
    func failWithRetry() async throws {
        try await withQueue { queue, _ in
            let (job, _) = try await queue.enqueue(NewJob(kind: "k", payload: "{}", maxAttempts: 3), now: 100)
            _ = try #require(try await queue.claim(owner: "w", lease: 60, now: 100))
            try await queue.fail(id: job.id, owner: "w", error: "capacity", result: #"{"failed":1}"#, retryAt: 200, now: 101)
            let failed = try await queue.job(id: job.id)
            #expect(failed.state == .failed)
            #expect(failed.notBefore == 200)
            #expect(failed.lastError == "capacity")
            #expect(failed.result == #"{"failed":1}"#)
            #expect(failed.attempts == 1)
            #expect(failed.leaseOwner == nil && failed.leaseExpiry == nil)
            #expect(failed.updatedAt == 101)
            #expect(try await queue.claim(owner: "w", lease: 60, now: 199.9) == nil)
            let again = try #require(try await queue.claim(owner: "w2", lease: 60, now: 200))
            #expect(again.id == job.id)
            #expect(again.attempts == 2)
            #expect(again.state == .running)
            #expect(again.leaseOwner == "w2")
            // A failure without a result keeps the last one.
            try await queue.fail(id: job.id, owner: "w2", error: "again", result: nil, retryAt: 300, now: 201)
            #expect(try await queue.job(id: job.id).result == #"{"failed":1}"#)
        }
    }

    @Test("fail on the last attempt: dead, the last error kept, never claimed again")
    func failAfterMaxAttempts() async throws {
        try await withQueue { queue, _ in
            let (job, _) = try await queue.enqueue(NewJob(kind: "k", payload: "{}", maxAttempts: 2), now: 100)
            _ = try #require(try await queue.claim(owner: "w", lease: 60, now: 100))
            try await queue.fail(id: job.id, owner: "w", error: "first", result: nil, retryAt: 110, now: 101)
            #expect(try await queue.job(id: job.id).state == .failed)
            let second = try #require(try await queue.claim(owner: "w", lease: 60, now: 110))
            #expect(second.attempts == 2)
            try await queue.fail(id: job.id, owner: "w", error: "second", result: nil, retryAt: 120, now: 111)
            let dead = try await queue.job(id: job.id)
            #expect(dead.state == .dead)
            #expect(dead.lastError == "second")
            #expect(dead.attempts == 2)
            #expect(dead.leaseOwner == nil)
            #expect(try await queue.claim(owner: "w", lease: 60, now: 100_000) == nil)
        }
    }

    @Test("fail with retryAt nil: dead at once, whatever attempts remain")
    func failPermanently() async throws {
        try await withQueue { queue, _ in
            let (job, _) = try await queue.enqueue(NewJob(kind: "k", payload: "{}", maxAttempts: 5), now: 100)
            _ = try #require(try await queue.claim(owner: "w", lease: 60, now: 100))
            try await queue.fail(id: job.id, owner: "w", error: "bad payload", result: nil, retryAt: nil, now: 101)
            let dead = try await queue.job(id: job.id)
            #expect(dead.state == .dead)
            #expect(dead.attempts == 1)
            #expect(dead.lastError == "bad payload")
            #expect(dead.notBefore == 100, "not-before unchanged")
            #expect(try await queue.claim(owner: "w", lease: 60, now: 100_000) == nil)
        }
    }

    @Test("release gives the job back without counting the attempt")
    func releaseDoesNotCount() async throws {
        try await withQueue { queue, _ in
            let (job, _) = try await queue.enqueue(NewJob(kind: "k", payload: "{}", maxAttempts: 3), now: 100)
            _ = try #require(try await queue.claim(owner: "w", lease: 60, now: 100))
            try await queue.release(id: job.id, owner: "w", now: 101)
            let released = try await queue.job(id: job.id)
            #expect(released.state == .queued)
            #expect(released.attempts == 0)
            #expect(released.leaseOwner == nil && released.leaseExpiry == nil)
            #expect(released.updatedAt == 101)
            // Claimable at once by anyone.
            let again = try #require(try await queue.claim(owner: "w2", lease: 60, now: 101))
            #expect(again.attempts == 1)
            // After a failed attempt, a release takes back only its own.
            try await queue.fail(id: job.id, owner: "w2", error: "x", result: nil, retryAt: 102, now: 101)
            #expect(try await queue.claim(owner: "w3", lease: 60, now: 102)?.attempts == 2)
            try await queue.release(id: job.id, owner: "w3", now: 103)
            #expect(try await queue.job(id: job.id).attempts == 1)
            #expect(try await queue.job(id: job.id).state == .queued)
        }
    }

    // MARK: Retry and cancel

    @Test("retry of a dead job: queued again now, with fresh attempts")
    func retryDeadJob() async throws {
        try await withQueue { queue, _ in
            let (job, _) = try await queue.enqueue(NewJob(kind: "k", payload: "{}", maxAttempts: 1), now: 100)
            _ = try #require(try await queue.claim(owner: "w", lease: 60, now: 100))
            try await queue.fail(id: job.id, owner: "w", error: "boom", result: nil, retryAt: 150, now: 101)
            #expect(try await queue.job(id: job.id).state == .dead)
            let retried = try await queue.retry(id: job.id, now: 300)
            #expect(retried.state == .queued)
            #expect(retried.attempts == 0)
            #expect(retried.notBefore == 300)
            #expect(retried.leaseOwner == nil)
            #expect(retried.updatedAt == 300)
            let claimed = try #require(try await queue.claim(owner: "w", lease: 60, now: 300))
            #expect(claimed.id == job.id && claimed.attempts == 1)
        }
    }

    @Test("retry of a failed job queues it now; retry of a queued, running or succeeded job is a conflict")
    func retryConflicts() async throws {
        try await withQueue { queue, _ in
            let (queued, _) = try await queue.enqueue(NewJob(kind: "k", payload: "{}", notBefore: 10_000), now: 100)
            let error = await expectQueueError(.conflict) { _ = try await queue.retry(id: queued.id, now: 101) }
            #expect(error?.message.contains("queued") == true)
            #expect(try await queue.job(id: queued.id) == queued)

            let (other, _) = try await queue.enqueue(NewJob(kind: "k", payload: "{}"), now: 100)
            _ = try #require(try await queue.claim(owner: "w", lease: 60, now: 100))
            await expectQueueError(.conflict) { _ = try await queue.retry(id: other.id, now: 101) }
            try await queue.fail(id: other.id, owner: "w", error: "x", result: nil, retryAt: 5000, now: 101)
            let retried = try await queue.retry(id: other.id, now: 102)
            #expect(retried.state == .queued && retried.notBefore == 102 && retried.attempts == 0)
            _ = try #require(try await queue.claim(owner: "w", lease: 60, now: 102))
            try await queue.complete(id: other.id, owner: "w", result: "r", now: 103)
            await expectQueueError(.conflict) { _ = try await queue.retry(id: other.id, now: 104) }
            await expectQueueError(.notFound) { _ = try await queue.retry(id: "job-nope", now: 104) }
        }
    }

    @Test("cancel of a queued or failed job: dead with lastError 'cancelled'; of a running job: conflict")
    func cancel() async throws {
        try await withQueue { queue, _ in
            let (queued, _) = try await queue.enqueue(NewJob(kind: "k", payload: "{}", notBefore: 10_000), now: 100)
            let cancelled = try await queue.cancel(id: queued.id, now: 101)
            #expect(cancelled.state == .dead)
            #expect(cancelled.lastError == "cancelled")
            #expect(cancelled.updatedAt == 101)
            #expect(try await queue.claim(owner: "w", lease: 60, now: 100_000) == nil)

            let (running, _) = try await queue.enqueue(NewJob(kind: "k", payload: "{}"), now: 100)
            let claimed = try #require(try await queue.claim(owner: "w", lease: 60, now: 100))
            let error = await expectQueueError(.conflict) { _ = try await queue.cancel(id: running.id, now: 102) }
            #expect(error?.message.contains("running") == true)
            #expect(try await queue.job(id: running.id) == claimed)

            try await queue.fail(id: running.id, owner: "w", error: "x", result: nil, retryAt: 200, now: 103)
            #expect(try await queue.cancel(id: running.id, now: 104).state == .dead)
            await expectQueueError(.conflict) { _ = try await queue.cancel(id: running.id, now: 105) }
            await expectQueueError(.notFound) { _ = try await queue.cancel(id: "job-nope", now: 105) }
        }
    }

    // MARK: Reading

    @Test("jobs(state:limit:) filters by state and lists the newest first, up to the limit")
    func listing() async throws {
        try await withQueue { queue, _ in
            var ids: [String] = []
            for index in 0..<5 {
                // Created at 100, 101, ...; the job created at 102 is the most urgent.
                let job = try await queue.enqueue(NewJob(kind: "k", payload: "\(index)", priority: index == 2 ? 10 : 0),
                                                  now: 100 + Double(index)).job
                ids.append(job.id)
            }
            let claimed = try #require(try await queue.claim(owner: "w", lease: 60, now: 200))
            #expect(claimed.id == ids[2])

            #expect(try await queue.jobs(state: nil, limit: 100).map(\.id) == ids.reversed())
            #expect(try await queue.jobs(state: .queued, limit: 100).map(\.id) == [ids[4], ids[3], ids[1], ids[0]])
            #expect(try await queue.jobs(state: .queued, limit: 2).map(\.id) == [ids[4], ids[3]])
            #expect(try await queue.jobs(state: .running, limit: 100).map(\.id) == [ids[2]])
            #expect(try await queue.jobs(state: .dead, limit: 100).isEmpty)
            #expect(try await queue.jobs(state: nil, limit: 1).map(\.id) == [ids[4]])
        }
    }

    @Test("job(id:) of an unknown id: notFound")
    func unknownJob() async throws {
        try await withQueue { queue, _ in
            let error = await expectQueueError(.notFound) { _ = try await queue.job(id: "job-does-not-exist") }
            #expect(error?.message.contains("job-does-not-exist") == true)
        }
    }

    // MARK: Sharing the file

    @Test("a second queue on the same file sees the first's jobs and changes, and a reopened one too")
    func persistence() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/nested/dir/queue.sqlite"
            var first: SQLiteJobQueue? = try SQLiteJobQueue(path: path)
            let (job, _) = try await first!.enqueue(NewJob(kind: "fleet.stop", payload: "{}", idempotencyKey: "k"), now: 100)
            // Both open at once (the command line and the worker).
            let second = try SQLiteJobQueue(path: path)
            #expect(try await second.job(id: job.id) == job)
            let claimed = try #require(try await second.claim(owner: "worker", lease: 60, now: 101))
            #expect(claimed.id == job.id)
            #expect(try await first!.job(id: job.id).state == .running)
            #expect(try await first!.enqueue(NewJob(kind: "fleet.stop", payload: "{}", idempotencyKey: "k"), now: 102).created == false)
            try await second.complete(id: job.id, owner: "worker", result: "done", now: 103)
            first = nil
            let third = try SQLiteJobQueue(path: path)
            let reread = try await third.job(id: job.id)
            #expect(reread.state == .succeeded && reread.result == "done")
            #expect(try await third.jobs(state: nil, limit: 10).count == 1)
        }
    }

    @Test("two queues on one file, 8 tasks claiming 200 jobs at once: every job claimed exactly once")
    func concurrentClaims() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/queue.sqlite"
            let queues = [try SQLiteJobQueue(path: path), try SQLiteJobQueue(path: path)]
            var enqueued: Set<String> = []
            for index in 0..<200 {
                enqueued.insert(try await queues[index % 2].enqueue(NewJob(kind: "k", payload: "\(index)", priority: index % 3),
                                                                     now: 100).job.id)
            }
            #expect(enqueued.count == 200)
            let claims = try await withThrowingTaskGroup(of: [(String, String)].self) { group in
                for task in 0..<8 {
                    let queue = queues[task % 2]
                    group.addTask {
                        let owner = "owner-\(task)"
                        var mine: [(String, String)] = []
                        while let job = try await queue.claim(owner: owner, lease: 600, now: 200) {
                            #expect(job.leaseOwner == owner)
                            mine.append((job.id, owner))
                        }
                        return mine
                    }
                }
                var all: [(String, String)] = []
                for try await mine in group { all += mine }
                return all
            }
            #expect(claims.count == 200)
            #expect(Set(claims.map(\.0)) == enqueued)
            let stored = try await queues[0].jobs(state: nil, limit: 1000)
            #expect(stored.count == 200)
            #expect(stored.allSatisfy { $0.state == .running && $0.attempts == 1 })
            let ownerByID = Dictionary(claims, uniquingKeysWith: { first, _ in first })
            #expect(stored.allSatisfy { ownerByID[$0.id] == $0.leaseOwner }, "the stored owner is the one that got the job")
            #expect(Set(claims.map(\.1)).count > 1, "more than one task got jobs")
        }
    }

    // MARK: Storage errors

    @Test("a read-only database file: enqueue fails with a .storage error that says read-only",
          .enabled(if: !ignoresFilePermissions || immutableFilesWork,
                   "running as root and `chattr +i` is unavailable: root ignores file permissions, so no file is read-only to it"))
    func readOnlyFile() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/queue.sqlite"
            var queue: SQLiteJobQueue? = try SQLiteJobQueue(path: path)
            _ = try await queue!.enqueue(NewJob(kind: "k", payload: "{}"), now: 100)
            queue = nil // closes: the WAL is checkpointed into the file
            let readOnly: () -> Void
            let writable: () -> Void
            if ignoresFilePermissions {
                // Root ignores modes; an immutable file is read-only even to root.
                readOnly = { runProcess(["chattr", "+i", path]) }
                writable = { runProcess(["chattr", "-i", path]) }
            } else {
                readOnly = { chmod(path, 0o444) }
                writable = { chmod(path, 0o644) }
            }
            readOnly()
            defer { writable() }
            #expect(FileHandle(forWritingAtPath: path) == nil, "the file should not be writable now")
            do {
                let reopened = try SQLiteJobQueue(path: path)
                #expect(try await reopened.jobs(state: nil, limit: 10).count == 1, "a read-only queue can still be read")
                let error = await expectQueueError(.storage) { _ = try await reopened.enqueue(NewJob(kind: "k", payload: "{}"), now: 200) }
                #expect(error?.message.contains("read-only") == true, "\(error?.message ?? "")")
                #expect(error?.message.contains(path) == true, "the message names the file")
            } catch let error as QueueError {
                // Opening may already fail (today it does: opening writes);
                // then that error must say so.
                #expect(error.kind == .storage)
                #expect(error.message.contains("read-only"), "\(error.message)")
            } catch {
                Issue.record("unexpected error \(error)")
            }
            writable()
            let again = try SQLiteJobQueue(path: path)
            #expect(try await again.jobs(state: nil, limit: 10).count == 1, "nothing was lost")
        }
    }

    @Test("a file of random bytes: a .storage error saying it is not a usable SQLite database")
    func corruptFile() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/queue.sqlite"
            var generator = SystemRandomNumberGenerator()
            let bytes = (0..<65_536).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
            do {
                let queue = try SQLiteJobQueue(path: path)
                // If opening did not look at the file, the first use must.
                await expectQueueError(.storage) { _ = try await queue.enqueue(NewJob(kind: "k", payload: "{}"), now: 1) }
                Issue.record("opening a corrupt file succeeded")
            } catch let error as QueueError {
                #expect(error.kind == .storage)
                #expect(error.message.contains("not a usable SQLite database"), "\(error.message)")
                #expect(error.message.contains(path))
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
    }

    @Test("a path whose parent is a regular file: a .storage error naming the path")
    func parentIsAFile() async throws {
        try await withTemporaryDirectory { directory in
            let parent = directory + "/not-a-directory"
            #expect(FileManager.default.createFile(atPath: parent, contents: Data("x".utf8)))
            let path = parent + "/queue.sqlite"
            do {
                _ = try SQLiteJobQueue(path: path)
                Issue.record("opened a queue under a regular file")
            } catch let error as QueueError {
                #expect(error.kind == .storage)
                #expect(error.message.contains(path), "\(error.message)")
                #expect(error.message.contains("open the queue"), "\(error.message)")
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
    }

    @Test("a database locked by another process: enqueue gives a .storage error saying locked after the busy timeout; nothing is lost",
          .enabled(if: pythonSQLiteAvailable, "python3 with sqlite3 is needed to hold the lock from another process"),
          .timeLimit(.minutes(1)))
    func lockedByAnotherProcess() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/queue.sqlite"
            let queue = try SQLiteJobQueue(path: path, busyTimeout: 0.5)
            let (before, _) = try await queue.enqueue(NewJob(kind: "k", payload: "before"), now: 100)

            let script = """
                import os, sqlite3, sys, time
                connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
                connection.execute("BEGIN EXCLUSIVE")
                print("locked", flush=True)
                deadline = time.monotonic() + 50
                while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:
                    time.sleep(0.02)
                connection.execute("ROLLBACK")
                connection.close()
                """
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            // It holds the lock until a file appears, as long as the test
            // needs however slow the machine. (Not until its standard input
            // closes: a process another test starts at that moment can
            // inherit the pipe and hold it open.)
            let release = directory + "/release"
            process.arguments = ["python3", "-c", script, path, release]
            let output = Pipe()
            process.standardOutput = output
            try startProcess(process)
            defer {
                _ = FileManager.default.createFile(atPath: release, contents: nil)
                if process.isRunning { process.terminate() }
                process.waitUntilExit()
            }
            // Wait until it holds the lock.
            let line = output.fileHandleForReading.availableData
            #expect(String(decoding: line, as: UTF8.self).hasPrefix("locked"))

            let started = Date()
            let error = await expectQueueError(.storage) { _ = try await queue.enqueue(NewJob(kind: "k", payload: "during"), now: 200) }
            let waited = Date().timeIntervalSince(started)
            #expect(error?.message.contains("locked") == true, "\(error?.message ?? "")")
            #expect(waited >= 0.4, "the busy timeout is waited out first (waited \(waited) s)")
            #expect(waited < 5, "but not much longer (waited \(waited) s)")
            // Readers are not blocked (WAL).
            #expect(try await queue.jobs(state: nil, limit: 10).map(\.id) == [before.id])

            #expect(process.isRunning, "the lock was still held when the error came")
            _ = FileManager.default.createFile(atPath: release, contents: nil)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0)
            let (after, created) = try await queue.enqueue(NewJob(kind: "k", payload: "after"), now: 300)
            #expect(created)
            let all = try await queue.jobs(state: nil, limit: 10)
            #expect(all.map(\.id) == [after.id, before.id])
            #expect(all.map(\.payload) == ["after", "before"], "the failed enqueue left nothing behind")
        }
    }
}
