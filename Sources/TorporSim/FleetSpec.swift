import Foundation
public import TorporSigV4

/// A fleet for the simulator, as a fleet file describes it.
public struct FleetSpec: Sendable, Equatable {
    /// Seeds every random draw: ids, which instances are spot or configured
    /// for hibernation, every transition's duration, spot price walks.
    public var seed: UInt64 = 1
    public var region: String = "us-east-1"
    /// The keys the simulator accepts when it checks signatures.
    public var credentials: [AWSCredentials] = []
    public var groups: [GroupSpec] = []
    public var spotPrices: [SpotSeriesSpec] = []
    public var faults = FaultSpec()
    /// EC2 refuses to hibernate an instance within a few minutes of its
    /// launch; this is how long.
    public var hibernateReadyAfter: Double = 300

    public init() {}
}

/// A time distribution, given as EC2 users talk about it: the median and the
/// 95th percentile. Durations are drawn from the log-normal with those two.
public struct DurationDistribution: Sendable, Equatable {
    public var median: Double
    public var p95: Double

    public init(median: Double, p95: Double) {
        self.median = median
        self.p95 = max(p95, median)
    }

    /// A duration for a uniform draw `u` in (0, 1).
    public func quantile(_ u: Double) -> Double {
        guard median > 0 else { return 0 }
        let sigma = p95 > median ? (log(p95) - log(median)) / 1.6448536269514722 : 0
        return exp(log(median) + sigma * Self.standardNormalQuantile(u))
    }

    /// Acklam's rational approximation of the inverse normal CDF (relative
    /// error below 1.2e-9): enough for drawing durations.
    static func standardNormalQuantile(_ p: Double) -> Double {
        let p = min(max(p, 1e-12), 1 - 1e-12)
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                 -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425, high = 1 - low
        if p < low {
            let q = (-2 * log(p)).squareRoot()
            return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        if p > high {
            let q = (-2 * log(1 - p)).squareRoot()
            return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        let q = p - 0.5, r = q * q
        return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    }
}

/// How long each transition of a group's instances takes.
public struct Timings: Sendable, Equatable {
    /// running → stopped (a plain stop).
    public var stop = DurationDistribution(median: 30, p95: 60)
    /// running → stopped with hibernation, before the memory term.
    public var hibernate = DurationDistribution(median: 40, p95: 80)
    /// Added to a hibernation per GiB of memory written to the root volume.
    public var hibernatePerGiB: Double = 2
    /// pending → running after a stop without hibernation.
    public var coldBoot = DurationDistribution(median: 45, p95: 90)
    /// pending → running when resuming from hibernation.
    public var resume = DurationDistribution(median: 12, p95: 25)
    /// running → both status checks `ok`.
    public var statusOk = DurationDistribution(median: 60, p95: 150)
    /// running → the probe port accepts connections.
    public var reachable = DurationDistribution(median: 8, p95: 20)

    public init() {}
}

public struct GroupSpec: Sendable, Equatable {
    public enum InitialState: String, Sendable, Equatable, CaseIterable {
        case running, stopped, hibernated
    }

    public var name: String
    public var count: Int
    public var instanceType = "m5.large"
    public var memoryGiB: Double = 8
    public var zones = ["us-east-1a", "us-east-1b"]
    public var initialState = InitialState.running
    public var tags: [(key: String, value: String)] = []
    /// Share of the group configured for hibernation, 0 to 1.
    public var hibernationConfigured: Double = 1
    /// Share of the group that is spot with a persistent request.
    public var spot: Double = 0
    /// Share of the group that is spot with a one-time request (cannot be
    /// stopped).
    public var oneTimeSpot: Double = 0
    /// Instances belong to this Auto Scaling group (tag aws:autoscaling:groupName).
    public var autoScalingGroup: String?
    /// `ebs` or `instance-store`.
    public var rootDeviceType = "ebs"
    public var timings = Timings()
    /// A TCP port that opens on the instance's private address when it is
    /// reachable, and closes when it stops.
    public var probePort: Int?

    public init(name: String, count: Int) {
        self.name = name
        self.count = count
    }

    public static func == (lhs: GroupSpec, rhs: GroupSpec) -> Bool {
        lhs.name == rhs.name && lhs.count == rhs.count && lhs.instanceType == rhs.instanceType
            && lhs.memoryGiB == rhs.memoryGiB && lhs.zones == rhs.zones && lhs.initialState == rhs.initialState
            && lhs.tags.elementsEqual(rhs.tags, by: { $0 == $1 }) && lhs.hibernationConfigured == rhs.hibernationConfigured
            && lhs.spot == rhs.spot && lhs.oneTimeSpot == rhs.oneTimeSpot && lhs.autoScalingGroup == rhs.autoScalingGroup
            && lhs.rootDeviceType == rhs.rootDeviceType && lhs.timings == rhs.timings && lhs.probePort == rhs.probePort
    }
}

/// The spot price of one (instance type, zone, product) over time.
public struct SpotSeriesSpec: Sendable, Equatable {
    public struct Step: Sendable, Equatable {
        /// Seconds after the simulation starts.
        public var at: Double
        public var price: Double
    }

    public struct RandomWalk: Sendable, Equatable {
        public var start: Double
        /// The standard deviation of each step, relative to the price.
        public var volatility: Double
        /// Seconds between price changes.
        public var every: Double
        public var floor: Double
    }

    public var instanceType: String
    public var zone: String
    public var product = "Linux/UNIX"
    public var steps: [Step] = []
    public var randomWalk: RandomWalk?
}

/// Faults the simulator injects, set in the fleet file or at run time.
public struct FaultSpec: Sendable, Equatable {
    /// Share of EC2 calls answered 500 InternalError or 503 Unavailable.
    public var errorRate: Double = 0
    /// Share of EC2 calls whose connection is closed with no answer.
    public var resetRate: Double = 0
    /// Share of EC2 calls carried out whose answer is lost: the connection
    /// closes after the fleet changed, as when a reply dies in transit.
    public var lostReplyRate: Double = 0
    /// Added to every EC2 answer, in real milliseconds.
    public var latencyMilliseconds: Double = 0
    /// StartInstances of these (type, zone) fails with InsufficientInstanceCapacity.
    public var noCapacity: [CapacityFault] = []
    /// Share of accepted starts whose instance goes pending → stopped
    /// (Client.InternalError), as a missing KMS grant makes it do.
    public var startFailureRate: Double = 0

    public struct CapacityFault: Sendable, Equatable, Hashable {
        public var instanceType: String
        public var zone: String
    }

    public init() {}
}
