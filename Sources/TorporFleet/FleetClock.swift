import Foundation

/// Time for pacing and waits: real time against EC2, simulated time against
/// the simulator (where a simulated second lasts 1/speed of a real one).
public protocol FleetClock: Sendable {
    /// Seconds, on any fixed origin.
    func now() -> Double
    func sleep(seconds: Double) async throws
}

public struct WallFleetClock: FleetClock {
    public init() {}
    public func now() -> Double { Date().timeIntervalSince1970 }
    public func sleep(seconds: Double) async throws {
        guard seconds > 0 else { return }
        try await Task.sleep(for: .milliseconds(Int64((seconds * 1000).rounded(.up))))
    }
}

/// A clock that reads another's time (the simulator's) and sleeps for
/// `seconds / speed` real seconds.
public struct ScaledFleetClock: FleetClock {
    public let speed: Double
    private let read: @Sendable () -> Double

    public init(speed: Double, now: @escaping @Sendable () -> Double) {
        self.speed = speed
        read = now
    }

    public func now() -> Double { read() }

    public func sleep(seconds: Double) async throws {
        guard seconds > 0 else { return }
        try await Task.sleep(for: .microseconds(Int64((seconds / speed * 1_000_000).rounded(.up))))
    }
}
