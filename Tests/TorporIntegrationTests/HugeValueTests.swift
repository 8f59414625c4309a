import ArgumentParser
import Foundation
import Testing
@testable import TorporCLI
import TorporFleet
import TorporPolicies
import TorporReports
import TorporYAML

/// Huge, infinite and NaN values, from a configuration with a typo, a
/// command-line argument or a damaged row: a clear error or a readable
/// rendering, never a trap.
@Suite("Huge values: clear errors, no traps")
struct HugeValueTests {
    static let file = "torpor.yaml"

    func check(_ text: String) -> [YAMLFileError] {
        TorporConfiguration.validate(text, file: Self.file).1
    }

    func policy(_ fields: String) -> String {
        """
        resume:
          policies:
            - name: web
              targets: { tags: { Tier: web } }
              \(fields)
        """
    }

    // MARK: Configuration

    @Test("objectives beyond a year, or beyond a 64-bit integer, are refused on their line, naming the key", arguments: [
        ("objectives: { max: 1e19 }", "objectives.max"),
        ("objectives: { max: 1e308d }", "objectives.max"),
        ("objectives: { p50: 1e20s, max: 1e21s }", "objectives.p50"),
        ("objectives: { p95: 366d }", "objectives.p95"),
        ("window: 1e20s", "window"),
        ("window: 1e308d", "window"),
        ("deadline: 1e19", "deadline"),
        ("deadline: 9e15m", "deadline"),
    ])
    func hugePolicyDurations(fields: String, key: String) throws {
        let problems = check(policy(fields))
        let first = try #require(problems.first, "no problem reported for \(fields)")
        #expect(first.file == Self.file)
        #expect(first.line == 5, "\(problems.map(\.description))")
        #expect(first.message.contains("resume policy 'web' \(key)"), "\(first.message)")
        #expect(first.message.contains("at most 365d"), "\(first.message)")
    }

    @Test("a year is still a valid objective, window and deadline; max beyond the deadline is reported without a trap")
    func yearLongDurations() throws {
        #expect(check(policy("objectives: { max: 365d }\n      window: 365d\n      deadline: 365d")).isEmpty)
        let problems = check(policy("objectives: { max: 300d }\n      deadline: 200d"))
        let first = try #require(problems.first)
        #expect(first.message.contains("objectives.max (25920000 s) is beyond the deadline (17280000 s)"), "\(first.message)")
    }

    @Test("resume.pollInterval between 100ms and 60s; describeRate a positive finite number up to 100", arguments: [
        ("pollInterval: 1e16", "resume.pollInterval", 2),
        ("pollInterval: 1e308d", "resume.pollInterval", 2),
        ("pollInterval: 61s", "resume.pollInterval", 2),
        ("pollInterval: 50ms", "resume.pollInterval", 2),
        ("describeRate: 1e300", "resume.describeRate", 2),
        ("describeRate: .inf", "resume.describeRate", 2),
        ("describeRate: nan", "resume.describeRate", 2),
        ("describeRate: 0", "resume.describeRate", 2),
    ])
    func trackerSettings(line: String, key: String, lineNumber: Int) throws {
        let problems = check("resume:\n  \(line)\n")
        let first = try #require(problems.first, "no problem reported for \(line)")
        #expect(first.file == Self.file && first.line == lineNumber, "\(first.description)")
        #expect(first.message.contains(key), "\(first.message)")
    }

    @Test("the bounds of the tracker settings themselves are valid")
    func trackerSettingBounds() {
        let (config, problems) = TorporConfiguration.validate("resume:\n  pollInterval: 60s\n  describeRate: 100\n", file: Self.file)
        #expect(problems.isEmpty, "\(problems.map(\.description))")
        #expect(config.resume.pollInterval == 60)
        #expect(check("resume:\n  pollInterval: 100ms\n  describeRate: 0.1\n").isEmpty)
    }

    @Test("the describe rate defaults to 10 a second: half of EC2's non-mutating refill")
    func describeRateDefault() {
        #expect(ResumeSettings().describeRate == 10)
        let (config, problems) = TorporConfiguration.validate("log:\n  level: info\n", file: Self.file)
        #expect(problems.isEmpty)
        #expect(config.resume.describeRate == 10)
    }

