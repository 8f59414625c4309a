import Foundation
import Testing
@testable import TorporReports

/// A report built from a damaged row or a typo (a huge, infinite or NaN
/// time) renders: every formatter is total, none converts such a value to
/// an integer (which would trap).
@Suite("HTML report: huge and non-finite values")
struct HTMLReportHugeValueTests {
    static let odd: [Double] = [1e15, 1e19, 1e20, 9.3e18, -1e20, 1e300, -1e300, .greatestFiniteMagnitude,
                                .infinity, -.infinity, .nan]

    @Test("formatSeconds: huge values with an exponent, non-finite ones as a dash")
    func seconds() {
        for value in Self.odd { #expect(!HTMLReport.formatSeconds(value).isEmpty) }
        #expect(HTMLReport.formatSeconds(1e20) == "1e+20 s")
        #expect(HTMLReport.formatSeconds(-1e20) == "-1e+20 s")
        #expect(HTMLReport.formatSeconds(.nan) == "—")
        #expect(HTMLReport.formatSeconds(-.infinity) == "—")
        // Unchanged below the limit.
        #expect(HTMLReport.formatSeconds(3599.6) == "1h 00m 00s")
        #expect(HTMLReport.formatSeconds(1e9) == "277777h 46m 40s")
    }

    @Test("formatSpan: a huge window does not trap")
    func spans() {
        for value in Self.odd { #expect(!HTMLReport.formatSpan(value).isEmpty) }
        #expect(HTMLReport.formatSpan(1e20) == "1e+20 s")
        #expect(HTMLReport.formatSpan(86_400 * 1e15) == "8.64e+19 s")
        #expect(HTMLReport.formatSpan(.infinity) == "—")
        #expect(HTMLReport.formatSpan(7 * 86_400) == "7 days")
    }

    @Test("timestamps: a damaged start time reads as a dash")
    func timestamps() {
        for value in Self.odd {
            #expect(HTMLReport.formatTimestamp(value) == "—")
            #expect(HTMLReport.civil(value) == ("—", "—"))
        }
        #expect(HTMLReport.formatTimestamp(1_764_188_731) == "2025-11-26 20:25:31 UTC")
        // The far ends of what is a time still render as dates.
        #expect(HTMLReport.formatTimestamp(3e13).hasSuffix(" UTC"))
        #expect(HTMLReport.formatTimestamp(-3e13).hasSuffix(" UTC"))
    }

    @Test("tick labels and decimals of huge values")
    func ticksAndDecimals() {
        #expect(HTMLReport.tickLabel(1e20, step: 1e19) == "1e+20 s")
        #expect(HTMLReport.tickLabel(.infinity, step: 60) == "—")
        #expect(HTMLReport.tickLabel(3600, step: 600) == "1h")
        #expect(HTMLReport.decimal(1e20, places: 1) == "100000000000000000000")
        #expect(HTMLReport.decimal(-1e19, places: 0) == "-10000000000000000000")
        #expect(HTMLReport.decimal(.nan, places: 1) == "0")
    }

    @Test("a whole page from damaged rows and huge limits renders")
    func page() {
        let row = ResumeRow(instanceID: "i-0123456789abcdef0", instanceType: "m5.large", zone: "us-east-1a", mode: "hibernation",
                            startedAt: 1e300, running: .nan, statusOk: 1e20, probe: .infinity, resumeSeconds: 1e19, outcome: "complete")
        let nanStart = ResumeRow(instanceID: "i-0123456789abcdef1", instanceType: "m5.large", zone: "us-east-1a", mode: "cold",
                                 startedAt: .nan, running: 12, outcome: "timed-out")
        let policy = PolicyReport(
            name: "damaged", readiness: "running", readinessPhase: .running, window: 1e20, deadline: 1e19,
            objectives: ObjectiveLimits(p50: 1e19, p95: 1e20, max: .infinity),
            summary: ResumeStats(count: 2, completed: 1, timeouts: 1, p50: 1e19, p95: .nan, max: 1e300, objectivesMet: false),
            byInstanceType: [ResumeStats(instanceType: "m5.large", count: 2, p50: .infinity, objectivesMet: false)],
            phases: [PhaseDistribution(phase: .running, seconds: [12, 1e19, 1e300, .nan]),
                     PhaseDistribution(phase: .statusOk, seconds: [1e20])],
            violations: [ObjectiveViolation(objective: "p95", limit: 1e20, actual: 1e300, instanceIDs: ["i-0123456789abcdef0"]),
                         ObjectiveViolation(objective: "max", limit: .infinity, actual: .nan, instanceIDs: [])],
            slowest: [row, nanStart])
        // The same values, but nothing measured: the axis is the deadline.
        var empty = policy
        empty.name = "no-data"
        empty.phases = [PhaseDistribution(phase: .running, seconds: [])]
        empty.summary = ResumeStats(count: 1, timeouts: 1)
        let html = HTMLReport.render(ResumeReport(generatedAt: 1_764_188_731, since: -1e20, policies: [policy, empty]))
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<h2>damaged</h2>"))
        #expect(html.contains("1e+20 s"))
        #expect(html.contains("Resumes since —"))
        // The violations' actual values: an exponent, a dash; never hundreds of digits.
        #expect(html.contains("actual <strong class=\"bad-text\">1e+300 s</strong>"), "\(html)")
        #expect(html.contains("actual <strong class=\"bad-text\">—</strong>"))
        #expect(!html.contains(String(repeating: "0", count: 40)), "a huge number written out in full")
    }
}
