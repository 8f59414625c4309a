import Foundation
import Testing
import TorporPolicies
import TorporReports
import TorporResume

@Suite("Resume report builder")
struct ResumeReportBuilderTests {
    static let now = t0 + 86_400

    static func settings() -> ResumeSettings {
        var settings = ResumeSettings()
        settings.policies = [
            policy("web", tags: ["Tier": "web"], readiness: .tcp(port: 443), objectives: ResumeObjectives(p50: 25, max: 40),
                   window: 3600, deadline: 120),
            policy("db", tags: ["Tier": "db"], readiness: .statusOK, objectives: ResumeObjectives(p95: 90)),
            policy("idle", tags: ["Tier": "idle"], objectives: ResumeObjectives(max: 60)),
        ]
        return settings
    }

    @Test("one section per configured policy in order, then unconfigured policies with measurements, sorted")
    func sections() throws {
        let settings = Self.settings()
        let web = settings.policies[0], db = settings.policies[1]
        let records = [
            record("i-w1", policy: web, accepted: Self.now - 600, ready: 20),
            record("i-old", policy: policy("old", readiness: .http(url: "http://{ip}/up", status: 200)), accepted: Self.now - 600, ready: 5),
            record("i-d1", policy: db, accepted: Self.now - 600, ready: 50),
            record("i-f1", policy: ResumePolicy.fallback, accepted: Self.now - 600, ready: 70),
            record("i-r1", policy: policy("gone", readiness: .running), accepted: Self.now - 600, ready: 9),
        ]
        let report = ResumeReportBuilder(settings: settings, since: nil, now: Self.now).build(records)
        #expect(report.policies.map(\.name) == ["web", "db", "idle", "default", "gone", "old"])
        #expect(report.generatedAt == Self.now)
        #expect(report.since == nil)
        let byName = Dictionary(uniqueKeysWithValues: report.policies.map { ($0.name, $0) })

        // Configured: their own readiness, window, deadline and objectives.
        let webSection = try #require(byName["web"])
        #expect(webSection.readiness == "tcp 443")
        #expect(webSection.readinessPhase == .probe)
        #expect(webSection.window == 3600)
        #expect(webSection.deadline == 120)
        #expect(webSection.objectives == ObjectiveLimits(p50: 25, max: 40))
        // A configured policy with nothing measured is shown, empty.
        let idle = try #require(byName["idle"])
        #expect(idle.summary.count == 0)
        #expect(idle.summary.objectivesMet == nil)
        #expect(idle.byInstanceType.isEmpty)
        #expect(idle.slowest.isEmpty)

        // Unconfigured: readiness from the measurements, no objectives; the
        // fallback keeps its own defaults.
        let old = try #require(byName["old"])
        #expect(old.readiness == "http http://{ip}/up")
        #expect(old.readinessPhase == .probe)
        #expect(old.objectives.isEmpty)
        #expect(old.summary.count == 1)
        #expect(old.summary.objectivesMet == nil)
        #expect(byName["gone"]?.readiness == "running")
        #expect(byName["gone"]?.readinessPhase == .running)
        #expect(byName["default"]?.readiness == "status-ok")
        #expect(byName["default"]?.deadline == ResumePolicy.fallback.deadline)

        // --policy: just that one.
        let only = ResumeReportBuilder(settings: settings, since: nil, now: Self.now).build(records, only: "db")
        #expect(only.policies.map(\.name) == ["db"])
        #expect(only.policies.first?.summary.count == 1)
        #expect(ResumeReportBuilder(settings: settings, since: nil, now: Self.now).build(records, only: "gone").policies.map(\.name) == ["gone"])
    }

