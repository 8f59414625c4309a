import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization
public import TorporQueue

/// Takes jobs off the queue and carries them out, N at a time.
///
/// A job's lease is renewed while it runs; if the lease is lost (another
/// worker took the job after this one stalled), the work is cancelled. On
/// graceful shutdown (SIGTERM, SIGINT) the consumer stops claiming, lets
/// running jobs finish for a grace period, then cancels them and releases
/// their leases without counting the attempt, so the next worker start
/// picks them up at once.
public struct QueueConsumer: Service {
    public struct Settings: Sendable {
        public var concurrency = 2
        /// Seconds a claim holds a job; renewed every third of it.
        public var lease: Double = 60
        /// How long running jobs may go on after a shutdown request.
        public var gracePeriod: Double = 30
        /// Seconds between claims when the queue is empty.
        public var pollInterval: Double = 1
        /// Backoff between attempts: base × 2^(attempt−1), capped.
        public var retryBase: Double = 30
        public var retryCap: Double = 900

        public init() {}
    }

    public let queue: any JobQueue
    public let runner: JobRunner
    public let owner: String
    public let settings: Settings
    public let metrics: WorkerMetrics
    public let logger: Logger
    private let now: @Sendable () -> Double

    public init(queue: any JobQueue, runner: JobRunner, owner: String, settings: Settings, metrics: WorkerMetrics, logger: Logger,
                now: @escaping @Sendable () -> Double = QueueConsumer.wallClock) {
        self.queue = queue
        self.runner = runner
        self.owner = owner
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
        self.now = now
    }

    public static let wallClock: @Sendable () -> Double = { Date().timeIntervalSince1970 }

    public func run() async throws {
        let stopping = StopFlag()
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for slot in 0..<max(1, settings.concurrency) {
                    group.addTask { await self.slot(slot, stopping: stopping) }
                }
            }
        } onGracefulShutdown: {
            stopping.set()
        }
        logger.info("worker stopped", metadata: ["owner": "\(owner)"])
    }

    private func slot(_ number: Int, stopping: StopFlag) async {
        while !stopping.isSet && !Task.isCancelled {
            let job: Job?
            do {
                job = try await queue.claim(owner: owner, lease: settings.lease, now: now())
            } catch {
                logger.error("cannot claim a job", metadata: ["error": "\(error)"])
                await pause(settings.pollInterval * 5, stopping: stopping)
                continue
            }
            guard let job else {
                await pause(settings.pollInterval, stopping: stopping)
                continue
            }
            await carryOut(job, stopping: stopping)
        }
    }

    /// Sleeps, but wakes early on shutdown.
    private func pause(_ seconds: Double, stopping: StopFlag) async {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < deadline && !stopping.isSet && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    enum Ending: Sendable {
        case finished(Result<String, any Error>)
        case leaseLost
        case shutdown
    }

    private func carryOut(_ job: Job, stopping: StopFlag) async {
        var jobLogger = logger
        jobLogger[metadataKey: "job_id"] = "\(job.id)"
        jobLogger[metadataKey: "kind"] = "\(job.kind)"
        let log = jobLogger
        log.info("job started", metadata: ["attempt": "\(job.attempts)"])
        let started = ContinuousClock.now
        let runner = self.runner

        let ending: Ending = await withTaskGroup(of: Ending?.self) { group in
            group.addTask {
                do {
                    return .finished(.success(try await runner.run(kind: job.kind, payload: job.payload, payloadVersion: job.payloadVersion, jobID: job.id)))
                } catch {
                    return .finished(.failure(error))
                }
            }
            group.addTask {
                // Renews the lease a few times per lease period.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(Int64(settings.lease / 3 * 1000)))
                    if Task.isCancelled { return nil }
                    do {
                        try await queue.renew(id: job.id, owner: owner, lease: settings.lease, now: now())
                    } catch let error as QueueError where error.kind == .leaseLost {
                        return .leaseLost
                    } catch {
                        log.warning("cannot renew the lease", metadata: ["error": "\(error)"])
                    }
                }
                return nil
            }
            group.addTask {
                // On shutdown, the job has the grace period to finish.
                while !stopping.isSet && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(50)) }
                if Task.isCancelled { return nil }
                try? await Task.sleep(for: .milliseconds(Int64(settings.gracePeriod * 1000)))
                return Task.isCancelled ? nil : .shutdown
            }
            var first: Ending = .shutdown
            for await ending in group {
                if let ending {
                    first = ending
                    break
                }
            }
            group.cancelAll()
            return first
        }

        let seconds = Double((ContinuousClock.now - started).components.seconds)
            + Double((ContinuousClock.now - started).components.attoseconds) / 1e18
        do {
            switch ending {
            case .finished(.success(let result)):
                try await queue.complete(id: job.id, owner: owner, result: result, now: now())
                metrics.jobFinished(kind: job.kind, state: "succeeded", seconds: seconds)
                recordInstances(result)
                log.info("job succeeded", metadata: ["seconds": "\(Int(seconds))"])
            case .finished(.failure(let error)):
                let (jobError, result) = Self.jobError(error)
                let retryAt = jobError.retryable ? now() + min(settings.retryCap, settings.retryBase * pow(2, Double(max(0, job.attempts - 1)))) : nil
                try await queue.fail(id: job.id, owner: owner, error: jobError.message, result: result, retryAt: retryAt, now: now())
                if let result { recordInstances(result) }
                let state = retryAt == nil || job.attempts >= job.maxAttempts ? "dead" : "failed"
                metrics.jobFinished(kind: job.kind, state: state, seconds: seconds)
                log.warning("job \(state)", metadata: ["error": "\(jobError.message)", "attempt": "\(job.attempts)"])
            case .leaseLost:
                log.warning("lease lost: another worker has the job; this attempt is abandoned")
            case .shutdown:
                try await queue.release(id: job.id, owner: owner, now: now())
                log.info("job released for the next worker start (shutdown)")
            }
        } catch {
            log.error("cannot record the job's end", metadata: ["error": "\(error)"])
        }
    }

    /// Counts the instances an attempt acted on, by outcome, from its result.
    private func recordInstances(_ result: String) {
        struct Counts: Decodable { let action: String; let counts: [String: Int] }
        guard let decoded = try? JSONDecoder().decode(Counts.self, from: Data(result.utf8)) else { return }
        for (outcome, count) in decoded.counts { metrics.instances(action: decoded.action, outcome: outcome, count: count) }
    }

    static func jobError(_ error: any Error) -> (JobError, String?) {
        switch error {
        case let failure as JobFailure: return (failure.error, failure.result)
        case let error as JobError: return (error, nil)
        case is CancellationError: return (.transient("interrupted"), nil)
        default: return (.transient("\(error)"), nil)
        }
    }
}

/// Set once on shutdown, read by every slot.
final class StopFlag: Sendable {
    private let flag = Mutex(false)
    var isSet: Bool { flag.withLock { $0 } }
    func set() { flag.withLock { $0 = true } }
}
