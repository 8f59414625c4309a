import Foundation
import Testing
import TorporPolicies
import TorporReports
import TorporResume

@Suite("Resume statistics")
struct ResumeStatisticsTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let values: [Double]
        let p: Double
        let expected: Double?
        var testDescription: String { "p\(p) of \(values.count) values" }
    }

    /// Expectations worked out by hand: the nearest rank is ⌈p·n⌉ (at least
    /// 1), and the answer the value of that rank, never an interpolation.
    static let cases: [Case] = [
        Case(values: [], p: 0.5, expected: nil),
        Case(values: [7], p: 0.5, expected: 7),
        Case(values: [7], p: 0.95, expected: 7),
        Case(values: [7], p: 1, expected: 7),
        // n = 2: p50 → rank 1, p95 → rank ⌈1.9⌉ = 2.
        Case(values: [10, 20], p: 0.5, expected: 10),
        Case(values: [10, 20], p: 0.95, expected: 20),
        // n = 3: p50 → rank ⌈1.5⌉ = 2; p0 → rank 1.
        Case(values: [10, 20, 30], p: 0.5, expected: 20),
        Case(values: [10, 20, 30], p: 0, expected: 10),
        // n = 4: p50 → rank 2 (the lower middle, not 25).
        Case(values: [10, 20, 30, 40], p: 0.5, expected: 20),
        Case(values: [10, 20, 30, 40], p: 0.75, expected: 30),
        Case(values: [10, 20, 30, 40], p: 0.76, expected: 40),
        // n = 10: p50 → rank 5, p95 → rank ⌈9.5⌉ = 10, p90 → rank 9.
        Case(values: (1...10).map(Double.init), p: 0.5, expected: 5),
        Case(values: (1...10).map(Double.init), p: 0.9, expected: 9),
        Case(values: (1...10).map(Double.init), p: 0.95, expected: 10),
        // n = 20: p95 → rank 19 exactly (not 20: 0.95·20 must not round up past 19).
        Case(values: (1...20).map { Double($0) * 1.5 }, p: 0.95, expected: 28.5),
        Case(values: (1...20).map { Double($0) * 1.5 }, p: 0.5, expected: 15),
        // n = 100: p95 → rank 95.
        Case(values: (1...100).map(Double.init), p: 0.95, expected: 95),
        Case(values: (1...100).map(Double.init), p: 1, expected: 100),
        // A timeout is the slowest: it is the maximum.
        Case(values: [3, 4, .infinity], p: 1, expected: .infinity),
        Case(values: [3, 4, .infinity], p: 0.5, expected: 4),
    ]

    @Test("nearest-rank percentiles of small known sets", arguments: cases)
    func percentile(_ c: Case) {
        #expect(ResumeStatistics.percentile(c.values, c.p) == c.expected)
    }

    @Test("resume times: completed and ready in-flight ones by their readiness, timeouts as infinitely slow, failures and unready in-flight left out")
    func resumeTimes() {
        let web = policy("web", readiness: .tcp(port: 443))
        let records = [
            record("i-a", policy: web, ready: 12),
            record("i-b", policy: web, ready: nil, state: .timedOut, lastState: "running, probe refused"),
            record("i-c", policy: web, ready: nil, state: .failed, detail: "went to stopped"),
            record("i-d", policy: web, ready: 8, state: .tracking),
            record("i-e", policy: web, ready: nil, state: .tracking),
        ]
        let times = ResumeStatistics.resumeTimes(records)
        #expect(times.map(\.record.instanceID) == ["i-a", "i-b", "i-d"])
        #expect(times.map(\.seconds) == [12, .infinity, 8])
        // Held to the readiness phase (the probe), not to running.
        #expect(records[0].resumeSeconds == 12)
        #expect(records[0].seconds(to: .running) == 6)
    }

    @Test("violations: each objective over its limit, with exactly the instances slower than the limit, slowest first")
    func violations() throws {
        let p = policy("web")
        // Sorted: 10, 20, 30, 40, timeout. p50 = rank 3 = 30; p95 = rank 5 = timeout; max = timeout.
        let records = [
            record("i-c", policy: p, ready: 30),
            record("i-a", policy: p, ready: 10),
            record("i-e", policy: p, ready: nil, state: .timedOut),
            record("i-b", policy: p, ready: 20),
            record("i-d", policy: p, ready: 40),
            record("i-f", policy: p, ready: nil, state: .failed),
        ]
        let violations = ResumeStatistics.violations(records, objectives: ResumeObjectives(p50: 25, p95: 60, max: 35))
        #expect(violations.map(\.objective) == ["p50", "p95", "max"])
        let byName = Dictionary(uniqueKeysWithValues: violations.map { ($0.objective, $0) })
        let p50 = try #require(byName["p50"])
        #expect(p50.limit == 25)
        #expect(p50.actual == 30)
        #expect(p50.instanceIDs == ["i-e", "i-d", "i-c"])
        let p95 = try #require(byName["p95"])
        #expect(p95.actual == nil, "the percentile falls on a timeout")
        #expect(p95.instanceIDs == ["i-e"])
        let max = try #require(byName["max"])
        #expect(max.actual == nil)
        #expect(max.instanceIDs == ["i-e", "i-d"])
    }

    @Test("objectives met: no violation, a value exactly at the limit is not over it")
    func met() {
        let p = policy("web")
        let records = [10.0, 20, 30, 40].enumerated().map { record("i-\($0.offset)", policy: p, ready: $0.element) }
        // p50 = 20 (rank 2), p95 = 40, max = 40.
        #expect(ResumeStatistics.violations(records, objectives: ResumeObjectives(p50: 20, p95: 40, max: 40)).isEmpty)
        #expect(ResumeStatistics.violations(records, objectives: ResumeObjectives()).isEmpty)
        let over = ResumeStatistics.violations(records, objectives: ResumeObjectives(p50: 19.9))
        #expect(over.map(\.objective) == ["p50"])
        #expect(over.first?.instanceIDs == ["i-3", "i-2", "i-1"])
        #expect(ResumeStatistics.violations([], objectives: ResumeObjectives(p50: 1, p95: 1, max: 1)).isEmpty)
    }

    @Test("a timeout alone violates max and every percentile")
    func onlyTimeouts() {
        let records = [record("i-x", ready: nil, state: .timedOut)]
        let violations = ResumeStatistics.violations(records, objectives: ResumeObjectives(p50: 600, p95: 600, max: 600))
        #expect(violations.map(\.objective) == ["p50", "p95", "max"])
        #expect(violations.allSatisfy { $0.instanceIDs == ["i-x"] && $0.actual == nil })
    }

    @Test("resume mode from the state reason of the stop before the start")
    func mode() {
        #expect(ResumeMode(stateReasonCode: "Client.UserInitiatedHibernate") == .hibernation)
        #expect(ResumeMode(stateReasonCode: "Server.SpotInstanceHibernate") == .hibernation)
        #expect(ResumeMode(stateReasonCode: "Client.UserInitiatedShutdown") == .cold)
        #expect(ResumeMode(stateReasonCode: "Server.SpotInstanceShutdown") == .cold)
        #expect(ResumeMode(stateReasonCode: nil) == .cold)
    }
}