    @Test("counts, percentiles and modes per policy and per instance type; objectives met or not, per row")
    func perType() throws {
        let settings = Self.settings()
        let web = settings.policies[0]
        let at = Self.now - 1200
        let records = [
            // m5.large: 10, 20, 30 → p50 20, max 30: meets p50 ≤ 25 and max ≤ 40.
            record("i-1", policy: web, type: "m5.large", accepted: at, ready: 10),
            record("i-2", policy: web, type: "m5.large", mode: .cold, accepted: at + 1, ready: 30),
            record("i-3", policy: web, type: "m5.large", accepted: at + 2, ready: 20),
            // c5.xlarge: 24, 45 → p50 24 but max 45 > 40.
            record("i-4", policy: web, type: "c5.xlarge", accepted: at + 3, ready: 45),
            record("i-5", policy: web, type: "c5.xlarge", mode: .cold, accepted: at + 4, ready: 24),
            // a failure is counted apart; it is not a resume time.
            record("i-6", policy: web, type: "c5.xlarge", accepted: at + 5, ready: nil, state: .failed, lastState: "stopped",
                   detail: "went to stopped instead of running"),
        ]
        let report = ResumeReportBuilder(settings: settings, since: nil, now: Self.now).build(records)
        let section = try #require(report.policies.first { $0.name == "web" })
        // The whole policy: 10, 20, 24, 30, 45 → p50 rank 3 = 24, p95 rank 5 = 45.
        let summary = section.summary
        #expect(summary.instanceType == nil)
        #expect(summary.count == 5)
        #expect(summary.completed == 5)
        #expect(summary.failed == 1)
        #expect(summary.timeouts == 0)
        #expect(summary.inFlight == 0)
        #expect(summary.p50 == 24)
        #expect(summary.p95 == 45)
        #expect(summary.max == 45)
        #expect(summary.hibernationResumes == 4)
        #expect(summary.coldBoots == 2)
        #expect(summary.objectivesMet == false, "max 45 > 40")
        #expect(section.violations.map(\.objective) == ["max"])
        #expect(section.violations.first?.instanceIDs == ["i-4"])

        #expect(section.byInstanceType.map(\.instanceType) == ["c5.xlarge", "m5.large"])
        let c5 = section.byInstanceType[0], m5 = section.byInstanceType[1]
        #expect(m5.count == 3)
        #expect(m5.p50 == 20)
        #expect(m5.max == 30)
        #expect(m5.coldBoots == 1)
        #expect(m5.hibernationResumes == 2)
        #expect(m5.objectivesMet == true)
        #expect(c5.count == 2)
        #expect(c5.failed == 1)
        #expect(c5.p50 == 24)
        #expect(c5.max == 45)
        #expect(c5.objectivesMet == false)

        // Slowest first; the failure (no resume time) last.
        #expect(section.slowest.map(\.instanceID) == ["i-4", "i-2", "i-5", "i-3", "i-1", "i-6"])
        let slowest = try #require(section.slowest.first)
        #expect(slowest.resumeSeconds == 45)
        #expect(slowest.probe == 45)
        #expect(slowest.running == 22.5)
        #expect(slowest.outcome == "complete")
        #expect(slowest.lastState == nil)
        #expect(section.slowest.last?.lastState == "stopped: went to stopped instead of running")
        // The distributions: the probe phase of every resume that reached it.
        #expect(section.phases.first { $0.phase == .probe }?.seconds == [10, 20, 24, 30, 45])
        #expect(section.phases.first { $0.phase == .running }?.seconds == [5, 10, 12, 15, 22.5])
    }

    @Test("objectives met is true when met, nil without objectives or measurements")
    func objectivesMet() throws {
        let settings = Self.settings()
        let records = [
            record("i-1", policy: settings.policies[1], accepted: Self.now - 60, ready: 80),
            record("i-2", policy: policy("plain"), accepted: Self.now - 60, ready: 500),
        ]
        let report = ResumeReportBuilder(settings: settings, since: nil, now: Self.now).build(records)
        let byName = Dictionary(uniqueKeysWithValues: report.policies.map { ($0.name, $0) })
        #expect(byName["db"]?.summary.objectivesMet == true)
        #expect(byName["db"]?.byInstanceType.first?.objectivesMet == true)
        #expect(byName["db"]?.violations.isEmpty == true)
        #expect(byName["plain"]?.summary.objectivesMet == nil)
        #expect(byName["plain"]?.byInstanceType.first?.objectivesMet == nil)
        #expect(byName["idle"]?.summary.objectivesMet == nil)
    }

