import CoreMetrics
public import TorporReports

/// What resume tracking reports to Prometheus, through swift-metrics:
///
/// - `torpor_resume_seconds{policy,phase}`: histogram of the time from the
///   accepted start to each phase (`running`, `status_ok`, `probe`)
/// - `torpor_resume_objective_violations_total{policy,objective}`: a `max`
///   violation per resume slower than the limit (or timed out); a `p50` or
///   `p95` violation each time the window's percentile goes over its limit
/// - `torpor_resume_timeouts_total{policy}`
/// - `torpor_resumes_in_flight{policy}`: resumes being followed
public struct ResumeMetrics: Sendable {
    public static let histogramLabel = "torpor_resume_seconds"
    /// Bucket bounds in seconds: fine where hibernation resumes land (tens
    /// of seconds), coarse towards cold boots and deadlines.
    public static let buckets: [Double] = [1, 2, 5, 10, 15, 20, 25, 30, 40, 50, 60, 90, 120, 180, 300, 600, 1200]

    public init() {}

    public func phase(policy: String, _ phase: ResumePhase, seconds: Double) {
        Timer(label: Self.histogramLabel, dimensions: [("policy", policy), ("phase", phase.rawValue)]).recordSeconds(seconds)
    }

    public func violation(policy: String, objective: String) {
        Counter(label: "torpor_resume_objective_violations_total", dimensions: [("policy", policy), ("objective", objective)]).increment()
    }

    public func timeout(policy: String) {
        Counter(label: "torpor_resume_timeouts_total", dimensions: [("policy", policy)]).increment()
    }

    public func inFlight(policy: String, count: Int) {
        Gauge(label: "torpor_resumes_in_flight", dimensions: [("policy", policy)]).record(count)
    }
}
