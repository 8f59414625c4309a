import ArgumentParser
import Foundation
import Logging
import Synchronization
import TorporAWS
import TorporEC2
import TorporFleet
import TorporPolicies
import TorporQueue
import TorporReports
import TorporResume
import TorporYAML

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Reports on what Torpor measured.",
        subcommands: [ResumeReportCommand.self]
    )
}

struct ResumeReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Resume times per policy and instance type, held against the policies' objectives.",
        discussion: """
        Reads the measurements that `torpor start`, start jobs and `torpor worker` stored in the \
        queue's database. For each resume policy of --config (then any other policy with \
        measurements): count, p50, p95 and max of the resume time (from the accepted start to \
        the policy's readiness), timeouts, failed starts, hibernation resumes against cold \
        boots, and whether the objectives are met, with the instances that violate them. \
        Percentiles are nearest-rank; a timeout counts as slower than every resume.

        --output html writes one self-contained page (charts of every phase with the \
        objective lines, the slowest resumes); give --out FILE to write any output to a file. \
        Exits 0 whether objectives are met or not; 1 when the store cannot be read. Examples:
          torpor report resume --config Config/torpor.yaml
          torpor report resume --since 24h --policy web --output json
          torpor report resume --output html --out resume.html
        """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, json, html }

    @Option(help: ArgumentHelp("Resumes started within this long (7d, 24h, 90m) or since this ISO 8601 time; default: each policy's window.",
                               valueName: "DURATION|TIME"))
    var since: String?
    @Option(help: ArgumentHelp("Only this policy.", valueName: "NAME")) var policy: String?
    @Option(help: "table, json or html.") var output: Format = .table
    @Option(help: ArgumentHelp("Write the report to this file instead of standard output.", valueName: "FILE")) var out: String?
    @OptionGroup var location: QueueLocation

    func validate() throws {
        if let since, Self.start(since, now: 0) == nil {
            if YAMLReader.parseDurationUnbounded(since) != nil {
                throw ValidationError("--since '\(since)' reaches back more than \(YAMLReader.describeDuration(Self.longestSince)); "
                                      + "give a shorter duration or an ISO 8601 time (2026-11-20T00:00:00Z)")
            }
            throw ValidationError("--since '\(since)' is neither a duration (7d, 24h, 90m) nor an ISO 8601 time (2026-11-20T00:00:00Z)")
        }
        if output == .html && out == nil && isatty(STDOUT_FILENO) == 1 {
            throw ValidationError("--output html writes a page: give --out FILE (or redirect standard output)")
        }
    }

    /// The longest `--since` duration: 100 years (36500d) reaches back
    /// before any measurement; more is a typo.
    static let longestSince: Double = YAMLReader.longestDuration

    /// The start of the report's time range, or nil when `text` is neither
    /// an ISO 8601 time nor a duration of at most `longestSince`.
    static func start(_ text: String, now: Double) -> Double? {
        if let seconds = ISO8601.parse(text) { return Double(seconds) }
        if let duration = YAMLReader.parseDuration(text), duration <= longestSince { return now - duration }
        return nil
    }

    func run() async throws {
        let configuration = try location.configuration()
        let now = Date().timeIntervalSince1970
        let since = self.since.flatMap { Self.start($0, now: now) }
        if let policy, configuration.resume.policy(named: policy) == nil {
            // Not configured; it may still have measurements from before.
            printError("note: no resume policy named '\(policy)' in the configuration; showing what was measured under that name")
        }
        let path = location.queue ?? configuration.queue.path
        guard FileManager.default.fileExists(atPath: path) else {
            throw CommandFailure.failed("no measurements: the queue database \(path) does not exist (give --queue or --config)")
        }
        let store = try ResumeStore(queue: SQLiteJobQueue(path: path))
        let builder = ResumeReportBuilder(settings: configuration.resume, since: since, now: now)
        let records = try await store.records(since: builder.earliest, policy: policy)
        let report = builder.build(records, only: policy)
        if let policy, report.policies.isEmpty {
            throw CommandFailure.usage("no resume policy named '\(policy)' and nothing measured under that name")
        }
        let text: String
        switch output {
        case .table: text = ResumeRendering.table(report)
        case .json: text = JSONOutput.render(ResumeRendering.json(report))
        case .html: text = HTMLReport.render(report)
        }
        if let out {
            do {
                try Data(text.utf8).write(to: URL(fileURLWithPath: out), options: .atomic)
            } catch {
                throw CommandFailure.failed("cannot write \(out): \(error.localizedDescription)")
            }
            printError("wrote \(out)")
        } else {
            print(text)
        }
    }
}

/// Following resumes from the command line (`torpor start`).
struct ResumeTrackingOptions {
    let location: QueueLocation
    let follow: Bool

