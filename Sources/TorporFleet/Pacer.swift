/// EC2's documented throttling buckets, mirrored on the client so that calls
/// are sent when EC2 will accept them instead of being refused.
public struct EC2Limits: Codable, Sendable, Equatable {
    public struct Bucket: Codable, Sendable, Equatable {
        public var capacity: Double
        /// Tokens per second.
        public var refill: Double

        public init(capacity: Double, refill: Double) {
            self.capacity = capacity
            self.refill = refill
        }
    }

    /// StopInstances and CreateTags requests.
    public var mutating = Bucket(capacity: 50, refill: 5)
    /// Describe* requests with a filter, ids or MaxResults.
    public var nonMutating = Bucket(capacity: 100, refill: 20)
    public var startRequests = Bucket(capacity: 5, refill: 2)
    public var startResources = Bucket(capacity: 1000, refill: 2)
    public var stopResources = Bucket(capacity: 1000, refill: 20)

    public init() {}

    public static let aws = EC2Limits()
}

/// What a call costs.
public enum CallKind: Hashable, Sendable {
    case stop, start, describe, tags

    func costs(instances: Int) -> [(PacerBucket, Double)] {
        switch self {
        case .stop: return [(.mutating, 1), (.stopResources, Double(instances))]
        case .start: return [(.startRequests, 1), (.startResources, Double(instances))]
        case .describe: return [(.nonMutating, 1)]
        case .tags: return [(.mutating, 1)]
        }
    }
}

enum PacerBucket: Hashable, Sendable, CaseIterable {
    case mutating, nonMutating, startRequests, startResources, stopResources
}

/// A client-side rate limiter over EC2's buckets.
///
/// Tokens are reserved, not just checked: a caller takes what it needs, even
/// into debt, and sleeps until the debt is repaid by the refill. Callers are
/// thus served in order and never overtake each other. When EC2 throttles
/// anyway (the account is shared, or the model is off), the bucket is
/// emptied and its refill rate cut, then recovered a little with every
/// accepted call, as the AWS SDKs' adaptive retry mode does.
public actor RatePacer {
    private struct Level {
        var tokens: Double
        var updated: Double
    }

    private nonisolated let limits: EC2Limits
    private let clock: any FleetClock
    private var levels: [PacerBucket: Level] = [:]
    /// Multiplies every refill rate; 1 is EC2's documented rate.
    private(set) var rateFactor = 1.0
    /// How long a call may take to reach EC2 and be counted there: a slowly
    /// decaying maximum of recent call times. EC2 takes its tokens when it
    /// handles a call, not when we send it, so a call that must wait for
    /// tokens waits this much longer; an average would fall short after one
    /// slow call, and the next call would be throttled.
    private(set) var latency = 0.0

    static let minimumFactor = 0.05
    static let decrease = 0.7
    static let recoveryStep = 0.1

    public init(limits: EC2Limits, clock: any FleetClock) {
        self.limits = limits
        self.clock = clock
        let now = clock.now()
        var initial: [PacerBucket: Level] = [:]
        for bucket in PacerBucket.allCases {
            initial[bucket] = Level(tokens: Self.spec(bucket, in: limits).capacity, updated: now)
        }
        levels = initial
    }

    private static func spec(_ bucket: PacerBucket, in limits: EC2Limits) -> EC2Limits.Bucket {
        switch bucket {
        case .mutating: return limits.mutating
        case .nonMutating: return limits.nonMutating
        case .startRequests: return limits.startRequests
        case .startResources: return limits.startResources
        case .stopResources: return limits.stopResources
        }
    }

    private nonisolated func spec(_ bucket: PacerBucket) -> EC2Limits.Bucket { Self.spec(bucket, in: limits) }

    private func refill(_ bucket: PacerBucket, now: Double) {
        let spec = spec(bucket)
        var level = levels[bucket]!
        let elapsed = max(0, now - level.updated)
        level.tokens = min(spec.capacity, level.tokens + elapsed * spec.refill * rateFactor)
        level.updated = now
        levels[bucket] = level
    }

    /// Reserves the call's tokens and waits until they are there.
    public func acquire(_ kind: CallKind, instances: Int = 0) async throws {
        let now = clock.now()
        var wait = 0.0
        var indebted: [PacerBucket] = []
        for (bucket, cost) in kind.costs(instances: instances) {
            refill(bucket, now: now)
            levels[bucket]!.tokens -= cost
            let debt = -levels[bucket]!.tokens
            if debt > 0 {
                indebted.append(bucket)
                wait = max(wait, debt / (spec(bucket).refill * rateFactor) + latency)
            }
        }
        guard wait > 0 else { return }
        try await clock.sleep(seconds: wait)
        // The call goes out now: count the buckets it emptied as empty from
        // this moment, or the next reservation would inherit the refill of
        // the time this one spent waiting and undo its latency margin.
        let sent = clock.now()
        for bucket in indebted {
            refill(bucket, now: sent)
            levels[bucket]!.tokens = min(levels[bucket]!.tokens, 0)
        }
    }

    /// Records how long a call took (in the clock's seconds).
    public func observe(callDuration: Double) {
        latency = max(latency * 0.9, callDuration)
    }

    /// EC2 refused a call of this kind with RequestLimitExceeded.
    public func throttled(_ kind: CallKind) {
        let now = clock.now()
        rateFactor = max(Self.minimumFactor, rateFactor * Self.decrease)
        for (bucket, _) in kind.costs(instances: 1) {
            refill(bucket, now: now)
            levels[bucket]!.tokens = min(levels[bucket]!.tokens, 0)
        }
    }

    /// A call of this kind was accepted.
    public func accepted() {
        rateFactor = min(1, rateFactor + Self.recoveryStep)
    }

    /// Returns tokens reserved for instances that the call did not act on
    /// (EC2 refused the whole call before acting).
    public func refund(_ kind: CallKind, instances: Int) {
        guard instances > 0 else { return }
        for (bucket, cost) in kind.costs(instances: instances) where bucket == .stopResources || bucket == .startResources {
            levels[bucket]!.tokens = min(spec(bucket).capacity, levels[bucket]!.tokens + cost)
        }
    }
}
