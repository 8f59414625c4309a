import Foundation

/// Wall time and sleeping, injected so that tests run time forward instead
/// of waiting, and so that signing can be corrected for clock skew.
public protocol AWSClock: Sendable {
    /// Seconds since 1970.
    func now() -> Double
    func sleep(for duration: Duration) async throws
}

public struct SystemClock: AWSClock {
    public init() {}
    public func now() -> Double { Date().timeIntervalSince1970 }
    public func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }
}
