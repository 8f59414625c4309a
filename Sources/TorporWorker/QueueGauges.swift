public import Logging
public import ServiceLifecycle
public import TorporQueue

/// Refreshes the `torpor_jobs{kind,state}` gauges from the queue every few
/// seconds, so Prometheus sees the backlog even while no job finishes.
public struct QueueGauges: Service {
    public let queue: any JobQueue
    public let metrics: WorkerMetrics
    public let logger: Logger
    public let interval: Duration

    public init(queue: any JobQueue, metrics: WorkerMetrics, logger: Logger, interval: Duration = .seconds(5)) {
        self.queue = queue
        self.metrics = metrics
        self.logger = logger
        self.interval = interval
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if let jobs = try? await queue.jobs(state: nil, limit: 100_000) {
                var counts: [String: [String: Int]] = [:]
                for job in jobs { counts[job.kind, default: [:]][job.state.rawValue, default: 0] += 1 }
                for (kind, states) in counts {
                    for state in JobState.allCases { metrics.jobsInQueue(kind: kind, state: state.rawValue, count: states[state.rawValue] ?? 0) }
                }
            }
            // Shutdown must not wait out the interval.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
        }
    }
}
