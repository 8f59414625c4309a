import Foundation

/// Time for pacing and waits: real time against EC2, simulated time against
/// the simulator (where a simulated second lasts 1/speed of a real one).
public protocol FleetClock: Sendable {
    /// Seconds, on any fixed origin.
    func now() -> Double
    func sleep(seconds: Double) async throws
}

/// The longest single sleep, in real seconds (about 31 years): a longer one
/// (a configured interval that is a typo, an infinite wait) sleeps this long
/// instead of trapping when it is converted to a whole number of
/// milliseconds or microseconds.
let longestFleetSleep: Double = 1e9

public struct WallFleetClock: FleetClock {
    public init() {}
    public func now() -> Double { Date().timeIntervalSince1970 }
    public func sleep(seconds: Double) async throws {
        // Not positive, or NaN: no sleep.
        guard seconds > 0 else { return }
        let real = min(seconds, longestFleetSleep)
        try await Task.sleep(for: .milliseconds(Int64((real * 1000).rounded(.up))))
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
        let real = seconds / speed
        // Not positive, or NaN (a NaN seconds or speed): no sleep.
        guard seconds > 0, real > 0 else { return }
        try await Task.sleep(for: .microseconds(Int64((min(real, longestFleetSleep) * 1_000_000).rounded(.up))))
    }
}
