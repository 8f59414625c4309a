import Foundation
import TorporQueue

/// The queue's own cost per job: enqueue, claim, complete, each its own
/// committed transaction on a SQLite file, as the worker does them.
enum QueueBenchmark {
    static func run(jobs: Int) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("torpor-bench-queue-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let queue = try SQLiteJobQueue(path: directory.appendingPathComponent("queue.sqlite").path)
        let clock = ContinuousClock()
        let started = clock.now
        let now = Date().timeIntervalSince1970
        for index in 0..<jobs {
            _ = try await queue.enqueue(NewJob(kind: "bench.noop", payload: "{}", idempotencyKey: "bench-\(index)"), now: now)
        }
        var done = 0
        while let job = try await queue.claim(owner: "bench", lease: 60, now: now) {
            try await queue.complete(id: job.id, owner: "bench", result: "{}", now: now)
            done += 1
        }
        let elapsed = clock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        guard done == jobs else { throw QueueError(.storage, "completed \(done) of \(jobs) jobs") }
        print("{\"benchmark\":\"queue\",\"jobs\":\(jobs),\"jobs_per_sec\":\(Int(Double(jobs) / seconds))}")
    }
}
