import Foundation
import Testing
import TorporReports
import TorporTestSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Plain tests (no browser)

@Suite("HTML report")
struct HTMLReportTests {
    @Test("seconds read as 12.3 s below 100 s and as 2m 05s from there on")
    func formatsSeconds() {
        #expect(HTMLReport.formatSeconds(0) == "0.0 s")
        #expect(HTMLReport.formatSeconds(0.04) == "0.0 s")
        #expect(HTMLReport.formatSeconds(12.34) == "12.3 s")
        #expect(HTMLReport.formatSeconds(12.36) == "12.4 s")
        #expect(HTMLReport.formatSeconds(99.9) == "99.9 s")
        // Rounds to 100.0, which is no longer "under 100 s".
        #expect(HTMLReport.formatSeconds(99.96) == "1m 40s")
        #expect(HTMLReport.formatSeconds(100) == "1m 40s")
        #expect(HTMLReport.formatSeconds(125) == "2m 05s")
        #expect(HTMLReport.formatSeconds(600) == "10m 00s")
        #expect(HTMLReport.formatSeconds(3599.6) == "1h 00m 00s")
        #expect(HTMLReport.formatSeconds(.infinity) == "—")
    }

    @Test("a violation just over its limit keeps its tenths: 120.4 s against max 2m 00s")
    func violationJustOverLimit() throws {
        let policy = Fixture.policy(name: "edge", readiness: "running", phase: .running, window: 86_400, deadline: 600,
                                    objectives: ObjectiveLimits(max: 120),
                                    resumes: [Fixture.Resume(id: "i-0123456789abcdef0", type: "m5.large", zone: "us-east-1a",
                                                             mode: "hibernation", startedAt: Fixture.generatedAt - 60, running: 120.4,
                                                             outcome: "complete")])
        _ = try #require(policy.violations.first, "the fixture should violate max")
        let html = HTMLReport.render(ResumeReport(generatedAt: Fixture.generatedAt, since: nil, policies: [policy]))
        let section = try #require(html.section(containing: "<h2>edge</h2>"))
        #expect(section.contains("actual <strong class=\"bad-text\">120.4 s (2m 00s)</strong>"), "\(section)")
    }