    @Test("any duration of the file: at most 100 years, and a unit that overflows is refused, not +inf")
    func otherDurations() throws {
        let problems = check("worker:\n  lease: 1e300s\n")
        let first = try #require(problems.first)
        #expect(first.line == 2 && first.message.contains("worker.lease") && first.message.contains("at most 36500d"), "\(first.description)")
        #expect(YAMLReader.parseDuration("1e308d") == nil)
        #expect(YAMLReader.parseDuration("1e308") == 1e308)
        #expect(YAMLReader.parseDurationUnbounded("1e308d") == .infinity)
        #expect(YAMLReader.parseDuration("2h") == 7200)
        #expect(YAMLReader.describeDuration(365 * 86_400) == "365d")
        #expect(YAMLReader.describeDuration(60) == "1m")
        #expect(YAMLReader.describeDuration(0.1) == "100ms")
    }

    @Test("torpor config validate: a huge objective is a problem with its line, exit 2")
    func configValidateCommand() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("torpor-huge-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("torpor.yaml").path
        try policy("objectives: { max: 1e19 }").write(toFile: path, atomically: true, encoding: .utf8)
        let result = try await torpor(["config", "validate", path], environment: isolatedEnvironment())
        #expect(result.status == 2, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        #expect(result.stdout.contains("\(path):5: resume policy 'web' objectives.max must be at most 365d, not '1e19'"), "\(result.stdout)")
    }

    // MARK: Report text

    @Test("report text: huge values with an exponent, non-finite ones as a dash", arguments: [
        1e15, 1e19, 1e20, 9.3e18, -1e20, 1e300, -1e300, Double.greatestFiniteMagnitude, .infinity, -.infinity, .nan,
    ])
    func textFormatters(value: Double) {
        #expect(!ResumeRendering.seconds(value).isEmpty)
        #expect(!ResumeRendering.precise(value).isEmpty)
        #expect(!ResumeRendering.duration(value).isEmpty)
        #expect(!ResumeRendering.objectives(ObjectiveLimits(p50: value, p95: value, max: value)).isEmpty)
    }

    @Test("report text: what the formatters write")
    func textFormatterValues() {
        #expect(ResumeRendering.seconds(1e20) == "1e+20s")
        #expect(ResumeRendering.seconds(.nan) == "—")
        #expect(ResumeRendering.seconds(.infinity) == "—")
        #expect(ResumeRendering.precise(1e20) == "1e+20s")
        #expect(ResumeRendering.precise(.nan) == "—")
        #expect(ResumeRendering.duration(1e20) == "1e+20s")
        #expect(ResumeRendering.duration(.infinity) == "—")
        #expect(ResumeRendering.duration(365 * 86_400) == "365d")
        #expect(ResumeRendering.duration(0.25) == "0.25s", "a fraction of a second is not cut to 0s")
        #expect(ResumeRendering.duration(2.5) == "2.5s")
        #expect(ResumeRendering.precise(120.4) == "120.4s (2m00s)")
        #expect(ResumeRendering.seconds(1e14) == "1666666666666m40s")
    }

    // MARK: --since

    @Test("--since: an absurd duration is a usage error (exit 2), not a trap", arguments: ["1e20s", "1e308d", "36501d", "1e19"])
    func absurdSince(since: String) async throws {
        #expect(ResumeReportCommand.start(since, now: 1_764_188_731) == nil)
        #expect(throws: (any Error).self) { try ResumeReportCommand.parse(["--since", since]) }
        let result = try await torpor(["report", "resume", "--since", since, "--queue", "/nonexistent/queue.sqlite"],
                                      environment: isolatedEnvironment())
        #expect(result.status == 2, "stderr: \(result.stderr)")
        #expect(result.stderr.contains("--since '\(since)' reaches back more than 36500d"), "\(result.stderr)")
    }

