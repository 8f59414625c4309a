import Foundation

/// Where a job is in its life.
public enum JobState: String, Codable, Sendable, CaseIterable {
    /// Waiting to be claimed (from its not-before time on).
    case queued
    /// Claimed by a worker that holds its lease.
    case running
    case succeeded
    /// The last attempt failed; the job is queued again for a later attempt.
    case failed
    /// No more attempts: out of attempts, an unreadable payload, or cancelled.
    case dead
}

/// A unit of work on the queue.
public struct Job: Codable, Sendable, Equatable {
    public let id: String
    public let kind: String
    /// JSON; its schema is the kind's, at `payloadVersion`.
    public let payload: String
    public let payloadVersion: Int
    public let idempotencyKey: String?
    public let priority: Int
    /// Seconds since 1970; not claimed before.
    public var notBefore: Double
    public var attempts: Int
    public let maxAttempts: Int
    public var state: JobState
    public var leaseOwner: String?
    public var leaseExpiry: Double?
    public let createdAt: Double
    public var updatedAt: Double
    public var lastError: String?
    /// JSON: the job's result (per-instance outcomes for fleet jobs).
    public var result: String?
}

/// What a caller asks to enqueue.
public struct NewJob: Sendable {
    public var kind: String
    public var payload: String
    public var payloadVersion: Int
    /// A second enqueue with the same key returns the existing job.
    public var idempotencyKey: String?
    public var priority: Int
    public var notBefore: Double?
    public var maxAttempts: Int

    public init(kind: String, payload: String, payloadVersion: Int = 1, idempotencyKey: String? = nil, priority: Int = 0,
                notBefore: Double? = nil, maxAttempts: Int = 5) {
        self.kind = kind
        self.payload = payload
        self.payloadVersion = payloadVersion
        self.idempotencyKey = idempotencyKey
        self.priority = priority
        self.notBefore = notBefore
        self.maxAttempts = max(1, maxAttempts)
    }
}

public struct QueueError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        case notFound
        /// The job is not in a state that allows the operation.
        case conflict
        /// The caller no longer holds the job's lease.
        case leaseLost
        /// The store cannot be used: locked, read-only, full, corrupt.
        case storage
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// A durable job queue with leases. Behind a protocol so that a distributed
/// backend (SQS) can replace the embedded one without touching job logic.
public protocol JobQueue: Sendable {
    /// Enqueues, or returns the job that already has the same idempotency
    /// key (`created` false).
    func enqueue(_ job: NewJob, now: Double) async throws(QueueError) -> (job: Job, created: Bool)

    /// Atomically takes the most urgent claimable job: queued or failed and
    /// due, or running with an expired lease (its worker died). Counts an
    /// attempt.
    func claim(owner: String, lease: Double, now: Double) async throws(QueueError) -> Job?

    /// Extends a lease the caller holds.
    func renew(id: String, owner: String, lease: Double, now: Double) async throws(QueueError)

    /// Records success and the result.
    func complete(id: String, owner: String, result: String, now: Double) async throws(QueueError)

    /// Records a failed attempt: queued again at `retryAt` while attempts
    /// remain, else dead. `retryAt` nil makes it dead at once.
    func fail(id: String, owner: String, error: String, result: String?, retryAt: Double?, now: Double) async throws(QueueError)

    /// Gives a job back without counting the attempt (graceful shutdown).
    func release(id: String, owner: String, now: Double) async throws(QueueError)

    func job(id: String) async throws(QueueError) -> Job
    func jobs(state: JobState?, limit: Int) async throws(QueueError) -> [Job]

    /// Queues a failed or dead job again, with fresh attempts.
    func retry(id: String, now: Double) async throws(QueueError) -> Job
    /// Cancels a job that is not running: it becomes dead.
    func cancel(id: String, now: Double) async throws(QueueError) -> Job
}