    @Test("timeouts: counted, slower than everything, percentiles past the deadline reported as such")
    func timeouts() throws {
        let settings = Self.settings()
        let db = settings.policies[1]
        let at = Self.now - 3000
        let records = [
            record("i-1", policy: db, accepted: at, ready: 30),
            record("i-2", policy: db, accepted: at, ready: nil, state: .timedOut, lastState: "running, status initializing"),
            record("i-3", policy: db, accepted: at, ready: 60),
        ]
        let section = try #require(ResumeReportBuilder(settings: settings, since: nil, now: Self.now).build(records)
            .policies.first { $0.name == "db" })
        #expect(section.summary.count == 3)
        #expect(section.summary.timeouts == 1)
        #expect(section.summary.completed == 2)
        #expect(section.summary.p50 == 60)
        #expect(section.summary.p50TimedOut == false)
        #expect(section.summary.p95 == nil)
        #expect(section.summary.p95TimedOut == true)
        #expect(section.summary.max == nil)
        #expect(section.summary.maxTimedOut == true)
        #expect(section.summary.objectivesMet == false)
        #expect(section.violations.first?.instanceIDs == ["i-2"])
        #expect(section.slowest.map(\.instanceID) == ["i-2", "i-3", "i-1"])
        #expect(section.slowest.first?.outcome == "timed-out")
        #expect(section.slowest.first?.lastState == "running, status initializing")
    }

    @Test("window: each policy's own by default, `since` instead when given")
    func window() throws {
        let settings = Self.settings()
        let web = settings.policies[0], db = settings.policies[1]
        let records = [
            // web's window is 1 h: 2 h ago is out, 30 min ago is in.
            record("i-w-old", policy: web, accepted: Self.now - 7200, ready: 10),
            record("i-w-new", policy: web, accepted: Self.now - 1800, ready: 20),
            // db's is 7 d: 2 d ago is in, 8 d ago out.
            record("i-d-in", policy: db, accepted: Self.now - 2 * 86_400, ready: 30),
            record("i-d-out", policy: db, accepted: Self.now - 8 * 86_400, ready: 40),
        ]
        let builder = ResumeReportBuilder(settings: settings, since: nil, now: Self.now)
        #expect(builder.earliest == Self.now - 7 * 86_400)
        let report = builder.build(records)
        let byName = Dictionary(uniqueKeysWithValues: report.policies.map { ($0.name, $0) })
        #expect(byName["web"]?.slowest.map(\.instanceID) == ["i-w-new"])
        #expect(byName["web"]?.window == 3600)
        #expect(byName["db"]?.slowest.map(\.instanceID) == ["i-d-in"])

        let since = Self.now - 3 * 3600
        let sinceBuilder = ResumeReportBuilder(settings: settings, since: since, now: Self.now)
        #expect(sinceBuilder.earliest == since)
        let sinceReport = sinceBuilder.build(records)
        #expect(sinceReport.since == since)
        let bySince = Dictionary(uniqueKeysWithValues: sinceReport.policies.map { ($0.name, $0) })
        #expect(bySince["web"]?.slowest.map(\.instanceID) == ["i-w-new", "i-w-old"])
        #expect(abs((bySince["web"]?.window ?? 0) - 3 * 3600) < 1e-6, "now - since")
        #expect(bySince["db"]?.slowest.isEmpty == true)
        #expect(bySince["db"]?.summary.count == 0)
    }

    @Test("in-flight resumes: counted apart, unless their readiness was already seen")
    func inFlight() throws {
        let settings = Self.settings()
        let web = settings.policies[0]
        let at = Self.now - 100
        let records = [
            record("i-1", policy: web, accepted: at, ready: 15),
            record("i-2", policy: web, accepted: at, ready: nil, state: .tracking, lastState: "pending"),
            record("i-3", policy: web, accepted: at, ready: nil, state: .tracking, lastState: "running"),
            // Ready, its status checks still awaited: a resume time already.
            record("i-4", policy: web, accepted: at, ready: 35, state: .tracking),
        ]
        let section = try #require(ResumeReportBuilder(settings: settings, since: nil, now: Self.now).build(records)
            .policies.first { $0.name == "web" })
        #expect(section.summary.inFlight == 2)
        #expect(section.summary.count == 2)
        #expect(section.summary.completed == 2)
        #expect(section.summary.p50 == 15)
        #expect(section.summary.max == 35)
        #expect(section.summary.objectivesMet == true)
        #expect(section.byInstanceType.first?.inFlight == 2)
        #expect(Set(section.slowest.map(\.instanceID)) == ["i-1", "i-4"], "unready in-flight resumes are not in the table")
    }

    @Test("resumes still marked in flight a minute past their deadline are counted unfollowed, not in flight")
    func unfollowed() throws {
        let settings = Self.settings()
        let web = settings.policies[0] // deadline 120 s
        let records = [
            record("i-now", policy: web, accepted: Self.now - 100, ready: nil, state: .tracking, lastState: "pending"),
            // 30 s past its deadline: a tracker may be about to settle it.
            record("i-late", policy: web, accepted: Self.now - 150, ready: nil, state: .tracking, lastState: "running"),
            // An hour past: nobody follows it.
            record("i-lost", policy: web, accepted: Self.now - 3720, ready: nil, state: .tracking, lastState: "pending"),
            record("i-lost2", policy: web, type: "c5.large", accepted: Self.now - 1000, ready: nil, state: .tracking),
        ]
        let report = ResumeReportBuilder(settings: settings, since: Self.now - 7200, now: Self.now).build(records)
        let section = try #require(report.policies.first { $0.name == "web" })
        #expect(section.summary.inFlight == 2)
        #expect(section.summary.unfollowed == 2)
        #expect(section.summary.count == 0)
        #expect(section.byInstanceType.first { $0.instanceType == "c5.large" }?.unfollowed == 1)
        #expect(section.byInstanceType.first { $0.instanceType == "m5.large" }?.unfollowed == 1)
        #expect(section.byInstanceType.first { $0.instanceType == "m5.large" }?.inFlight == 2)
    }
}
