import CoreMetrics
public import TorporAWS

/// What the worker reports to Prometheus, through swift-metrics.
///
/// - `torpor_jobs_finished_total{kind,state}` and `torpor_job_duration_seconds{kind}`
/// - `torpor_jobs{kind,state}`: the queue's jobs, refreshed periodically
/// - `torpor_ec2_calls_total{action,outcome}` and `torpor_ec2_throttles_total{action}`
/// - `torpor_instances_total{action,outcome}`: instances acted on, by outcome
public struct WorkerMetrics: Sendable {
    public init() {}

    public func jobFinished(kind: String, state: String, seconds: Double) {
        Counter(label: "torpor_jobs_finished_total", dimensions: [("kind", kind), ("state", state)]).increment()
        Timer(label: "torpor_job_duration_seconds", dimensions: [("kind", kind)]).recordSeconds(seconds)
    }

    public func jobsInQueue(kind: String, state: String, count: Int) {
        Gauge(label: "torpor_jobs", dimensions: [("kind", kind), ("state", state)]).record(count)
    }

    /// For `AWSQueryClient`'s observer: one event per call attempt.
    public func ec2Call(_ event: AWSCallEvent) {
        let outcome: String
        switch event.outcome {
        case .success: outcome = "success"
        case .serviceError(let code): outcome = code
        case .transportError(let kind): outcome = "transport-\(kind)"
        case .unreadable: outcome = "unreadable"
        }
        Counter(label: "torpor_ec2_calls_total", dimensions: [("action", event.action), ("outcome", outcome)]).increment()
        if event.throttled {
            Counter(label: "torpor_ec2_throttles_total", dimensions: [("action", event.action)]).increment()
        }
    }

    public func instances(action: String, outcome: String, count: Int) {
        guard count > 0 else { return }
        Counter(label: "torpor_instances_total", dimensions: [("action", action), ("outcome", outcome)]).increment(by: count)
    }
}
