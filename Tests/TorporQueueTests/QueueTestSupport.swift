import Foundation
import ServiceLifecycle
import Testing
import TorporEC2
import TorporFleet
import TorporQueue
import TorporSigV4
import TorporSim
import TorporTestSupport
import TorporWorker

// MARK: Temporary files

/// A queue in a fresh temporary directory.
func withQueue<T>(busyTimeout: Double = 5, _ body: (SQLiteJobQueue, String) async throws -> T) async throws -> T {
    try await withTemporaryDirectory { directory in
        let path = directory + "/queue.sqlite"
        let queue = try SQLiteJobQueue(path: path, busyTimeout: busyTimeout)
        return try await body(queue, path)
    }
}

/// Runs `body`, which must throw a `QueueError` of `kind`; returns the error.
@discardableResult
func expectQueueError(_ kind: QueueError.Kind, sourceLocation: SourceLocation = #_sourceLocation,
                      _ body: () async throws -> Void) async -> QueueError? {
    do {
        try await body()
        Issue.record("expected a QueueError .\(kind), but nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as QueueError {
        #expect(error.kind == kind, "expected .\(kind), got .\(error.kind): \(error.message)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected a QueueError .\(kind), got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

// MARK: The simulator in this process (see Tests/TorporTestSupport)

let testCredentials = AWSCredentials(accessKeyID: "AKIDQUEUETESTS", secretAccessKey: "queue-tests-secret")

/// A fleet from this module's seed, its simulator accepting `testCredentials`.
func makeSpec(seed: UInt64 = 23, _ groups: [GroupSpec], _ configure: (inout FleetSpec) -> Void = { _ in }) -> FleetSpec {
    fleetSpec(seed: seed, credentials: [testCredentials], groups, configure)
}

/// Every transition of a group takes exactly `seconds` (simulated).
func fixedTimings(_ seconds: Double) -> Timings {
    var timings = Timings()
    let fixed = DurationDistribution(median: seconds, p95: seconds)
    timings.stop = fixed
    timings.hibernate = fixed
    timings.hibernatePerGiB = 0
    timings.coldBoot = fixed
    timings.resume = fixed
    return timings
}

extension SimHarness {
    /// A runner for this simulator, its executor options those of the
    /// fleet tests unless configured.
    func runner(_ configure: (inout FleetExecutor.Options) -> Void = { _ in }) -> JobRunner {
        JobRunner(ec2: ec2, clock: clock, executorOptions: testOptions(configure), logger: quietLogger)
    }
}

// MARK: Consumers in a ServiceGroup

func consumerSettings(_ configure: (inout QueueConsumer.Settings) -> Void = { _ in }) -> QueueConsumer.Settings {
    var settings = QueueConsumer.Settings()
    settings.concurrency = 1
    settings.lease = 30
    settings.gracePeriod = 5
    settings.pollInterval = 0.05
    settings.retryBase = 0.2
    configure(&settings)
    return settings
}

/// A running ServiceGroup of consumers; `stop()` asks for a graceful
/// shutdown and waits for the group to end.
final class RunningConsumers: Sendable {
    let group: ServiceGroup
    let task: Task<Void, any Error>

    init(_ consumers: [QueueConsumer]) {
        let group = ServiceGroup(configuration: .init(
            services: consumers.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) },
            logger: quietLogger))
        self.group = group
        task = Task { try await group.run() }
    }

    /// Graceful shutdown; returns the real seconds it took to end.
    @discardableResult
    func stop() async -> Double {
        let started = Date()
        await group.triggerGracefulShutdown()
        do {
            try await task.value
        } catch {
            Issue.record("the consumers' ServiceGroup ended with \(error)")
        }
        return Date().timeIntervalSince(started)
    }
}

/// Runs consumers while `body` runs, then shuts them down gracefully.
func withConsumers<T>(_ consumers: [QueueConsumer], _ body: (RunningConsumers) async throws -> T) async throws -> T {
    let running = RunningConsumers(consumers)
    do {
        let result = try await body(running)
        await running.stop()
        return result
    } catch {
        await running.stop()
        throw error
    }
}

func makeConsumer(_ queue: any JobQueue, _ runner: JobRunner, owner: String, _ settings: QueueConsumer.Settings) -> QueueConsumer {
    QueueConsumer(queue: queue, runner: runner, owner: owner, settings: settings, metrics: WorkerMetrics(), logger: quietLogger)
}

/// A fleet job's payload selecting instances by one tag.
func payload(tag key: String, _ value: String, _ configure: (inout FleetJobPayload) -> Void = { _ in }) -> FleetJobPayload {
    var payload = FleetJobPayload(selector: FleetSelector(tags: [EC2Tag(key: key, value: value)]))
    configure(&payload)
    return payload
}

/// The result a fleet job stores, as JobRunner writes it.
struct StoredResult: Decodable {
    let action: String
    let dryRun: Bool
    let counts: [String: Int]
    let calls: Int
    let throttled: Int
    let instances: [InstanceResult]

    static func decode(_ text: String?, sourceLocation: SourceLocation = #_sourceLocation) throws -> StoredResult {
        let text = try #require(text, "the job has no result", sourceLocation: sourceLocation)
        return try JSONDecoder().decode(StoredResult.self, from: Data(text.utf8))
    }
}

// MARK: Processes

/// Whether this process ignores file permissions (root does).
var ignoresFilePermissions: Bool { getuid() == 0 }

/// Runs a program to its end; returns its exit status.
@discardableResult
func runProcess(_ arguments: [String]) -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    do {
        try startProcess(process)
    } catch {
        return -1
    }
    process.waitUntilExit()
    return process.terminationStatus
}

/// Whether `chattr +i` works here (it needs root and a file system that
/// supports the immutable attribute): the way to make a file read-only for
/// root.
let immutableFilesWork: Bool = {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("torpor-chattr-probe-\(UUID().uuidString)").path
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer {
        runProcess(["chattr", "-i", directory + "/probe"])
        try? FileManager.default.removeItem(atPath: directory)
    }
    guard FileManager.default.createFile(atPath: directory + "/probe", contents: Data("x".utf8)),
          runProcess(["chattr", "+i", directory + "/probe"]) == 0 else { return false }
    // Immutable means even root cannot open it for writing.
    return FileHandle(forWritingAtPath: directory + "/probe") == nil
}()