    @Test("an empty report is a complete page with no charts")
    func emptyReport() {
        let html = HTMLReport.render(ResumeReport(generatedAt: 1_764_188_731, since: nil, policies: []))
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("</html>"))
        #expect(html.contains("Torpor resume report"))
        #expect(html.contains("2025-11-26 20:25:31 UTC"))
        #expect(html.contains("each policy's window"))
        #expect(!html.contains("<svg"))
        #expect(html.occurrences(of: "<script") == 1)
    }

    @Test("the header shows the since time in UTC")
    func sinceInHeader() {
        let html = HTMLReport.render(ResumeReport(generatedAt: 1_764_188_731, since: 1_763_510_400, policies: []))
        #expect(html.contains("2025-11-19 00:00:00 UTC"))
        #expect(!html.contains("each policy's window"))
    }

    @Test("a policy without resumes shows a placeholder, not a chart")
    func policyWithoutResumes() throws {
        let withObjectives = Fixture.policy(name: "idle-pool", readiness: "tcp 22", phase: .probe, window: 86_400, deadline: 300,
                                            objectives: ObjectiveLimits(p50: 20), resumes: [])
        let withoutObjectives = Fixture.policy(name: "scratch", readiness: "running", phase: .running, window: 86_400,
                                               deadline: 300, objectives: ObjectiveLimits(), resumes: [])
        let html = HTMLReport.render(ResumeReport(generatedAt: 1_764_188_731, since: nil,
                                                  policies: [withObjectives, withoutObjectives]))
        let first = try #require(html.section(containing: "<h2>idle-pool</h2>"))
        let second = try #require(html.section(containing: "<h2>scratch</h2>"))
        for section in [first, second] {
            #expect(!section.contains("<svg"))
            #expect(section.lowercased().contains("no resumes measured"))
        }
        #expect(first.contains("no data"))
        #expect(second.contains("no objectives"))
    }

    @Test("report strings are escaped and the page references nothing external")
    func escapesAndSelfContained() throws {
        let html = HTMLReport.render(Fixture.report())
        #expect(html.contains("nightly-batch &lt;script&gt;"))
        #expect(html.contains("&lt;b id="))
        #expect(!html.contains("<b id=\"injected\""))
        #expect(html.occurrences(of: "<script") == 1)
        // The readiness probe URL is text, never a link.
        #expect(html.contains("http http://{ip}:8080/healthz"))
        #expect(html.externalReferences().isEmpty, "external references: \(html.externalReferences())")
        #expect(!html.contains("@import"))
        #expect(!html.contains("<link"))
    }

    @Test("the same report renders to the same bytes")
    func deterministic() {
        #expect(HTMLReport.render(Fixture.report()) == HTMLReport.render(Fixture.report()))
    }

    @Test("a huge outlier is reported even when it is off the chart")
    func outlierIsNoted() throws {
        var resumes = (0..<99).map { i in
            Fixture.Resume(id: "i-\(1000 + i)", type: "m7i.large", zone: "eu-west-1a", mode: "hibernation",
                           startedAt: 1_764_100_000 + Double(i) * 60, running: 10, statusOk: 70,
                           probe: 20 + Double(i % 20), outcome: "complete")
        }
        resumes.append(Fixture.Resume(id: "i-outlier", type: "m7i.large", zone: "eu-west-1a", mode: "cold",
                                      startedAt: 1_764_100_000, running: 12, statusOk: 80, probe: 5000, outcome: "complete"))
        let policy = Fixture.policy(name: "outliers", readiness: "tcp 443", phase: .probe, window: 86_400, deadline: 7200,
                                    objectives: ObjectiveLimits(p50: 30, p95: 45), resumes: resumes)
        let html = HTMLReport.render(ResumeReport(generatedAt: 1_764_188_731, since: nil, policies: [policy]))
        let section = try #require(html.section(containing: "<h2>outliers</h2>"))
        let figure = try #require(section.between("<figure", "</figure>"))
        #expect(figure.contains("<svg"))
        // 5000 s is not drawn to scale, so the figure has to say so.
        #expect(figure.contains(HTMLReport.formatSeconds(5000)))
        #expect(figure.contains("p50 ≤ 30.0 s"))
        #expect(figure.contains("p95 ≤ 45.0 s"))
    }

    @Test("single, identical and zero durations still draw a chart")
    func degenerateDistributions() throws {
        func resume(_ id: String, probe: Double) -> Fixture.Resume {
            Fixture.Resume(id: id, type: "t3.micro", zone: "us-east-1a", mode: "hibernation", startedAt: 1_764_100_000,
                           running: probe / 2, statusOk: probe * 3, probe: probe, outcome: "complete")
        }
        let cases: [(String, [Fixture.Resume])] = [
            ("single", [resume("i-1", probe: 17)]),
            ("identical", (0..<50).map { resume("i-\($0)", probe: 30) }),
            ("zero", (0..<5).map { resume("i-\($0)", probe: 0) }),
        ]
        for (name, resumes) in cases {
            let policy = Fixture.policy(name: name, readiness: "tcp 22", phase: .probe, window: 86_400, deadline: 300,
                                        objectives: ObjectiveLimits(max: 60), resumes: resumes)
            let html = HTMLReport.render(ResumeReport(generatedAt: 1_764_188_731, since: nil, policies: [policy]))
            let section = try #require(html.section(containing: "<h2>\(name)</h2>"))
            #expect(section.contains("<svg"), "\(name)")
            #expect(section.contains("max ≤ 60.0 s"), "\(name)")
            #expect(!section.contains("NaN") && !section.contains("inf"), "\(name)")
        }
    }
}

