import Foundation
import Testing

/// The fidelity check as a test: 1,000 resumes at once on the
/// simulator (hibernated tiers with TCP and HTTP probes and status-check
/// readiness, cold-stopped ones), every measured phase held against the
/// simulator's ground truth. It runs `torpor-bench resume`, which does the
/// comparison and prints its figures; the benchmark's own verdict is for an
/// idle machine at real speed, so this test applies its own, with an
/// allowance for running beside the rest of the suite.
@Suite("Resume fidelity: 1,000 resumes against the simulator's ground truth")
struct ResumeFidelityTests {
    @Test("every phase of 1,000 resumes inside its stated error of the truth, within one poll interval; percentiles too; calls bounded")
    func thousandResumes() async throws {
        // At real speed, as the benchmark runs by default: sped up, a look
        // held up by the rest of the suite on two cores (up to a second was
        // seen) is that many times later in simulated time. About 140 s of
        // real time, alongside the other suites.
        let speed = 1.0, pollInterval = 2.0
        let loadSlack = 1.0
        let result = try await runProcess(TestPaths.bench, ["resume", "--instances", "1000", "--speed", "\(Int(speed))",
                                                            "--poll-interval", "\(Int(pollInterval))"],
                                          environment: ProcessInfo.processInfo.environment.merging(["TORPOR_BENCH_DEBUG": "1"]) { $1 },
                                          timeout: 400)
        // With TORPOR_BENCH_DEBUG the benchmark names every measurement
        // outside its bracket on standard error.
        let outside = result.stderr.split(separator: "\n").filter { $0.hasPrefix("outside:") }.prefix(10).joined(separator: "\n")
        let line = try #require(result.stdout.split(separator: "\n").last, "no output; stderr: \(result.stderr)")
        let figures = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        func number(_ key: String) throws -> Double { try #require((figures[key] as? NSNumber)?.doubleValue, "\(key) missing in \(line)") }

        #expect(try number("instances") == 1000)
        #expect(try number("started") == 1000)
        #expect(try number("poll_interval_s") == pollInterval)
        // Four phases for the probed (accepted, running, status ok, probe),
        // three for the others: nothing unmeasured, nothing outside its bracket.
        #expect(try number("phases_measured") == 3600)
        #expect(try number("unmeasured") == 0)
        #expect(try number("outside_bracket") == 0, "\(line)\n\(outside)")
        #expect(try number("timed_out") == 0)
        #expect(try number("failed") == 0)
        #expect(try number("max_error_s") <= pollInterval + loadSlack, "\(line)")
        #expect(try number("mean_error_s") <= pollInterval / 2, "\(line)")
        #expect(try number("max_percentile_error_s") <= pollInterval + loadSlack, "\(line)")
        // Bulk describes: 100 ids a call, so far fewer calls than instances.
        #expect(try number("calls") > 0)
        #expect(try number("calls_per_instance") < 1, "\(line)")
    }
}
