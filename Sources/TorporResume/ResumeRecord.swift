import Foundation
public import TorporPolicies
public import TorporReports

/// Whether a start resumed a hibernated instance or booted it cold, read off
/// the state reason of the stop before it.
public enum ResumeMode: String, Sendable, Codable, Equatable {
    case hibernation
    case cold

    /// `Client.UserInitiatedHibernate` (and a spot interruption that
    /// hibernated) leave memory on the root volume; anything else boots cold.
    public init(stateReasonCode code: String?) {
        self = code == "Client.UserInitiatedHibernate" || code == "Server.SpotInstanceHibernate" ? .hibernation : .cold
    }
}

/// Where a resume stands.
public enum ResumeState: String, Sendable, Codable, Equatable {
    /// Phases still to be seen; a tracker follows it.
    case tracking
    /// Every phase was seen (or the readiness phase, and the rest timed out).
    case complete
    /// The readiness phase was not reached by the deadline.
    case timedOut = "timed-out"
    /// The instance did not stay up (EC2 put it back to stopped, or it was
    /// interrupted) before it was ready.
    case failed
}

/// When a phase was reached: the estimate and its half-width. The tracker
/// knows the phase was not reached at one look and was at the next; the
/// estimate is the middle of the two, `error` half the gap.
public struct PhaseTime: Sendable, Codable, Equatable {
    /// Seconds on the tracker's clock (seconds since 1970 against EC2).
    public var at: Double
    public var error: Double

    public init(at: Double, error: Double) {
        self.at = at
        self.error = error
    }
}

/// The readiness probe a resume is held to, as stored with it (a policy
/// may change while a resume is in flight; the resume keeps its own).
public enum ProbeSpec: Sendable, Equatable {
    case tcp(port: Int)
    case http(url: String, status: Int)

    /// The readiness this probe stands for.
    public var readiness: Readiness {
        switch self {
        case .tcp(let port): return .tcp(port: port)
        case .http(let url, let status): return .http(url: url, status: status)
        }
    }

    public init?(_ readiness: Readiness) {
        switch readiness {
        case .tcp(let port): self = .tcp(port: port)
        case .http(let url, let status): self = .http(url: url, status: status)
        case .running, .statusOK: return nil
        }
    }
}

/// One resume, measured phase by phase.
public struct ResumeRecord: Sendable, Equatable {
    /// The store's row id (nil until stored).
    public var id: Int64?
    public var instanceID: String
    public var policy: String
    /// The policy's readiness when the resume began (`tcp 443`, ...).
    public var readiness: String
    public var readinessPhase: ResumePhase
    public var probe: ProbeSpec?
    public var instanceType: String
    public var zone: String
    public var privateIP: String?
    public var mode: ResumeMode
    /// The job that started it, for starts through the queue.
    public var jobID: String?
    /// When EC2 accepted the StartInstances call (the middle of the call).
    public var accepted: PhaseTime
    public var running: PhaseTime?
    public var statusOK: PhaseTime?
    public var probeOK: PhaseTime?
    public var deadline: Double
    public var state: ResumeState
    /// What the instance was last seen doing: `pending`, `running, status
    /// initializing`, `running, probe refused`...
    public var lastState: String?
    /// Why it failed, for failed resumes.
    public var detail: String?
    /// The last look at which every phase not yet reached was seen not
    /// reached: where a tracker that picks the resume up starts from.
    public var checkedAt: Double

    public init(instanceID: String, policy: ResumePolicy, instanceType: String, zone: String, privateIP: String?,
                mode: ResumeMode, jobID: String?, accepted: PhaseTime, checkedAt: Double) {
        self.instanceID = instanceID
        self.policy = policy.name
        readiness = policy.readiness.description
        readinessPhase = Self.phase(of: policy.readiness)
        probe = ProbeSpec(policy.readiness)
        self.instanceType = instanceType
        self.zone = zone
        self.privateIP = privateIP
        self.mode = mode
        self.jobID = jobID
        self.accepted = accepted
        deadline = accepted.at + policy.deadline
        state = .tracking
        self.checkedAt = checkedAt
    }

    /// Every field, as the store reads them back.
    public init(id: Int64?, instanceID: String, policy: String, readiness: String, readinessPhase: ResumePhase, probe: ProbeSpec?,
                instanceType: String, zone: String, privateIP: String?, mode: ResumeMode, jobID: String?, accepted: PhaseTime,
                running: PhaseTime?, statusOK: PhaseTime?, probeOK: PhaseTime?, deadline: Double, state: ResumeState,
                lastState: String?, detail: String?, checkedAt: Double) {
        self.id = id
        self.instanceID = instanceID
        self.policy = policy
        self.readiness = readiness
        self.readinessPhase = readinessPhase
        self.probe = probe
        self.instanceType = instanceType
        self.zone = zone
        self.privateIP = privateIP
        self.mode = mode
        self.jobID = jobID
        self.accepted = accepted
        self.running = running
        self.statusOK = statusOK
        self.probeOK = probeOK
        self.deadline = deadline
        self.state = state
        self.lastState = lastState
        self.detail = detail
        self.checkedAt = checkedAt
    }

    public static func phase(of readiness: Readiness) -> ResumePhase {
        switch readiness {
        case .running: return .running
        case .statusOK: return .statusOk
        case .tcp, .http: return .probe
        }
    }

    public func time(_ phase: ResumePhase) -> PhaseTime? {
        switch phase {
        case .running: return running
        case .statusOk: return statusOK
        case .probe: return probeOK
        }
    }

    public mutating func set(_ phase: ResumePhase, _ time: PhaseTime) {
        switch phase {
        case .running: running = time
        case .statusOk: statusOK = time
        case .probe: probeOK = time
        }
    }

    /// The phases this resume waits for.
    public var phases: [ResumePhase] { probe == nil ? [.running, .statusOk] : [.running, .statusOk, .probe] }

    /// Seconds from the accepted start to `phase`.
    public func seconds(to phase: ResumePhase) -> Double? {
        time(phase).map { max(0, $0.at - accepted.at) }
    }

    /// The resume time held to objectives: seconds to the readiness phase.
    public var resumeSeconds: Double? { seconds(to: readinessPhase) }

    public var isReady: Bool { time(readinessPhase) != nil }
    /// When the policy's readiness was reached, if it was.
    public var readyTime: PhaseTime? { time(readinessPhase) }
}
