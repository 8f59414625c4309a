public import Logging
public import ServiceLifecycle
public import TorporQueue

/// The queue's store as a service of the worker's ServiceGroup. Started
/// first and so stopped last, after the consumer has released its jobs: it
/// then checkpoints the write-ahead log so the file is whole on disk.
public struct QueueStore: Service {
    public let queue: SQLiteJobQueue
    public let logger: Logger

    public init(queue: SQLiteJobQueue, logger: Logger) {
        self.queue = queue
        self.logger = logger
    }

    public func run() async throws {
        try? await gracefulShutdown()
        do {
            try await queue.checkpoint()
        } catch {
            logger.warning("cannot checkpoint the queue on shutdown", metadata: ["error": "\(error)"])
        }
    }
}