    @Test("--since: a hundred years and ISO times are still accepted")
    func sensibleSince() throws {
        #expect(ResumeReportCommand.start("36500d", now: 0) == -3_153_600_000.0)
        #expect(ResumeReportCommand.start("7d", now: 1_000_000) == 395_200.0)
        #expect(ResumeReportCommand.start("2026-11-20T00:00:00Z", now: 0) == 1_795_132_800)
        _ = try ResumeReportCommand.parse(["--since", "36500d"])
    }

    // MARK: Clocks

    @Test("a clock asked to sleep a huge, infinite or NaN time does not trap (and a huge sleep can be cancelled)",
          arguments: [1e300, Double.infinity, 1e16, .greatestFiniteMagnitude])
    func hugeSleeps(seconds: Double) async throws {
        let clocks: [any FleetClock] = [WallFleetClock(), ScaledFleetClock(speed: 40, now: { 0 }), ScaledFleetClock(speed: 0, now: { 0 }),
                                        ScaledFleetClock(speed: 1e-300, now: { 0 })]
        for clock in clocks {
            let sleeping = Task { try await clock.sleep(seconds: seconds) }
            try await Task.sleep(for: .milliseconds(20))
            sleeping.cancel()
            await #expect(throws: CancellationError.self) { try await sleeping.value }
        }
        for clock in clocks { try await clock.sleep(seconds: .nan) }
        try await ScaledFleetClock(speed: .nan, now: { 0 }).sleep(seconds: 1)
    }

    // MARK: torpor-bench

    @Test("torpor-bench: a non-finite or out-of-range number is a clear usage error, exit 2", arguments: [
        (["resume", "--instances", "inf"], "--instances"),
        (["resume", "--instances", "1e30"], "--instances"),
        (["resume", "--poll-interval", "1e16"], "--poll-interval"),
        (["resume", "--poll-interval", "nan"], "--poll-interval"),
        (["resume", "--describe-rate", "inf"], "--describe-rate"),
        (["resume", "--speed", "1e300"], "--speed"),
        (["fleet", "--instances", "inf"], "--instances"),
        (["fleet", "--speed", "inf"], "--speed"),
        (["sim", "--instances", "2.5"], "--instances"),
        (["sim", "--seconds", "inf"], "--seconds"),
        (["sign", "--seconds", "1e300"], "--seconds"),
        (["queue", "--jobs", "1e19"], "--jobs"),
        (["queue", "--jobs"], "--jobs"),
        (["queue", "--bogus", "1"], "--bogus"),
    ])
    func benchArguments(arguments: [String], option: String) async throws {
        let result = try await runProcess(TestPaths.bench, arguments, environment: isolatedEnvironment(), timeout: 30)
        #expect(result.status == 2, "\(arguments): \(result.stderr)")
        let first = result.stderr.split(separator: "\n").first.map(String.init) ?? ""
        #expect(first.hasPrefix("torpor-bench \(arguments[0]): \(option)") || first.contains("'\(option)'"), "\(first)")
    }

    // MARK: The queue's times

    @Test("torpor enqueue --not-before: a delay beyond 100 years is a usage error (exit 2), not a trap")
    func absurdNotBefore() async throws {
        try await withTemporaryQueueDirectory { directory in
            let queue = directory + "/queue.sqlite"
            let result = try await torpor(["enqueue", "start", "--tag", "Env=dev", "--not-before", "1e300s", "--queue", queue],
                                          environment: isolatedEnvironment())
            #expect(result.status == 2, "stderr: \(result.stderr)")
            #expect(result.stderr.contains("--not-before '1e300s'"), "\(result.stderr)")
        }
    }

    @Test("a stored time out of range (a damaged row) reads as invalid, not a trap",
          arguments: [1e300, -5, .infinity, .nan, 253_402_300_800])
    func damagedJobTimes(seconds: Double) {
        #expect(JobRendering.time(seconds).hasPrefix("invalid time"))
    }

    @Test("stored times in range read as ISO 8601")
    func jobTimes() {
        #expect(JobRendering.time(1_764_188_731) == "2025-11-26T20:25:31.000Z")
    }
}

func withTemporaryQueueDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("torpor-huge-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    return try await body(directory)
}
