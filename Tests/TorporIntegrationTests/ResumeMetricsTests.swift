import Foundation
import Testing
import TorporTestSupport
import TorporAWS
import TorporSigV4

/// What Prometheus sees of resume tracking, scraped from a real worker, and
/// the shipped dashboard and alert rules checked against the metric names
/// the code defines.
@Suite("Resume metrics: histograms per policy and phase, violations, in flight; ops files name real metrics")
struct ResumeMetricsTests {
    /// Every `torpor_…` sample in a scrape, as (name, labels, value).
    static func samples(_ body: String) -> [(name: String, labels: [String: String], value: Double)] {
        body.split(separator: "\n").compactMap { line -> (String, [String: String], Double)? in
            guard line.hasPrefix("torpor_"), let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { return nil }
            let head = line[..<space]
            guard let brace = head.firstIndex(of: "{") else { return (String(head), [:], value) }
            var labels: [String: String] = [:]
            for pair in head[head.index(after: brace)..<head.index(before: head.endIndex)].split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { continue }
                labels[String(parts[0])] = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
            return (String(head[..<brace]), labels, value)
        }
    }

    static func value(_ samples: [(name: String, labels: [String: String], value: Double)], _ name: String,
                      _ labels: [String: String]) -> Double? {
        samples.first { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }?.value
    }

