public import ArgumentParser
import Foundation
import TorporAWS
import TorporEC2
import TorporFleet
import TorporPolicies
import TorporQueue
import TorporWorker
import TorporYAML

/// Where the queue is: --queue, else the configuration's queue.path, else
/// $TORPOR_QUEUE, else ~/.local/state/torpor/queue.sqlite.
struct QueueLocation: ParsableArguments {
    @Option(help: "The queue's SQLite file (else the configuration's queue.path, $TORPOR_QUEUE, or ~/.local/state/torpor/queue.sqlite).")
    var queue: String?
    @Option(help: "Configuration file (YAML, see Config/torpor.yaml).")
    var config: String?

    func configuration() throws -> TorporConfiguration {
        guard let config else { return TorporConfiguration() }
        guard let data = FileManager.default.contents(atPath: config) else { throw CommandFailure.usage("--config: cannot read '\(config)'") }
        let (configuration, problems) = TorporConfiguration.validate(String(decoding: data, as: UTF8.self), file: config)
        if !problems.isEmpty {
            throw CommandFailure.usage("the configuration has \(problems.count) problem(s):\n" + problems.map { "  \($0)" }.joined(separator: "\n"))
        }
        return configuration
    }

    func open() throws -> SQLiteJobQueue {
        try SQLiteJobQueue(path: queue ?? configuration().queue.path)
    }
}

struct Enqueue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Put a stop or start on the queue for the worker to carry out.",
        discussion: """
        The job carries the selectors and options as `torpor stop`/`start` take them. A second \
        enqueue with the same --key returns the existing job instead of adding one. Examples:
          torpor enqueue stop --tag Env=dev --hibernate --key nightly-2026-11-26
          torpor enqueue start --tag Env=dev --not-before 2026-11-27T07:00:00Z
          torpor enqueue start --tag Env=dev --not-before 30m
        """
    )

    enum Action: String, ExpressibleByArgument, CaseIterable { case stop, start }

    @Argument(help: "stop or start.") var action: Action
    @OptionGroup var selectors: SelectorOptions
    @Flag(help: "Hibernate (stop jobs).") var hibernate = false
    @Option(help: "With --hibernate, for instances not configured for it: stop, skip or fail.") var fallback: HibernationFallback = .stop
    @Flag(help: "Force the stop (stop jobs).") var force = false
    @Flag(name: .customLong("dry-run"), help: "Ask EC2 whether the calls would be allowed; change nothing.") var dryRun = false
    @Flag(name: .customLong("no-wait"), help: "Start jobs: succeed once EC2 accepts the calls, without waiting for running (outcome accepted).")
    var noWait = false
    @Option(name: .customLong("max-instances"), help: "Blast radius: refuse a plan that acts on more instances.") var maxInstances: Int?
    @Option(name: .customLong("max-share"), help: "Blast radius: refuse a plan that acts on a larger share of the selection.") var maxShare: Double?
    @Flag(name: .customLong("override-blast-radius"), help: "Run the plan even past the blast-radius limits.") var overrideBlastRadius = false
    @Option(name: .customLong("key"), help: ArgumentHelp("Idempotency key.", valueName: "IDEMPOTENCY_KEY")) var key: String?
    @Option(name: .customLong("not-before"), help: ArgumentHelp("Not before this time: ISO 8601, or a delay like 30m.", valueName: "TIME"))
    var notBefore: String?
    @Option(name: .customLong("max-attempts"), help: "Attempts before the job is dead.") var maxAttempts: Int?
    @Option(help: "table or json.") var output: OutputFormat = .table
    @OptionGroup var location: QueueLocation

    func validate() throws {
        if selectors.isEmpty { throw ValidationError("enqueue needs a selector (--id, --tag, --filter or --state)") }
        if action == .start && (hibernate || force) { throw ValidationError("--hibernate and --force go with stop jobs") }
        if action == .stop && noWait { throw ValidationError("--no-wait goes with start jobs: a stop job always confirms its outcome") }
        if hibernate && force { throw ValidationError("--hibernate and --force cannot be combined") }
        if let notBefore, Self.time(notBefore, now: 0) == nil {
            throw ValidationError("--not-before '\(notBefore)' is neither an ISO 8601 time (2026-11-27T07:00:00Z) nor a delay of at most 100 years (30m, 2h)")
        }
        if let maxShare, !(0...1).contains(maxShare) { throw ValidationError("--max-share must be between 0 and 1") }
        if let maxAttempts, maxAttempts < 1 { throw ValidationError("--max-attempts must be at least 1") }
    }

    static func time(_ text: String, now: Double) -> Double? {
        if let seconds = ISO8601.parse(text) { return Double(seconds) }
        // A delay of at most YAMLReader.longestDuration (100 years): more is a
        // typo, and would not survive the round trip through a timestamp.
        if let delay = YAMLReader.parseDuration(text), delay <= YAMLReader.longestDuration { return now + delay }
        return nil
    }

    func run() async throws {
        let configuration = try location.configuration()
        var payload = FleetJobPayload(selector: selectors.fleetSelector)
        payload.hibernate = hibernate
        payload.fallback = fallback
        payload.force = force
        payload.dryRun = dryRun
        payload.wait = !noWait
        payload.maxInstances = maxInstances ?? configuration.fleet.maxInstances
        payload.maxShare = maxShare ?? configuration.fleet.maxShare
        payload.overrideBlastRadius = overrideBlastRadius
        // The configuration's validator checked the tag's form.
        if let tag = PlanRules.parseTag(configuration.fleet.protectTag) {
            payload.protectTagKey = tag.key
            payload.protectTagValue = tag.value
        }

        let now = Date().timeIntervalSince1970
        let queue = try location.open()
        let (job, created) = try await queue.enqueue(NewJob(
            kind: action == .stop ? JobKind.fleetStop : JobKind.fleetStart, payload: payload.encoded(),
            payloadVersion: FleetJobPayload.version, idempotencyKey: key, notBefore: notBefore.flatMap { Self.time($0, now: now) },
            maxAttempts: maxAttempts ?? configuration.worker.maxAttempts), now: now)
        switch output {
        case .json:
            var document = JobRendering.json(job)
            document["created"] = created
            print(JSONOutput.render(document))
        case .table:
            print(created ? "enqueued \(job.id) (\(job.kind))" : "already enqueued with key '\(key ?? "")': \(job.id) (\(job.state.rawValue))")
        }
    }
}

struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, show, retry or cancel queued jobs.",
        subcommands: [List.self, Show.self, Retry.self, Cancel.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List jobs, newest first.")
        @Option(help: "Only jobs in this state: \(JobState.allCases.map(\.rawValue).joined(separator: ", ")).") var state: JobState?
        @Option(help: "At most this many.") var limit = 100
        @Option(help: "table or json.") var output: OutputFormat = .table
        @OptionGroup var location: QueueLocation

        func run() async throws {
            let jobs = try await location.open().jobs(state: state, limit: max(1, limit))
            switch output {
            case .json:
                print(JSONOutput.render(["jobs": jobs.map(JobRendering.json), "count": jobs.count]))
            case .table:
                var table = Table(["JOB", "KIND", "STATE", "ATTEMPTS", "CREATED", "LAST ERROR"])
                for job in jobs {
                    table.add([job.id, job.kind, job.state.rawValue, "\(job.attempts)/\(job.maxAttempts)",
                               JobRendering.time(job.createdAt), job.lastError.map { String($0.prefix(60)) } ?? ""])
                }
                print(table.render() + "\n\(jobs.count) job(s)")
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one job with its payload and result (JSON).")
        @Argument(help: "The job id.") var id: String
        @OptionGroup var location: QueueLocation

        func run() async throws {
            print(JSONOutput.render(JobRendering.json(try await location.open().job(id: id), full: true)))
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Queue a failed or dead job again, with fresh attempts.")
        @Argument(help: "The job id.") var id: String
        @OptionGroup var location: QueueLocation

        func run() async throws {
            let job = try await location.open().retry(id: id, now: Date().timeIntervalSince1970)
            print("\(job.id) is \(job.state.rawValue) again")
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a queued or failed job (it becomes dead).")
        @Argument(help: "The job id.") var id: String
        @OptionGroup var location: QueueLocation

        func run() async throws {
            let job = try await location.open().cancel(id: id, now: Date().timeIntervalSince1970)
            print("\(job.id) is cancelled (\(job.state.rawValue))")
        }
    }
}

extension JobState: ExpressibleByArgument {}

enum JobRendering {
    /// A stored time as ISO 8601; a damaged one (not finite, before 1970,
    /// after 9999) as its number, never a trap.
    static func time(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0, seconds < 253_402_300_800 else { return "invalid time \(seconds)" }
        return ISO8601.format(Int64(seconds))
    }

    static func json(_ job: Job) -> [String: Any] { json(job, full: false) }

    static func json(_ job: Job, full: Bool) -> [String: Any] {
        var object: [String: Any] = [
            "id": job.id, "kind": job.kind, "state": job.state.rawValue, "attempts": job.attempts, "maxAttempts": job.maxAttempts,
            "priority": job.priority, "createdAt": time(job.createdAt), "updatedAt": time(job.updatedAt), "notBefore": time(job.notBefore),
        ]
        object["idempotencyKey"] = job.idempotencyKey
        object["lastError"] = job.lastError
        object["leaseOwner"] = job.leaseOwner
        object["leaseExpiry"] = job.leaseExpiry.map(time)
        if full {
            object["payloadVersion"] = job.payloadVersion
            object["payload"] = (try? JSONSerialization.jsonObject(with: Data(job.payload.utf8))) ?? job.payload
            if let result = job.result {
                object["result"] = (try? JSONSerialization.jsonObject(with: Data(result.utf8))) ?? result
            }
        }
        return object
    }
}
