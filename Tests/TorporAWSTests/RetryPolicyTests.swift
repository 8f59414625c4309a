import Testing
@testable import TorporAWS

@Suite("RetryPolicy")
struct RetryPolicyTests {
    static func service(_ code: String, _ status: Int) -> RetryPolicy.Failure {
        .service(AWSServiceError(code: code, message: "m", requestID: nil, httpStatus: status))
    }

    static func transport(_ kind: TransportError.Kind, sent: Bool) -> RetryPolicy.Failure {
        .transport(TransportError(kind: kind, message: "m", mayHaveBeenSent: sent, url: "https://h/"))
    }

    static func retryCost(_ decision: RetryPolicy.Decision) -> Int? {
        if case .retry(_, let cost) = decision { return cost }
        return nil
    }

    static func failReason(_ decision: RetryPolicy.Decision) -> String? {
        if case .fail(let reason) = decision { return reason }
        return nil
    }

    // MARK: Backoff

    @Test("full jitter: a random share of base * 2^(attempt-1), capped at 20 s", arguments: [
        (1, 0.5, 0.5), (2, 0.5, 1.0), (3, 0.5, 2.0), (5, 0.5, 8.0), (6, 0.5, 10.0), (40, 0.5, 10.0), (1_000, 0.5, 10.0),
        (1, 0.999, 0.999), (4, 0.999, 7.992), (6, 0.999, 19.98), (64, 0.999, 19.98), (Int.max, 0.999, 19.98),
        (1, 0.0, 0.0), (10, 0.0, 0.0),
    ])
    func backoff(attempt: Int, random: Double, expected: Double) {
        let policy = RetryPolicy(random: { random })
        let value = seconds(policy.backoff(attempt: attempt))
        #expect(abs(value - expected) < 1e-9, "attempt \(attempt), random \(random): \(value)")
        #expect(value < 20)
    }

    @Test("backoff honours a custom base and cap")
    func customBackoff() {
        let policy = RetryPolicy(maxBackoff: .seconds(3), baseDelay: .milliseconds(100), random: { 0.5 })
        #expect(abs(seconds(policy.backoff(attempt: 1)) - 0.05) < 1e-9)
        #expect(abs(seconds(policy.backoff(attempt: 3)) - 0.2) < 1e-9)
        #expect(abs(seconds(policy.backoff(attempt: 10)) - 1.5) < 1e-9)
    }

    @Test("a retry's delay is the backoff of the failed attempt")
    func retryDelay() {
        let policy = RetryPolicy(maxAttempts: 5, random: { 0.5 })
        #expect(policy.decide(after: Self.service("Throttling", 400), attempt: 1, idempotent: true) == .retry(after: .milliseconds(500), cost: 5))
        #expect(policy.decide(after: Self.service("Throttling", 400), attempt: 3, idempotent: true) == .retry(after: .seconds(2), cost: 5))
    }

    // MARK: Classification

    @Test("throttling codes are retried", arguments: Array(RetryPolicy.throttlingCodes).sorted())
    func throttlingRetried(code: String) {
        #expect(RetryPolicy.classify(Self.service(code, 400)) == .throttling)
        let policy = RetryPolicy(random: { 0.5 })
        #expect(Self.retryCost(policy.decide(after: Self.service(code, 400), attempt: 1, idempotent: true)) == 5)
    }

    @Test("client errors are not retried", arguments: [
        ("InvalidParameterValue", 400), ("InvalidInstanceID.NotFound", 400), ("UnauthorizedOperation", 403),
        ("AuthFailure", 401), ("IncorrectInstanceState", 400), ("DryRunOperation", 412), ("MissingParameter", 400),
        ("InvalidInstanceID.Malformed", 404),
    ])
    func clientErrorsNotRetried(code: String, status: Int) {
        #expect(RetryPolicy.classify(Self.service(code, status)) == .notRetryable)
        let quota = RetryQuota()
        let policy = RetryPolicy(quota: quota, random: { 0.5 })
        #expect(Self.failReason(policy.decide(after: Self.service(code, status), attempt: 1, idempotent: true)) == "not retryable")
        #expect(quota.available == RetryQuota.initialTokens)
    }

    @Test("server errors are retried", arguments: [
        ("InternalError", 500), ("Unavailable", 503), ("SomethingNew", 500), ("SomethingNew", 502), ("SomethingNew", 503),
        ("SomethingNew", 504), ("ServiceUnavailable", 400), ("RequestTimeout", 400),
    ])
    func serverErrorsRetried(code: String, status: Int) {
        #expect(RetryPolicy.classify(Self.service(code, status)) == .transient)
        let policy = RetryPolicy(random: { 0.5 })
        #expect(Self.retryCost(policy.decide(after: Self.service(code, status), attempt: 1, idempotent: true)) == 5)
    }

    @Test("bare statuses", arguments: [
        (429, RetryPolicy.FailureClass.throttling), (500, .transient), (502, .transient), (503, .transient), (504, .transient),
        (400, .notRetryable), (403, .notRetryable), (404, .notRetryable), (501, .notRetryable), (301, .notRetryable),
    ])
    func bareStatuses(status: Int, expected: RetryPolicy.FailureClass) {
        #expect(RetryPolicy.classify(.status(status)) == expected)
    }

    @Test("transport failures", arguments: [
        (TransportError.Kind.connectionFailed, RetryPolicy.FailureClass.timeoutOrNetwork), (.connectionReset, .timeoutOrNetwork),
        (.timeout, .timeoutOrNetwork), (.tls, .notRetryable), (.responseTooLarge, .notRetryable), (.other, .notRetryable),
    ])
    func transportClasses(kind: TransportError.Kind, expected: RetryPolicy.FailureClass) {
        #expect(RetryPolicy.classify(Self.transport(kind, sent: false)) == expected)
    }

