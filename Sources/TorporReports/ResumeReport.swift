import Foundation

/// What `torpor report resume` shows, as a value: built from stored
/// measurements and the configured policies, then rendered as a table, JSON
/// or a self-contained HTML page. Durations are seconds from the moment EC2
/// accepted the StartInstances call.
public struct ResumeReport: Codable, Sendable, Equatable {
    /// Seconds since 1970.
    public var generatedAt: Double
    /// Resumes started at or after this time are included (seconds since
    /// 1970); nil when each policy's own window applies.
    public var since: Double?
    public var policies: [PolicyReport]

    public init(generatedAt: Double, since: Double?, policies: [PolicyReport]) {
        self.generatedAt = generatedAt
        self.since = since
        self.policies = policies
    }
}

/// The measured phases of a resume, in the order they happen.
public enum ResumePhase: String, Codable, Sendable, CaseIterable, Comparable {
    /// Start accepted → the instance was first seen `running`.
    case running
    /// Start accepted → both status checks first seen `ok`.
    case statusOk = "status_ok"
    /// Start accepted → the readiness probe (TCP or HTTP) first succeeded.
    case probe

    public var label: String {
        switch self {
        case .running: return "running"
        case .statusOk: return "status checks ok"
        case .probe: return "probe ok"
        }
    }

    public static func < (lhs: ResumePhase, rhs: ResumePhase) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// A policy's objectives on its resume time (the readiness phase), each
/// optional, in seconds.
public struct ObjectiveLimits: Codable, Sendable, Equatable {
    public var p50: Double?
    public var p95: Double?
    public var max: Double?

    public init(p50: Double? = nil, p95: Double? = nil, max: Double? = nil) {
        self.p50 = p50
        self.p95 = p95
        self.max = max
    }

    public var isEmpty: Bool { p50 == nil && p95 == nil && max == nil }
}

/// Counts and percentiles of one set of resumes (a policy, or one instance
/// type within it). Percentiles are of the readiness phase; a timed-out
/// resume counts as slower than every completed one.
public struct ResumeStats: Codable, Sendable, Equatable {
    /// Nil for a policy's summary; the type for a per-type row.
    public var instanceType: String?
    /// Resumes that completed or timed out (in-flight ones are not counted).
    public var count: Int
    public var completed: Int
    public var timeouts: Int
    /// Started and failed to stay up (EC2 put the instance back to stopped).
    public var failed: Int
    public var inFlight: Int
    /// Still marked in flight a minute past their deadline: no tracker
    /// followed them to the end (none ran on this queue since).
    public var unfollowed: Int
    public var hibernationResumes: Int
    public var coldBoots: Int
    /// Nil when there is nothing to take a percentile of, or when the
    /// percentile falls on a timed-out resume (then it is beyond the deadline).
    public var p50: Double?
    public var p95: Double?
    public var max: Double?
    /// True when p50/p95/max fall past the deadline (timeouts).
    public var p50TimedOut: Bool
    public var p95TimedOut: Bool
    public var maxTimedOut: Bool
    /// Nil when the policy has no objectives or nothing was measured.
    public var objectivesMet: Bool?

    public init(instanceType: String? = nil, count: Int = 0, completed: Int = 0, timeouts: Int = 0, failed: Int = 0,
                inFlight: Int = 0, hibernationResumes: Int = 0, coldBoots: Int = 0, p50: Double? = nil, p95: Double? = nil,
                max: Double? = nil, p50TimedOut: Bool = false, p95TimedOut: Bool = false, maxTimedOut: Bool = false,
                objectivesMet: Bool? = nil, unfollowed: Int = 0) {
        self.instanceType = instanceType
        self.count = count
        self.completed = completed
        self.timeouts = timeouts
        self.failed = failed
        self.inFlight = inFlight
        self.unfollowed = unfollowed
        self.hibernationResumes = hibernationResumes
        self.coldBoots = coldBoots
        self.p50 = p50
        self.p95 = p95
        self.max = max
        self.p50TimedOut = p50TimedOut
        self.p95TimedOut = p95TimedOut
        self.maxTimedOut = maxTimedOut
        self.objectivesMet = objectivesMet
    }
}

/// One objective that the policy's resumes do not meet, with the instances
/// that caused it: those whose resume took longer than the limit.
public struct ObjectiveViolation: Codable, Sendable, Equatable {
    /// `p50`, `p95` or `max`.
    public var objective: String
    public var limit: Double
    /// The measured value; nil when it falls on a timed-out resume.
    public var actual: Double?
    public var instanceIDs: [String]

