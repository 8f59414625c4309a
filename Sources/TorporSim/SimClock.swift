import Foundation
import Synchronization

/// Simulated time, in seconds since 1970.
public protocol SimClock: Sendable {
    func now() -> Double
}

/// Time that runs `speed` times faster than the wall clock, starting at the
/// wall clock's present, so simulated timestamps look like real dates.
public struct ScaledClock: SimClock {
    public let speed: Double
    private let wallStart: Double
    private let simStart: Double

    /// - Parameter start: the simulated time to begin at; the wall clock's
    ///   present when nil.
    public init(speed: Double, start: Double? = nil) {
        self.speed = speed
        wallStart = Date().timeIntervalSince1970
        simStart = start ?? wallStart
    }

    public func now() -> Double {
        simStart + (Date().timeIntervalSince1970 - wallStart) * speed
    }

    /// Real seconds for a span of simulated ones.
    public func realSeconds(_ simulated: Double) -> Double { simulated / speed }
}

/// Time that moves only when a test says so.
public final class ManualClock: SimClock {
    private let current: Mutex<Double>

    public init(start: Double = 1_795_000_000) { current = Mutex(start) }

    public func now() -> Double { current.withLock { $0 } }

    public func advance(by seconds: Double) { current.withLock { $0 += seconds } }

    public func set(_ seconds: Double) { current.withLock { $0 = seconds } }
}
