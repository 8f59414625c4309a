import Foundation
import Testing

/// The README's first command, as a newcomer runs it. Its simulator runs the
/// default fleet, whose probe ports (127.x.y.z:8080) belong to whichever
/// simulator binds them first: so it is one of the serialized simulator tests.
extension SimulatorEndToEndTests {
    @Test("torpor demo hibernates and resumes the simulated fleet through the queue, every outcome matching the ground truth, and ends with the resume report and its HTML file")
    func demo() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("torpor-demo-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let html = directory + "/resume.html"
        let result = try await runProcess(TestPaths.torpor, ["demo", "--report", html], environment: isolatedEnvironment(), timeout: 180)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let out = result.stdout

        // Both jobs succeeded and both sets of outcomes match the truth.
        #expect(out.components(separatedBy: "outcomes match the simulator's ground truth").count - 1 == 2, "\(out)")
        #expect(!out.contains("disagree"))
        #expect(out.components(separatedBy: ": succeeded").count - 1 == 2)

        // It ends with the resume report: after the jobs, one section per
        // policy that measured something, then the HTML file's path.
        let jobs = try #require(out.range(of: "== Jobs"))
        let resumes = try #require(out.range(of: "== Resume times"), "\(out)")
        #expect(jobs.lowerBound < resumes.lowerBound)
        let report = String(out[resumes.lowerBound...])
        #expect(report.contains("== web: readiness tcp 8080"))
        #expect(report.contains("== workers: readiness status-ok"))
        #expect(report.contains("HTML report: \(html)"))
        // The web tier's 120 instances all resumed and were measured.
        let webRow = report.components(separatedBy: "\n").first { $0.hasPrefix("all") }
        #expect(webRow?.split(separator: " ").dropFirst().first == "120", "\(report)")

        let page = try String(contentsOfFile: html, encoding: .utf8)
        #expect(page.contains("Torpor resume report") && page.contains("<svg"))
        #expect(!page.contains("src=\"http") && !page.contains("href=\"http"))
    }
}