// MARK: - Headless Chromium

@Suite("HTML report in headless Chromium")
struct HTMLReportBrowserTests {
    @Test("the report renders in Chromium: script ran, charts present, nothing injected, not blank")
    func rendersInChromium() async throws {
        let executable = Chromium.find()
        let chromium = try #require(executable.map { Chromium(executable: $0) },
                                    "Chromium is not installed (looked for chromium, chromium-browser and google-chrome on PATH); run `bash ops/setup.sh`")

        let keep = ProcessInfo.processInfo.environment["TORPOR_HTML_REPORT_DIR"]
        let directory = keep.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("torpor-html-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { if keep == nil { try? FileManager.default.removeItem(at: directory) } }

        let report = Fixture.report()
        let html = HTMLReport.render(report)
        let page = directory.appendingPathComponent("report.html")
        try html.write(to: page, atomically: true, encoding: .utf8)
        let blankPage = directory.appendingPathComponent("blank.html")
        try "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>blank</title></head><body></body></html>"
            .write(to: blankPage, atomically: true, encoding: .utf8)

        // Screenshots of the report and of a blank page, the same size.
        let png = directory.appendingPathComponent("report.png")
        let blankPNG = directory.appendingPathComponent("blank.png")
        for (source, target) in [(page, png), (blankPage, blankPNG)] {
            let run = try await chromium.run(
                ["--hide-scrollbars", "--force-device-scale-factor=1", "--window-size=1280,4000",
                 "--screenshot=\(target.path)", source.absoluteString],
                in: directory)
            #expect(!run.timedOut, "chromium --screenshot did not finish in time: \(run.stderrTail)")
            #expect(run.status == 0, "chromium --screenshot exited \(run.status): \(run.stderrTail)")
        }
        let image = try #require(try? Data(contentsOf: png), "no screenshot at \(png.path)")
        let blankImage = try #require(try? Data(contentsOf: blankPNG), "no screenshot at \(blankPNG.path)")
        let header = try #require(PNGHeader(image), "report.png is not a PNG")
        #expect(header.width == 1280)
        #expect(header.height == 4000)
        // A blank 1280×4000 page compresses to a few tens of kilobytes; text,
        // tables and charts make it several times larger.
        #expect(image.count > blankImage.count * 4,
                "report screenshot \(image.count) bytes vs blank page \(blankImage.count) bytes: is it blank?")

        // The DOM after the page's own script ran.
        let dump = try await chromium.run(["--dump-dom", page.absoluteString], in: directory)
        #expect(!dump.timedOut, "chromium --dump-dom did not finish in time: \(dump.stderrTail)")
        #expect(dump.status == 0, "chromium --dump-dom exited \(dump.status): \(dump.stderrTail)")
        let dom = String(decoding: dump.stdout, as: UTF8.self)
        try? dom.write(to: directory.appendingPathComponent("dom.html"), atomically: true, encoding: .utf8)
        try #require(dom.contains("</html>"), "no DOM dumped: \(dump.stderrTail)")

        // The page's own script marks <body> when it ran and found every chart.
        let body = try #require(dom.between("<body", ">"), "no <body> in the DOM")
        #expect(body.contains("data-rendered=\"ok\""), "the page's check script did not mark it rendered: <body\(body)>")
        #expect(!body.contains("data-errors"), "script errors: <body\(body)>")

