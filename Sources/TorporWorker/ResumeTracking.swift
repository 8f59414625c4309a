public import Logging
public import ServiceLifecycle
public import TorporResume

/// The resume tracker as one of the worker's services: picks up the
/// resumes a previous run left in flight, follows every new one, and on
/// shutdown leaves those still in flight to the next run.
public struct ResumeTracking: Service {
    public let tracker: ResumeTracker
    let logger: Logger

    public init(tracker: ResumeTracker, logger: Logger) {
        self.tracker = tracker
        self.logger = logger
    }

    public func run() async throws {
        await tracker.adopt()
        let tracker = self.tracker
        let task = Task { try await tracker.run(adopting: true) }
        await withGracefulShutdownHandler {
            _ = await task.result
        } onGracefulShutdown: {
            task.cancel()
        }
        await tracker.release()
        let left = await tracker.inFlightCount
        if left > 0 { logger.info("left in-flight resumes for the next run", metadata: ["count": "\(left)"]) }
    }
}
