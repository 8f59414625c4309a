/// How one targeted instance ended.
public struct InstanceResult: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable, CaseIterable {
        case hibernated
        /// Stopped; `reason` says why when it was a fallback from hibernation.
        case stopped
        case started
        case noActionNeeded = "no-action-needed"
        case skipped
        case failed
        /// EC2 accepted the call and the caller chose not to wait for the
        /// final state (a start job with `wait: false`).
        case accepted
    }

    public let instanceID: String
    public let name: String?
    public let outcome: Outcome
    public var reason: String?
    public var errorCode: String?
    public var errorMessage: String?
    public let previousState: String
    /// The last state Torpor saw.
    public var lastState: String
}

/// Everything a run did: an outcome for every targeted instance, and how
/// the API was used.
public struct FleetReport: Codable, Sendable {
    public let action: FleetAction
    public let dryRun: Bool
    public var results: [InstanceResult]
    public var calls: Int
    public var throttled: Int
    /// Clock readings (the run's clock): first call, last accepted
    /// StopInstances/StartInstances, every final state confirmed.
    public var firstCallAt: Double?
    public var lastDispatchAt: Double?
    public var settledAt: Double?

    public var counts: [String: Int] {
        var counts = Dictionary(uniqueKeysWithValues: InstanceResult.Outcome.allCases.map { ($0.rawValue, 0) })
        for result in results { counts[result.outcome.rawValue, default: 0] += 1 }
        return counts
    }

    public var failedCount: Int { results.filter { $0.outcome == .failed }.count }
}

/// Live numbers for a progress display.
public struct FleetProgress: Sendable, Equatable {
    public var total: Int
    public var done: Int
    public var failed: Int
    /// Accepted by EC2, final state not yet confirmed.
    public var waiting: Int
    public var calls: Int
    public var throttled: Int
    public var phase: String
}