        // One chart per policy with data; a placeholder for the others.
        for policy in report.policies {
            let heading = "<h2>\(policy.name.domTextEscaped)</h2>"
            let section = try #require(dom.section(containing: heading), "no section for \(policy.name)")
            let hasData = policy.summary.count > 0 || policy.phases.contains { !$0.seconds.isEmpty }
            if hasData {
                #expect(section.occurrences(of: "<svg") == 1, "\(policy.name): expected its chart")
            } else {
                #expect(!section.contains("<svg"), "\(policy.name): chart without data")
                #expect(section.lowercased().contains("no resumes measured"), "\(policy.name): no placeholder")
            }
            if let p50 = policy.objectives.p50, hasData {
                #expect(section.contains("p50 ≤ \(HTMLReport.formatSeconds(p50))"), "\(policy.name): no p50 line")
            }
        }
        let web = try #require(dom.section(containing: "<h2>web-frontend</h2>"))
        let chart = try #require(web.between("<svg", "</svg>"))
        for label in ["p50 ≤ 30.0 s", "p95 ≤ 45.0 s", "max ≤ 90.0 s"] {
            #expect(chart.contains(label), "web-frontend chart lacks \(label)")
        }
        #expect(web.contains("&gt; deadline"), "a percentile on a timeout should read > deadline")

        // Escaping: the hostile strings are text, not elements.
        #expect(dom.occurrences(of: "<script") == 1, "an injected <script> element made it into the DOM")
        #expect(!dom.contains("data-injected"), "an injected script ran")
        #expect(!dom.contains("<b id=\"injected\""), "an injected element made it into the DOM")
        #expect(dom.contains("nightly-batch &lt;script&gt;"))
        #expect(dom.contains("&lt;b id=\"injected\"&gt;"))

        // Self-contained: nothing loaded from anywhere.
        #expect(html.externalReferences().isEmpty, "external references: \(html.externalReferences())")
        #expect(dom.externalReferences().isEmpty, "external references in the DOM: \(dom.externalReferences())")
    }
}

// MARK: - Chromium runner

struct Chromium: Sendable {
    var executable: URL

    static func find() -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for directory in path.split(separator: ":") where !directory.isEmpty {
                let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name)
                if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            }
        }
        return nil
    }

    struct Run {
        var status: Int32
        var timedOut: Bool
        var stdout: Data
        var stderr: String

        var stderrTail: String { String(stderr.suffix(2000)) }
    }

    /// Runs headless Chromium with a fresh profile and HOME under `directory`,
    /// output to files (no pipes to fill up), killed after `timeout` seconds.
    func run(_ arguments: [String], in directory: URL, timeout: Double = 60) async throws -> Run {
        let id = UUID().uuidString
        let home = directory.appendingPathComponent("home-\(id)")
        let profile = directory.appendingPathComponent("profile-\(id)")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: profile, withIntermediateDirectories: true)
        let stdoutURL = directory.appendingPathComponent("stdout-\(id)")
        let stderrURL = directory.appendingPathComponent("stderr-\(id)")
        _ = FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        let stdout = try FileHandle(forWritingTo: stdoutURL)
        let stderr = try FileHandle(forWritingTo: stderrURL)
        defer {
            try? FileManager.default.removeItem(at: home)
            try? FileManager.default.removeItem(at: profile)
            try? FileManager.default.removeItem(at: stdoutURL)
            try? FileManager.default.removeItem(at: stderrURL)
        }

        let process = Process()
        process.executableURL = executable
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                             "--user-data-dir=\(profile.path)"] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["HOME"] = home.path
        environment["XDG_CONFIG_HOME"] = home.appendingPathComponent(".config").path
        environment["XDG_CACHE_HOME"] = home.appendingPathComponent(".cache").path
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = stdout
        process.standardError = stderr
        try startProcess(process)

        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline {
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        var timedOut = false
        if process.isRunning {
            timedOut = true
            process.terminate()
            let grace = Date().addingTimeInterval(5)
            while process.isRunning && Date() < grace {
                try await Task.sleep(nanoseconds: 50_000_000)
            }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
        try? stdout.close()
        try? stderr.close()
        return Run(status: process.terminationStatus, timedOut: timedOut,
                   stdout: (try? Data(contentsOf: stdoutURL)) ?? Data(),
                   stderr: String(decoding: (try? Data(contentsOf: stderrURL)) ?? Data(), as: UTF8.self))
    }
}

/// The size in a PNG's IHDR chunk, or nil when the data is not a PNG.
struct PNGHeader {
    var width: UInt32
    var height: UInt32