    func session(ec2: EC2Client, connection: ConnectionOptions) throws -> ResumeSession {
        let configuration = try location.configuration()
        let logger = ClientFactory.logger(connection.logLevel.level)
        var store: ResumeStore?
        do {
            store = try ResumeStore(queue: SQLiteJobQueue(path: location.queue ?? configuration.queue.path))
        } catch {
            printError("warning: resume times will not be stored: \(error)")
        }
        let owner = TrackerOwner.current("cli")
        let tracker = ResumeTracker(ec2: ec2, clock: WallFleetClock(), store: store, policies: configuration.resume,
                                    prober: NetworkProber(transport: CurlTransport()), owner: owner, logger: logger)
        return ResumeSession(tracker: tracker, settings: configuration.resume, follow: follow, stored: store != nil)
    }
}

/// A tracker running beside one command.
struct ResumeSession {
    let tracker: ResumeTracker
    let settings: ResumeSettings
    let follow: Bool
    /// Whether the resumes are in the queue's database, for a worker to
    /// take over.
    let stored: Bool
    let task: Task<Void, any Error>

    init(tracker: ResumeTracker, settings: ResumeSettings, follow: Bool, stored: Bool) {
        self.tracker = tracker
        self.settings = settings
        self.follow = follow
        self.stored = stored
        task = Task { try await tracker.run(adopting: false) }
    }

    /// Stops following at once and leaves what is in flight to `torpor
    /// worker` (the command failed part-way).
    func abandon() async {
        task.cancel()
        _ = await task.result
        await handOver(quiet: false)
    }

    func handOver(quiet: Bool) async {
        await tracker.release()
        let remaining = await tracker.inFlightCount
        let unstored = stored ? await tracker.unstoredInFlightCount : remaining
        guard remaining > 0, !quiet else { return }
        if remaining > unstored { printError("\(remaining - unstored) resume(s) in flight left to `torpor worker`") }
        if unstored > 0 {
            printError("\(unstored) resume(s) in flight not followed to the end: they could not be stored for `torpor worker`")
        }
    }

    /// Follows what is left (unless told not to), then reports what was
    /// measured; nil when nothing was started. Ctrl-C while following stops
    /// following: what is left in flight is released for `torpor worker`,
    /// and what was measured is still reported.
    func finish(quiet: Bool) async throws -> ResumeReport? {
        let left = await tracker.inFlightCount
        var interrupted = false
        if follow {
            if left > 0 && !quiet {
                printError("following \(left) resume(s) until ready or past their deadline (Ctrl-C leaves them to `torpor worker`)…")
            }
            await tracker.finishWhenIdle()
            let task = self.task
            interrupted = await Self.untilInterrupted { _ = await task.result } onInterrupt: { task.cancel() }
        } else {
            task.cancel()
            _ = await task.result
        }
        if !follow || interrupted { await handOver(quiet: quiet) }
        let finished = await tracker.finished
        guard !finished.isEmpty else { return nil }
        var builder = ResumeReportBuilder(settings: settings, since: nil, now: Date().timeIntervalSince1970)
        builder.slowestCount = 10
        let report = builder.build(finished)
        return ResumeReport(generatedAt: report.generatedAt, since: report.since,
                            policies: report.policies.filter { $0.summary.count + $0.summary.failed + $0.summary.inFlight > 0 })
    }

    /// Runs `body` with SIGINT turned into `onInterrupt` instead of the
    /// process's end; true when it was interrupted.
    static func untilInterrupted(_ body: () async -> Void, onInterrupt: @escaping @Sendable () -> Void) async -> Bool {
        let flag = InterruptFlag()
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler {
            flag.set()
            onInterrupt()
        }
        source.resume()
        await body()
        source.cancel()
        signal(SIGINT, SIG_DFL)
        return flag.value
    }
}

final class InterruptFlag: Sendable {
    private let raised = Mutex(false)
    func set() { raised.withLock { $0 = true } }
    var value: Bool { raised.withLock { $0 } }
}

/// The resume report as text and JSON.
enum ResumeRendering {
    /// From this many seconds on (some 30 million years) a value is not a
    /// measurement but a damaged row: it is written with an exponent, and
    /// never turned into a whole number (which could trap).
    static let hugeSeconds = 1e15

    /// What a value that is not a number (infinite, NaN) reads as.
    static let notANumber = "—"

    /// `22.5s` below 100 s, `3m00s` from there on; `—` for a value that is
    /// not finite.
    static func seconds(_ value: Double?, timedOut: Bool = false) -> String {
        if timedOut { return "timeout" }
        guard let value else { return "-" }
        guard value.isFinite else { return notANumber }
        if abs(value) >= hugeSeconds { return String(format: "%.3gs", value) }
        if value < 99.95 { return String(format: "%.1fs", value) }
        let whole = Int(value.rounded())
        // Interpolated, not %d: that is 32 bits wide, and some 4,000 years of
        // minutes would wrap.
        return "\(whole / 60)m" + String(format: "%02ds", whole % 60)
    }