    // MARK: Quota

    @Test("a timeout costs 10 tokens, a normal retry 5")
    func costs() {
        let quota = RetryQuota()
        let policy = RetryPolicy(quota: quota, random: { 0.5 })
        #expect(Self.retryCost(policy.decide(after: Self.transport(.timeout, sent: true), attempt: 1, idempotent: true)) == 10)
        #expect(quota.available == 490)
        #expect(Self.retryCost(policy.decide(after: Self.transport(.connectionFailed, sent: false), attempt: 1, idempotent: true)) == 10)
        #expect(quota.available == 480)
        #expect(Self.retryCost(policy.decide(after: Self.service("InternalError", 500), attempt: 1, idempotent: true)) == 5)
        #expect(quota.available == 475)
        #expect(Self.retryCost(policy.decide(after: .status(429), attempt: 1, idempotent: true)) == 5)
        #expect(quota.available == 470)
    }

    @Test("an exhausted quota stops retries")
    func quotaExhaustion() {
        let quota = RetryQuota(tokens: 12)
        let policy = RetryPolicy(maxAttempts: 100, quota: quota, random: { 0.5 })
        let failure = Self.service("RequestLimitExceeded", 503)
        #expect(Self.retryCost(policy.decide(after: failure, attempt: 1, idempotent: true)) == 5)
        #expect(Self.retryCost(policy.decide(after: failure, attempt: 2, idempotent: true)) == 5)
        #expect(quota.available == 2)
        #expect(Self.failReason(policy.decide(after: failure, attempt: 3, idempotent: true)) == "retry quota exhausted")
        #expect(quota.available == 2)

        let small = RetryQuota(tokens: 9)
        let timeouts = RetryPolicy(quota: small, random: { 0.5 })
        #expect(Self.failReason(timeouts.decide(after: Self.transport(.timeout, sent: false), attempt: 1, idempotent: true)) == "retry quota exhausted")
        // A cheaper retry still fits.
        #expect(Self.retryCost(timeouts.decide(after: Self.service("InternalError", 500), attempt: 1, idempotent: true)) == 5)
        #expect(small.available == 4)
    }

    @Test("a success refunds the last retry's cost, or 1, never above the start")
    func successRefunds() {
        let quota = RetryQuota()
        let policy = RetryPolicy(quota: quota, random: { 0.5 })
        _ = policy.decide(after: Self.transport(.timeout, sent: false), attempt: 1, idempotent: true)
        _ = policy.decide(after: Self.service("InternalError", 500), attempt: 1, idempotent: true)
        #expect(quota.available == 485)
        policy.recordSuccess(lastRetryCost: 10)
        #expect(quota.available == 495)
        policy.recordSuccess(lastRetryCost: nil)
        #expect(quota.available == 496)
        policy.recordSuccess(lastRetryCost: 5)
        #expect(quota.available == 500)
        policy.recordSuccess(lastRetryCost: 10)
        policy.recordSuccess(lastRetryCost: nil)
        #expect(quota.available == 500)
    }

    @Test("maxAttempts is respected", arguments: [1, 2, 3, 5])
    func maxAttempts(limit: Int) {
        let policy = RetryPolicy(maxAttempts: limit, random: { 0.5 })
        let failure = Self.service("Throttling", 400)
        for attempt in 1..<limit {
            #expect(Self.retryCost(policy.decide(after: failure, attempt: attempt, idempotent: true)) != nil, "attempt \(attempt)")
        }
        #expect(Self.failReason(policy.decide(after: failure, attempt: limit, idempotent: true)) == "gave up after \(limit) attempts")
    }

    @Test("maxAttempts below 1 means one attempt")
    func maxAttemptsClamped() {
        #expect(RetryPolicy(maxAttempts: 0).maxAttempts == 1)
        #expect(RetryPolicy(maxAttempts: -3).maxAttempts == 1)
        #expect(RetryPolicy().maxAttempts == 3)
    }

    @Test("a non-idempotent request that may have been carried out is not retried")
    func nonIdempotent() {
        let quota = RetryQuota()
        let policy = RetryPolicy(quota: quota, random: { 0.5 })
        #expect(Self.failReason(policy.decide(after: Self.transport(.timeout, sent: true), attempt: 1, idempotent: false))
                == "the request may have been carried out and is not idempotent")
        #expect(Self.failReason(policy.decide(after: Self.transport(.connectionReset, sent: true), attempt: 1, idempotent: false)) != nil)
        #expect(quota.available == 500)
        // Nothing was sent: safe to retry.
        #expect(Self.retryCost(policy.decide(after: Self.transport(.connectionFailed, sent: false), attempt: 1, idempotent: false)) == 10)
        // Idempotent: retried even when it may have been sent.
        #expect(Self.retryCost(policy.decide(after: Self.transport(.timeout, sent: true), attempt: 1, idempotent: true)) == 10)
        // A service error answer is retried for a non-idempotent call too: it was answered, not carried out twice.
        #expect(Self.retryCost(policy.decide(after: Self.service("RequestLimitExceeded", 503), attempt: 1, idempotent: false)) == 5)
    }

    @Test("the default random is within [0, 1)")
    func defaultRandom() {
        let policy = RetryPolicy()
        for _ in 0..<1_000 {
            let value = policy.random()
            #expect(value >= 0 && value < 1)
        }
    }
}
