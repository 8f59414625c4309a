import Synchronization

/// The AWS SDKs' "standard" retry mode, as a value.
///
/// Decides whether a failed attempt is retried and how long to wait first:
/// exponential backoff with full jitter, capped at 20 s, and a retry quota
/// shared by every request of a client so that a failing endpoint is not
/// hammered (500 tokens; a retry costs 5, a retry after a timeout or broken
/// connection 10; a success refunds what its retry cost, or 1).
public struct RetryPolicy: Sendable {
    public static let throttlingCodes: Set<String> = [
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
        "TooManyRequestsException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
        "RequestLimitExceeded", "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled",
        "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
    ]
    public static let transientCodes: Set<String> = [
        "RequestTimeout", "RequestTimeoutException", "InternalError", "InternalFailure",
        "ServiceUnavailable", "Unavailable",
    ]
    public static let transientStatuses: Set<Int> = [500, 502, 503, 504]
    /// Server errors that retrying at once cannot fix: EC2 has no capacity
    /// for the request. The caller decides when to ask again.
    public static let capacityCodes: Set<String> = [
        "InsufficientInstanceCapacity", "InsufficientHostCapacity", "InsufficientReservedInstanceCapacity",
        "InsufficientCapacity",
    ]

    public var maxAttempts: Int
    /// Off for callers that pace themselves and must see every throttle
    /// (the fleet engine), so that calls after a throttle wait for their
    /// rate limiter rather than a blind backoff.
    public var retryThrottling: Bool
    public var maxBackoff: Duration
    public var baseDelay: Duration
    public let quota: RetryQuota
    /// A number in [0, 1), injected so tests can pin the jitter.
    public let random: @Sendable () -> Double

    public init(maxAttempts: Int = 3, retryThrottling: Bool = true, maxBackoff: Duration = .seconds(20), baseDelay: Duration = .seconds(1),
                quota: RetryQuota = RetryQuota(), random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.maxAttempts = max(1, maxAttempts)
        self.retryThrottling = retryThrottling
        self.maxBackoff = maxBackoff
        self.baseDelay = baseDelay
        self.quota = quota
        self.random = random
    }

    /// What went wrong with one attempt.
    public enum Failure: Sendable {
        case service(AWSServiceError)
        case transport(TransportError)
        /// A non-2xx answer whose body could not be read as an AWS error.
        case status(Int)
    }

    public enum Decision: Sendable, Equatable {
        case retry(after: Duration, cost: Int)
        case fail(reason: String)
    }

    public enum FailureClass: Sendable, Equatable {
        case throttling, transient, timeoutOrNetwork, notRetryable
    }

    public static func classify(_ failure: Failure) -> FailureClass {
        switch failure {
        case .service(let error):
            if throttlingCodes.contains(error.code) { return .throttling }
            if capacityCodes.contains(error.code) { return .notRetryable }
            if transientCodes.contains(error.code) || transientStatuses.contains(error.httpStatus) { return .transient }
            return .notRetryable
        case .transport(let error):
            switch error.kind {
            case .connectionFailed, .connectionReset, .timeout: return .timeoutOrNetwork
            case .tls, .responseTooLarge, .other: return .notRetryable
            }
        case .status(let status):
            if status == 429 { return .throttling }
            return transientStatuses.contains(status) ? .transient : .notRetryable
        }
    }

    /// - Parameters:
    ///   - attempt: the attempt that just failed, from 1.
    ///   - idempotent: whether repeating the request is harmless.
    public func decide(after failure: Failure, attempt: Int, idempotent: Bool) -> Decision {
        let kind = Self.classify(failure)
        if kind == .notRetryable { return .fail(reason: "not retryable") }
        if kind == .throttling && !retryThrottling { return .fail(reason: "throttling is left to the caller") }
        if case .transport(let error) = failure, error.mayHaveBeenSent, !idempotent {
            return .fail(reason: "the request may have been carried out and is not idempotent")
        }
        if attempt >= maxAttempts { return .fail(reason: "gave up after \(attempt) attempts") }
        let cost = kind == .timeoutOrNetwork ? RetryQuota.timeoutCost : RetryQuota.retryCost
        guard quota.acquire(cost) else { return .fail(reason: "retry quota exhausted") }
        return .retry(after: backoff(attempt: attempt), cost: cost)
    }

    /// Full jitter: a random share of min(base * 2^(attempt-1), cap).
    public func backoff(attempt: Int) -> Duration {
        let exponent = min(attempt - 1, 30)
        let ceiling = min(baseDelay * (1 << exponent), maxBackoff)
        return ceiling * random()
    }

    /// Records a success: refunds the last retry's cost, or 1 token.
    public func recordSuccess(lastRetryCost: Int?) {
        quota.release(lastRetryCost ?? RetryQuota.successRefund)
    }
}

/// The shared token bucket of standard retry mode.
public final class RetryQuota: Sendable {
    public static let initialTokens = 500
    public static let retryCost = 5
    public static let timeoutCost = 10
    public static let successRefund = 1

    private let tokens: Mutex<Int>
    private let capacity: Int

    public init(tokens: Int = RetryQuota.initialTokens) {
        self.tokens = Mutex(tokens)
        capacity = tokens
    }

    public var available: Int { tokens.withLock { $0 } }

    func acquire(_ cost: Int) -> Bool {
        tokens.withLock { tokens in
            guard tokens >= cost else { return false }
            tokens -= cost
            return true
        }
    }

    func release(_ amount: Int) {
        tokens.withLock { $0 = min(capacity, $0 + amount) }
    }
}