    /// A measurement set against a limit: to a tenth of a second, so that
    /// 120.4 s over a 2m limit does not read as "2m00s".
    static func precise(_ value: Double?) -> String {
        guard let value else { return "timeout" }
        guard value.isFinite, abs(value) < hugeSeconds else { return seconds(value) }
        if value < 99.95 { return String(format: "%.1fs", value) }
        return String(format: "%.1fs", value) + " (\(seconds(value)))"
    }

    /// A limit or a window in the largest unit that divides it: `7d`, `2m`,
    /// `90s`, `2.5s`; `—` for a value that is not finite.
    static func duration(_ value: Double) -> String {
        guard value.isFinite else { return notANumber }
        if abs(value) >= hugeSeconds { return String(format: "%.3gs", value) }
        if value.truncatingRemainder(dividingBy: 86_400) == 0 { return "\(Int(value / 86_400))d" }
        if value.truncatingRemainder(dividingBy: 3600) == 0 { return "\(Int(value / 3600))h" }
        if value.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(value / 60))m" }
        if value == value.rounded() { return "\(Int(value))s" }
        // A fraction of a second (250ms, 2.5s) keeps its digits, without
        // trailing zeros.
        var text = String(format: "%.3f", value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text + "s"
    }

    static func objectives(_ limits: ObjectiveLimits) -> String {
        let parts = [("p50", limits.p50), ("p95", limits.p95), ("max", limits.max)].compactMap { name, value in
            value.map { "\(name) ≤ \(duration($0))" }
        }
        return parts.isEmpty ? "no objectives" : parts.joined(separator: ", ")
    }

    static func verdict(_ met: Bool?) -> String {
        switch met {
        case true?: return "met"
        case false?: return "VIOLATED"
        case nil: return "-"
        }
    }

    static func table(_ report: ResumeReport) -> String {
        var sections: [String] = []
        for policy in report.policies {
            var lines = ["== \(policy.name): readiness \(policy.readiness); \(objectives(policy.objectives)); window \(duration(policy.window.rounded()))"
                         + (policy.summary.objectivesMet.map { $0 ? " — objectives met" : " — OBJECTIVES VIOLATED" } ?? "")]
            var table = Table(["TYPE", "RESUMES", "P50", "P95", "MAX", "TIMEOUTS", "FAILED", "IN FLIGHT", "HIBERNATED", "COLD", "OBJECTIVES"])
            for stats in [policy.summary] + policy.byInstanceType {
                table.add([stats.instanceType ?? "all", "\(stats.count)", seconds(stats.p50, timedOut: stats.p50TimedOut),
                           seconds(stats.p95, timedOut: stats.p95TimedOut), seconds(stats.max, timedOut: stats.maxTimedOut),
                           "\(stats.timeouts)", "\(stats.failed)", "\(stats.inFlight)", "\(stats.hibernationResumes)", "\(stats.coldBoots)",
                           verdict(stats.objectivesMet)])
            }
            lines.append(table.render())
            if policy.summary.unfollowed > 0 {
                lines.append("note: \(policy.summary.unfollowed) resume(s) still marked in flight past their deadline: no tracker followed "
                             + "them to the end (run `torpor worker` on this queue to pick them up)")
            }
            for violation in policy.violations {
                let ids = violation.instanceIDs.prefix(10).joined(separator: ", ")
                    + (violation.instanceIDs.count > 10 ? " and \(violation.instanceIDs.count - 10) more" : "")
                lines.append("violated: \(violation.objective) ≤ \(duration(violation.limit)), measured \(precise(violation.actual)); "
                             + "slower than the limit: \(ids)")
            }
            let phases = policy.phases.filter { !$0.seconds.isEmpty }.map { phase in
                "\(phase.phase.label) p50 \(seconds(ResumeStatistics.percentile(phase.seconds, 0.5))), p95 \(seconds(ResumeStatistics.percentile(phase.seconds, 0.95)))"
            }
            if !phases.isEmpty { lines.append("phases: " + phases.joined(separator: "; ")) }
            sections.append(lines.joined(separator: "\n"))
        }
        return sections.isEmpty ? "no resume policies and no measurements" : sections.joined(separator: "\n\n")
    }

    /// The report as a JSON object (its Codable form).
    static func json(_ report: ResumeReport) -> Any {
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        guard let data = try? encoder.encode(report), let object = try? JSONSerialization.jsonObject(with: data) else { return [:] }
        return object
    }
}