    public init(objective: String, limit: Double, actual: Double?, instanceIDs: [String]) {
        self.objective = objective
        self.limit = limit
        self.actual = actual
        self.instanceIDs = instanceIDs
    }
}

/// One measured resume, as the report lists it.
public struct ResumeRow: Codable, Sendable, Equatable {
    public var instanceID: String
    public var instanceType: String
    public var zone: String
    /// `hibernation` or `cold`.
    public var mode: String
    /// When EC2 accepted the start, seconds since 1970.
    public var startedAt: Double
    /// Seconds after the start for each phase reached.
    public var running: Double?
    public var statusOk: Double?
    public var probe: Double?
    /// The readiness phase's duration: the resume time held to objectives.
    public var resumeSeconds: Double?
    /// `complete`, `timed-out`, `failed` or `tracking`.
    public var outcome: String
    /// What the instance was last seen doing (for timeouts and failures).
    public var lastState: String?

    public init(instanceID: String, instanceType: String, zone: String, mode: String, startedAt: Double,
                running: Double? = nil, statusOk: Double? = nil, probe: Double? = nil, resumeSeconds: Double? = nil,
                outcome: String, lastState: String? = nil) {
        self.instanceID = instanceID
        self.instanceType = instanceType
        self.zone = zone
        self.mode = mode
        self.startedAt = startedAt
        self.running = running
        self.statusOk = statusOk
        self.probe = probe
        self.resumeSeconds = resumeSeconds
        self.outcome = outcome
        self.lastState = lastState
    }
}

/// Every measured duration of one phase, sorted: what the charts draw.
public struct PhaseDistribution: Codable, Sendable, Equatable {
    public var phase: ResumePhase
    public var seconds: [Double]

    public init(phase: ResumePhase, seconds: [Double]) {
        self.phase = phase
        self.seconds = seconds
    }
}

public struct PolicyReport: Codable, Sendable, Equatable {
    public var name: String
    /// How readiness is judged: `running`, `status-ok`, `tcp 443`,
    /// `http http://{ip}:8080/healthz`.
    public var readiness: String
    /// The phase whose time is held to the objectives.
    public var readinessPhase: ResumePhase
    /// The window the statistics cover, in seconds.
    public var window: Double
    /// Resumes that never reach readiness within this many seconds time out.
    public var deadline: Double
    public var objectives: ObjectiveLimits
    public var summary: ResumeStats
    public var byInstanceType: [ResumeStats]
    /// Each measured phase's durations (completed resumes only).
    public var phases: [PhaseDistribution]
    public var violations: [ObjectiveViolation]
    /// The slowest resumes first (timeouts before everything), at most 20.
    public var slowest: [ResumeRow]

    public init(name: String, readiness: String, readinessPhase: ResumePhase, window: Double, deadline: Double,
                objectives: ObjectiveLimits, summary: ResumeStats, byInstanceType: [ResumeStats], phases: [PhaseDistribution],
                violations: [ObjectiveViolation], slowest: [ResumeRow]) {
        self.name = name
        self.readiness = readiness
        self.readinessPhase = readinessPhase
        self.window = window
        self.deadline = deadline
        self.objectives = objectives
        self.summary = summary
        self.byInstanceType = byInstanceType
        self.phases = phases
        self.violations = violations
        self.slowest = slowest
    }
}