    init?(_ data: Data) {
        let bytes = [UInt8](data.prefix(24))
        guard bytes.count == 24,
              bytes[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]),
              bytes[12..<16].elementsEqual(Array("IHDR".utf8)) else { return nil }
        func be32(_ offset: Int) -> UInt32 {
            bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
        }
        width = be32(16)
        height = be32(20)
    }
}

// MARK: - Text helpers

extension String {
    func occurrences(of needle: String) -> Int {
        components(separatedBy: needle).count - 1
    }

    /// The text between the first `start` and the next `end` after it.
    func between(_ start: String, _ end: String) -> String? {
        guard let from = range(of: start), let to = range(of: end, range: from.upperBound..<endIndex) else { return nil }
        return String(self[from.upperBound..<to.lowerBound])
    }

    /// The `<section …>…</section>` that contains `needle` (sections do not nest).
    func section(containing needle: String) -> String? {
        components(separatedBy: "<section").dropFirst()
            .compactMap { $0.components(separatedBy: "</section>").first }
            .first { $0.contains(needle) }
    }

    /// How the HTML serializer writes this string as text: &, < and > escaped.
    var domTextEscaped: String {
        replacingOccurrences(of: "&", with: "&amp;")
            .replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }

    /// Attribute values that would load or link something outside the page.
    func externalReferences() -> [String] {
        let pattern = #"(?i)\b(?:src|href|xlink:href|srcset|action|poster)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:|//)[^"'\s>]*"#
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return ["bad pattern"] }
        let range = NSRange(startIndex..<endIndex, in: self)
        return regex.matches(in: self, range: range).compactMap { Range($0.range, in: self).map { String(self[$0]) } }
            + (contains("url(") ? ["url("] : [])
    }
}

// MARK: - Fixture

/// A realistic report built from simulated resumes, with the statistics
/// computed here the way the report defines them (nearest-rank percentiles of
/// the readiness phase, a timeout slower than every completed resume).
enum Fixture {
    static let generatedAt = 1_764_188_731.0 // 2025-11-26 20:25:31 UTC

    struct Resume {
        var id: String
        var type: String
        var zone: String
        var mode: String
        var startedAt: Double
        var running: Double?
        var statusOk: Double?
        var probe: Double?
        var outcome: String
        var lastState: String? = nil
    }

