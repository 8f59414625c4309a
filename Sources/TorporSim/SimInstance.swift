/// EC2 instance states with their API codes.
public enum SimState: String, Sendable, CaseIterable, Codable {
    case pending, running, stopping, stopped
    case shuttingDown = "shutting-down"
    case terminated

    public var code: Int {
        switch self {
        case .pending: return 0
        case .running: return 16
        case .shuttingDown: return 32
        case .terminated: return 48
        case .stopping: return 64
        case .stopped: return 80
        }
    }
}

/// One simulated instance.
struct SimInstance {
    let id: String
    let index: Int
    let group: Int
    let instanceType: String
    let zone: String
    let privateIP: String
    /// `ip-127-16-0-1.ec2.internal`, made once: rendering it per answer is
    /// measurable on pages of 1000.
    var privateDNSName: String { "ip-" + privateIP.split(separator: ".").joined(separator: "-") + ".ec2.internal" }
    let memoryGiB: Double
    var tags: [(key: String, value: String)]
    let hibernationConfigured: Bool
    /// `spot` for spot instances; nil for on-demand.
    let lifecycle: String?
    let oneTimeSpot: Bool
    let spotRequestID: String?
    let rootDeviceType: String
    let probePort: Int?

    var state: SimState
    var stateReason: (code: String, message: String)?
    var transitionReason = ""
    /// Simulated seconds since 1970.
    var launchTime: Double
    /// Whether the instance's last stop kept memory (its next start resumes).
    var hibernated = false
    var statusOk = false
    var reachable = false
    /// Bumped on every transition; a scheduled event for an older generation
    /// is stale and ignored.
    var generation: UInt64 = 0
    /// Counts transitions, to draw each one's duration independently of the
    /// order requests arrive in.
    var draws: UInt64 = 0
}

/// A transition that happened: the simulator's ground truth.
public struct SimEvent: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        /// The instance state (`running` → `stopping`, ...).
        case state
        /// Both status checks: `initializing` → `ok`, or back to `not-applicable`.
        case status
        /// The probe port: `closed` → `open` and back.
        case reachability
    }

    public let sequence: Int
    /// Simulated seconds since 1970.
    public let time: Double
    public let instanceID: String
    public let kind: Kind
    public let from: String
    public let to: String
    /// The request id of the API call that caused it, or `initial`,
    /// `interruption`, `injected-fault`.
    public let cause: String
}