    @Test("a worker's /metrics after a start job: resume histograms per policy and phase, a violation per slow resume and per percentile, none in flight")
    func scrape() async throws {
        let port = ResumeEndToEndTests.probePort()
        let setup = try ResumeEndToEndTests.setup(fleet: ResumeEndToEndTests.killFleet(port: port)) { queue in
            """
            queue: { path: \(queue) }
            worker: { concurrency: 1, lease: 5s, gracePeriod: 1s, pollInterval: 200ms, retryBase: 1s }
            fleet: { firstPoll: 1s, waitTimeout: 5m }
            log: { level: info }
            resume:
              pollInterval: 500ms
              policies:
                - name: web
                  targets: { tags: { Tier: web } }
                  readiness: { tcp: \(port) }
                  objectives: { p50: 100ms, max: 200ms }   # the worker's clock is real time: 1/10 of the simulator's
                - name: batch
                  targets: { tags: { Tier: batch } }
                  readiness: running
            """
        }
        defer { try? FileManager.default.removeItem(atPath: setup.directory) }
        try await withSimulator(speed: 10, arguments: ["--fleet", setup.fleetPath]) { simulator in
            let environment = ResumeEndToEndTests.awsEnvironment(simulator, queue: setup.queuePath)
            let log = setup.directory + "/worker.log"
            let worker = try WorkerReliabilityTests.startWorker(setup, environment: environment, extra: ["--metrics", "127.0.0.1:0"], log: log)
            defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL) } }
            let enqueued = try await torpor(["enqueue", "start", "--tag", "Job=resume", "--queue", setup.queuePath, "--output", "json"],
                                            environment: environment)
            #expect(enqueued.status == 0, "\(enqueued.stderr)")
            let settled = try await eventually(timeout: 45, every: .milliseconds(100)) {
                let rows = try await ResumeEndToEndTests.rows(setup.queuePath)
                return rows.count == 40 && rows.allSatisfy { $0.state != "tracking" }
            }
            try #require(settled, "resumes still in flight: \(ResumeEndToEndTests.log(log))")
            let rows = try await ResumeEndToEndTests.rows(setup.queuePath)

            let text = ResumeEndToEndTests.log(log)
            let address = try #require(text.firstRange(of: "http://127.0.0.1:").map { start in
                String(text[start.lowerBound...].prefix { !$0.isWhitespace })
            }, "no metrics address in the worker's log: \(text)")
            let scraped = try await CurlTransport().send(HTTPRequest(method: "GET", url: try RequestURL(parsing: address)))
            #expect(scraped.status == 200)
            let samples = Self.samples(scraped.bodyText)

            // One histogram observation per phase reached, per policy.
            for (policy, phases) in [("web", ["running", "status_ok", "probe"]), ("batch", ["running", "status_ok"])] {
                let mine = rows.filter { $0.policy == policy }
                for phase in phases {
                    let reached = mine.filter { row in
                        switch phase {
                        case "running": return row.runningAt != nil
                        case "status_ok": return row.statusOkAt != nil
                        default: return row.probeAt != nil
                        }
                    }.count
                    #expect(reached > 0)
                    #expect(Self.value(samples, "torpor_resume_seconds_count", ["policy": policy, "phase": phase]) == Double(reached),
                            "\(policy) \(phase)")
                    // Buckets are seconds, with the bounds the worker sets (25 s among them).
                    #expect(samples.contains { $0.name == "torpor_resume_seconds_bucket" && $0.labels["policy"] == policy
                        && $0.labels["phase"] == phase && $0.labels["le"].flatMap(Double.init) == 25 }, "\(policy) \(phase) buckets")
                }
                #expect(Self.value(samples, "torpor_resumes_in_flight", ["policy": policy]) == 0)
            }
            // Every web resume slower than max is a violation of its own (the
            // simulator draws them around 1.2 s of real time: nearly all); the
            // window's p50 went over once.
            let slow = rows.filter { $0.policy == "web" && ($0.probeAt ?? .infinity) - $0.acceptedAt > 0.2 }.count
            #expect(slow >= 15)
            #expect(Self.value(samples, "torpor_resume_objective_violations_total", ["policy": "web", "objective": "max"]) == Double(slow))
            #expect(Self.value(samples, "torpor_resume_objective_violations_total", ["policy": "web", "objective": "p50"]) == 1)
            // Batch has no objectives: nothing to violate.
            #expect(!samples.contains { $0.name == "torpor_resume_objective_violations_total" && $0.labels["policy"] == "batch" })
            #expect(ResumeEndToEndTests.log(log).contains("resume objective violated"))
            kill(worker.processIdentifier, SIGTERM)
            worker.waitUntilExit()
            #expect(worker.terminationStatus == 0)
        }
    }

    @Test("ops/grafana-dashboard.json and ops/prometheus-rules.yaml use only metric names the code defines")
    func opsFilesNameRealMetrics() throws {
        // The names the code gives swift-metrics, read from the sources.
        var defined = Set<String>()
        let sources = TestPaths.root.appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)?.compactMap { $0 as? URL } ?? []
        for file in files where file.pathExtension == "swift" {
            let text = try String(contentsOf: file, encoding: .utf8)
            for match in text.matches(of: /"(torpor_[a-z0-9_]+)"/) { defined.insert(String(match.1)) }
        }
        #expect(defined.contains("torpor_resume_seconds") && defined.contains("torpor_jobs"), "\(defined)")

        for path in ["ops/grafana-dashboard.json", "ops/prometheus-rules.yaml"] {
            let text = try String(contentsOf: TestPaths.root.appendingPathComponent(path), encoding: .utf8)
            let used = Set(text.matches(of: /torpor_[a-z0-9_]+/).map { String($0.0) })
            #expect(!used.isEmpty, "\(path) names no metric")
            for name in used {
                // Histograms are exported as _bucket, _count and _sum series.
                let base = name.replacing(/_(bucket|count|sum)$/, with: "")
                #expect(defined.contains(name) || defined.contains(base), "\(path) uses \(name), which Torpor does not export: \(defined.sorted())")
            }
        }
        let dashboard = try JSONSerialization.jsonObject(with: Data(contentsOf: TestPaths.root.appendingPathComponent("ops/grafana-dashboard.json")))
        let panels = try #require((dashboard as? [String: Any])?["panels"] as? [[String: Any]])
        #expect(panels.count >= 4)
    }
}