    /// SplitMix64: the same numbers on every run and platform.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
        mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * unit() }
        /// Roughly log-normal around `median`.
        mutating func skewed(median: Double, spread: Double) -> Double {
            let gaussian = (0..<4).reduce(0.0) { sum, _ in sum + unit() } - 2
            return median * exp(gaussian * spread)
        }
        mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }
        mutating func instanceID() -> String {
            "i-0" + String(String(next(), radix: 16).suffix(16)).leftPadded(to: 16)
        }
    }

    static func report() -> ResumeReport {
        ResumeReport(generatedAt: generatedAt, since: nil, policies: [
            webFrontend(), ciRunners(), nightlyBatch(), bastion(),
        ])
    }

    /// HTTP readiness, objectives, cold boots, outliers, timeouts, failures.
    static func webFrontend() -> PolicyReport {
        var random = Random(state: 42)
        var resumes: [Resume] = []
        let types = ["m7i.large", "c7i.xlarge", "r7i.2xlarge"]
        let zones = ["us-east-1a", "us-east-1b", "us-east-1c"]
        for i in 0..<412 {
            let startedAt = generatedAt - 7 * 86_400 + Double(i) * 1_450 + random.uniform(0, 600)
            let cold = random.unit() < 0.14
            var resume = Resume(id: random.instanceID(), type: random.pick(types), zone: random.pick(zones),
                                mode: cold ? "cold" : "hibernation", startedAt: startedAt, outcome: "complete")
            let running = random.skewed(median: cold ? 19 : 14, spread: 0.18)
            resume.running = running
            resume.statusOk = running + random.skewed(median: 75, spread: 0.25)
            var probe = running + random.skewed(median: cold ? 34 : 9, spread: 0.3)
            if random.unit() < 0.015 { probe += random.uniform(90, 240) }
            resume.probe = probe
            let fate = random.unit()
            if fate < 0.02 {
                resume.outcome = "timed-out"
                resume.probe = nil
                resume.statusOk = random.unit() < 0.5 ? nil : resume.statusOk
                resume.lastState = resume.statusOk == nil ? "running, status initializing" : "running, probe refused"
            } else if fate < 0.025 {
                resume.outcome = "failed"
                resume.probe = nil
                resume.statusOk = nil
                resume.lastState = "stopped (Server.InsufficientInstanceCapacity)"
            } else if i >= 408 {
                resume.outcome = "tracking"
                resume.probe = nil
                resume.statusOk = nil
                resume.lastState = "running"
            }
            resumes.append(resume)
        }
        return policy(name: "web-frontend", readiness: "http http://{ip}:8080/healthz", phase: .probe, window: 7 * 86_400,
                      deadline: 300, objectives: ObjectiveLimits(p50: 30, p95: 45, max: 90), resumes: resumes)
    }

    /// Status-check readiness, no objectives, one huge outlier, and an
    /// instance id that tries to inject markup.
    static func ciRunners() -> PolicyReport {
        var random = Random(state: 7)
        var resumes: [Resume] = []
        for i in 0..<160 {
            let running = random.skewed(median: 12, spread: 0.15)
            var statusOk = running + random.skewed(median: 70, spread: 0.2)
            var id = random.instanceID()
            if i == 3 {
                statusOk = 540
                id = "i-0bad<b id=\"injected\">x</b>"
            }
            resumes.append(Resume(id: id, type: i % 3 == 0 ? "c7g.4xlarge" : "c7g.2xlarge", zone: "eu-west-1b",
                                  mode: "hibernation", startedAt: generatedAt - 86_400 + Double(i) * 500, running: running,
                                  statusOk: statusOk, outcome: "complete"))
        }
        return policy(name: "ci-runners", readiness: "status-ok", phase: .statusOk, window: 86_400, deadline: 600,
                      objectives: ObjectiveLimits(), resumes: resumes)
    }

    /// Nothing resumed in the window; the name tries to inject a script.
    static func nightlyBatch() -> PolicyReport {
        policy(name: "nightly-batch <script>document.body.dataset.injected=\"yes\"</script>", readiness: "tcp 5432",
               phase: .probe, window: 3 * 86_400, deadline: 900, objectives: ObjectiveLimits(p50: 60, p95: 120), resumes: [])
    }

    /// A single resume that meets its objective.
    static func bastion() -> PolicyReport {
        policy(name: "bastion", readiness: "tcp 22", phase: .probe, window: 30 * 86_400, deadline: 180,
               objectives: ObjectiveLimits(max: 60),
               resumes: [Resume(id: "i-0a1b2c3d4e5f60718", type: "t4g.small", zone: "us-east-1a", mode: "hibernation",
                                startedAt: generatedAt - 3 * 3600, running: 11.2, statusOk: 64.8, probe: 18.4,
                                outcome: "complete")])
    }

    static func value(_ resume: Resume, _ phase: ResumePhase) -> Double? {
        switch phase {
        case .running: return resume.running
        case .statusOk: return resume.statusOk
        case .probe: return resume.probe
        }
    }

    /// Readiness times with timeouts as +infinity, sorted.
    static func times(_ resumes: [Resume], _ phase: ResumePhase) -> [(Double, Resume)] {
        resumes.compactMap { resume -> (Double, Resume)? in
            switch resume.outcome {
            case "complete": return value(resume, phase).map { ($0, resume) }
            case "timed-out": return (.infinity, resume)
            default: return nil
            }
        }.sorted { $0.0 < $1.0 }
    }

    static func rank(_ sorted: [Double], _ p: Double) -> Double? {
        guard !sorted.isEmpty else { return nil }
        return sorted[max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1)]
    }

    static func stats(_ resumes: [Resume], phase: ResumePhase, objectives: ObjectiveLimits, type: String?) -> ResumeStats {
        let measured = times(resumes, phase).map(\.0)
        let p50 = rank(measured, 0.5), p95 = rank(measured, 0.95), top = measured.last
        var met: Bool? = nil
        if !objectives.isEmpty && !measured.isEmpty {
            met = [(objectives.p50, p50), (objectives.p95, p95), (objectives.max, top)].allSatisfy { limit, actual in
                guard let limit, let actual else { return true }
                return actual <= limit
            }
        }
        func finite(_ value: Double?) -> Double? { value.flatMap { $0.isFinite ? $0 : nil } }
        let counted = resumes.filter { $0.outcome == "complete" || $0.outcome == "timed-out" }
        return ResumeStats(
            instanceType: type, count: counted.count,
            completed: resumes.filter { $0.outcome == "complete" }.count,
            timeouts: resumes.filter { $0.outcome == "timed-out" }.count,
            failed: resumes.filter { $0.outcome == "failed" }.count,
            inFlight: resumes.filter { $0.outcome == "tracking" }.count,
            hibernationResumes: counted.filter { $0.mode == "hibernation" }.count,
            coldBoots: counted.filter { $0.mode == "cold" }.count,
            p50: finite(p50), p95: finite(p95), max: finite(top),
            p50TimedOut: p50 == .infinity, p95TimedOut: p95 == .infinity, maxTimedOut: top == .infinity,
            objectivesMet: met)
    }

    static func policy(name: String, readiness: String, phase: ResumePhase, window: Double, deadline: Double,
                       objectives: ObjectiveLimits, resumes: [Resume]) -> PolicyReport {
        let summary = stats(resumes, phase: phase, objectives: objectives, type: nil)
        let byType = Dictionary(grouping: resumes, by: \.type).keys.sorted().map { type in
            stats(resumes.filter { $0.type == type }, phase: phase, objectives: objectives, type: type)
        }
        let measuredPhases = ResumePhase.allCases.filter { $0 <= phase }
        let phases = measuredPhases.map { measuredPhase in
            PhaseDistribution(phase: measuredPhase,
                              seconds: resumes.filter { $0.outcome == "complete" }.compactMap { value($0, measuredPhase) }.sorted())
        }
        let ordered = times(resumes, phase)
        var violations: [ObjectiveViolation] = []
        for (objective, limit, actual) in [("p50", objectives.p50, summary.p50TimedOut ? Double.infinity : summary.p50),
                                           ("p95", objectives.p95, summary.p95TimedOut ? Double.infinity : summary.p95),
                                           ("max", objectives.max, summary.maxTimedOut ? Double.infinity : summary.max)] {
            guard let limit, let actual, actual > limit else { continue }
            violations.append(ObjectiveViolation(objective: objective, limit: limit, actual: actual.isFinite ? actual : nil,
                                                 instanceIDs: ordered.filter { $0.0 > limit }.reversed().map(\.1.id)))
        }
        let slowest = ordered.reversed().prefix(20).map { time, resume in
            ResumeRow(instanceID: resume.id, instanceType: resume.type, zone: resume.zone, mode: resume.mode,
                      startedAt: resume.startedAt, running: resume.running, statusOk: resume.statusOk, probe: resume.probe,
                      resumeSeconds: time.isFinite ? time : nil, outcome: resume.outcome, lastState: resume.lastState)
        }
        return PolicyReport(name: name, readiness: readiness, readinessPhase: phase, window: window, deadline: deadline,
                            objectives: objectives, summary: summary, byInstanceType: byType,
                            phases: resumes.isEmpty ? [] : phases, violations: violations, slowest: Array(slowest))
    }
}

extension String {
    func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
