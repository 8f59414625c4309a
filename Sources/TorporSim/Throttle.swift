import Foundation
public import TorporYAML
import Yams

/// EC2's throttling: token buckets per action category (request buckets) and
/// per instance (resource buckets for StartInstances and StopInstances).
/// Refill runs on simulated time, so it scales with the simulator's speed.
public struct ThrottleConfig: Sendable, Equatable {
    public struct Bucket: Sendable, Equatable {
        public var capacity: Double
        /// Tokens per simulated second.
        public var refill: Double

        public init(capacity: Double, refill: Double) {
            self.capacity = capacity
            self.refill = refill
        }
    }

    public var buckets: [Category: Bucket]

    public enum Category: String, Sendable, CaseIterable, Hashable {
        case nonMutating
        case describeInstancesUnfiltered
        case mutating
        case startInstances
        case startInstancesResources
        case stopInstancesResources
    }

    /// The sizes and refill rates in the EC2 developer guide.
    public static let aws = ThrottleConfig(buckets: [
        .nonMutating: Bucket(capacity: 100, refill: 20),
        .describeInstancesUnfiltered: Bucket(capacity: 50, refill: 10),
        .mutating: Bucket(capacity: 50, refill: 5),
        .startInstances: Bucket(capacity: 5, refill: 2),
        .startInstancesResources: Bucket(capacity: 1000, refill: 2),
        .stopInstancesResources: Bucket(capacity: 1000, refill: 20),
    ])

    /// No throttling at all.
    public static let off = ThrottleConfig(buckets: [:])

    /// A throttle file: `buckets:` with any of the categories, each
    /// `{ capacity: N, refill: N }`; categories not named keep EC2's sizes.
    public static func parse(_ text: String, file: String) throws(FleetFileError) -> ThrottleConfig {
        let reader = YAMLReader(file: file)
        let root = try reader.load(text)
        let top = try reader.mapping(root, "the throttle file", allowed: ["buckets"])
        guard let bucketsNode = top["buckets"] else { throw reader.fail(root, "the throttle file needs buckets") }
        var config = ThrottleConfig.aws
        let names = Category.allCases.map(\.rawValue)
        for (name, node) in try reader.mapping(bucketsNode, "buckets", allowed: names) {
            let parts = try reader.mapping(node, "buckets.\(name)", allowed: ["capacity", "refill"])
            guard let capacity = parts["capacity"], let refill = parts["refill"] else {
                throw reader.fail(node, "buckets.\(name) needs capacity and refill")
            }
            config.buckets[Category(rawValue: name)!] = Bucket(
                capacity: try reader.double(capacity, "buckets.\(name).capacity", range: 1...10_000_000),
                refill: try reader.double(refill, "buckets.\(name).refill", range: 0...10_000_000))
        }
        return config
    }
}

/// The buckets' levels, refilled lazily when asked.
struct TokenBuckets {
    let config: ThrottleConfig
    private var levels: [ThrottleConfig.Category: Double] = [:]
    private var updated: Double

    init(config: ThrottleConfig, now: Double) {
        self.config = config
        updated = now
        for (category, bucket) in config.buckets { levels[category] = bucket.capacity }
    }

    private mutating func refill(to now: Double) {
        let elapsed = max(0, now - updated)
        updated = max(updated, now)
        guard elapsed > 0 else { return }
        for (category, bucket) in config.buckets {
            levels[category] = min(bucket.capacity, (levels[category] ?? bucket.capacity) + bucket.refill * elapsed)
        }
    }

    /// Takes `cost` tokens from every named bucket, or none at all when any
    /// of them is short (the call is throttled).
    mutating func take(_ costs: [(ThrottleConfig.Category, Double)], now: Double) -> Bool {
        refill(to: now)
        for (category, cost) in costs {
            guard config.buckets[category] != nil else { continue }
            if (levels[category] ?? 0) < cost { return false }
        }
        for (category, cost) in costs where config.buckets[category] != nil {
            levels[category]! -= cost
        }
        return true
    }

    /// Gives back tokens of a call that EC2 refused as a whole: it acted
    /// on no instance, so it spends no instance tokens.
    mutating func refund(_ costs: [(ThrottleConfig.Category, Double)]) {
        for (category, cost) in costs {
            guard let bucket = config.buckets[category],
                  category == .startInstancesResources || category == .stopInstancesResources else { continue }
            levels[category] = min(bucket.capacity, (levels[category] ?? 0) + cost)
        }
    }

    func level(_ category: ThrottleConfig.Category) -> Double? { levels[category] }
}
