import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TorporAWS
import TorporEC2
import TorporSigV4
import TorporTestSupport

/// The worker as an operator runs it, killed and restarted, against a
/// simulated fleet in its own process: jobs are never lost and instances
/// end in their right state.
@Suite("Worker reliability (torpor worker against torpor sim)", .serialized)
struct WorkerReliabilityTests {
    /// 400 instances tagged for the job (a quarter not configured for
    /// hibernation), 10 protected among them, 100 untagged bystanders.
    /// Transitions take tens of simulated seconds, so a job lasts long
    /// enough to be killed in the middle.
    static let fleet = """
    seed: 7
    region: us-east-1
    credentials:
      - { accessKeyId: AKIDTORPORSIMULATOR, secretAccessKey: torpor-simulator-secret-key }
    hibernateReadyAfter: 1m
    groups:
      - name: target
        count: 390
        tags: { Job: nightly }
        hibernationConfigured: 0.75
        timings:
          hibernate: { median: 40s, p95: 90s }
          stop: { median: 30s, p95: 60s }
      - name: guarded
        count: 10
        tags: { Job: nightly, "torpor:protect": "true" }
      - name: bystanders
        count: 100
        tags: { Job: other }
    """

    struct Setup {
        let directory: String
        let fleetPath: String
        let configPath: String
        let queuePath: String
    }

    static func setup() throws -> Setup {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("torpor-worker-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let fleetPath = directory + "/fleet.yaml"
        try fleet.write(toFile: fleetPath, atomically: true, encoding: .utf8)
        let configPath = directory + "/torpor.yaml"
        try """
        worker: { concurrency: 1, lease: 2s, gracePeriod: 1s, pollInterval: 200ms, retryBase: 1s }
        fleet: { firstPoll: 2s, waitTimeout: 5m }
        metrics: { enabled: false }
        log: { level: warning }
        """.write(toFile: configPath, atomically: true, encoding: .utf8)
        return Setup(directory: directory, fleetPath: fleetPath, configPath: configPath, queuePath: directory + "/queue.sqlite")
    }

    static func environment(_ simulator: SimulatorProcess, _ setup: Setup) -> [String: String] {
        isolatedEnvironment([
            "AWS_ACCESS_KEY_ID": SimulatorProcess.accessKeyID, "AWS_SECRET_ACCESS_KEY": SimulatorProcess.secret,
            "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_EC2": simulator.endpoint, "TORPOR_QUEUE": setup.queuePath,
        ])
    }

    /// Starts `torpor worker`; the caller kills or stops it.
    static func startWorker(_ setup: Setup, environment: [String: String], extra: [String] = [], log: String = "/dev/null") throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: TestPaths.torpor)
        process.arguments = ["worker", "--config", setup.configPath] + extra
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        if log != "/dev/null" { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        process.standardError = FileHandle(forWritingAtPath: log)
        try startProcess(process)
        return process
    }

    static func job(_ id: String, _ environment: [String: String]) async throws -> [String: Any] {
        let shown = try await torpor(["jobs", "show", id], environment: environment)
        return try #require(shown.json, "jobs show: \(shown.stderr)")
    }

    static func enqueueNightly(_ environment: [String: String]) async throws -> String {
        let enqueued = try await torpor(["enqueue", "stop", "--tag", "Job=nightly", "--hibernate", "--key", "nightly",
                                         "--max-attempts", "30", "--output", "json"], environment: environment)
        #expect(enqueued.status == 0, "\(enqueued.stderr)")
        return try #require(enqueued.json?["id"] as? String)
    }

    /// Every targeted instance in its right state, nothing else touched.
    static func checkFleet(_ simulator: SimulatorProcess) async throws {
        let ec2 = try simulator.client(maxAttempts: 3)
        let instances = try await ec2.describeInstances().all()
        for instance in instances {
            let job = instance.tag("Job")
            if job == "nightly" && instance.tag("torpor:protect") == nil {
                #expect(instance.state == .stopped, "\(instance.instanceID) should be stopped, is \(instance.state)")
                let expected = instance.hibernationConfigured ? "Client.UserInitiatedHibernate" : "Client.UserInitiatedShutdown"
                #expect(instance.stateReason?.code == expected, "\(instance.instanceID): \(String(describing: instance.stateReason))")
            } else {
                #expect(instance.state == .running, "\(instance.instanceID) (\(job ?? "-")) was touched: \(instance.state)")
            }
        }
        // The ground truth: no instance was ever started, and every stopped
        // instance stopped once.
        let events = try await simulator.events().filter { $0.kind == "state" }
        #expect(!events.contains { $0.to == "pending" }, "an instance was started")
        var stops: [String: Int] = [:]
        for event in events where event.to == "stopping" { stops[event.instanceID, default: 0] += 1 }
        #expect(stops.values.allSatisfy { $0 == 1 }, "an instance was stopped twice")
        #expect(stops.count == 390, "\(stops.count) instances stopped; the 390 unprotected targets should be")
    }

    @Test("SIGKILL at random moments, many times: the job still succeeds and every instance is right")
    func killedManyTimes() async throws {
        let setup = try Self.setup()
        defer { try? FileManager.default.removeItem(atPath: setup.directory) }
        try await withSimulator(speed: 4, arguments: ["--fleet", setup.fleetPath]) { simulator in
            let environment = Self.environment(simulator, setup)
            let id = try await Self.enqueueNightly(environment)
            var generator = SystemRandomNumberGenerator()
            for round in 1...6 {
                let worker = try Self.startWorker(setup, environment: environment)
                let lifetime = Double.random(in: 0.4...3.0, using: &generator)
                try await Task.sleep(for: .milliseconds(Int64(lifetime * 1000)))
                kill(worker.processIdentifier, SIGKILL)
                worker.waitUntilExit()
                #expect(worker.terminationReason == .uncaughtSignal, "round \(round): the worker was not killed")
                let state = try await Self.job(id, environment)["state"] as? String
                #expect(state != "dead", "round \(round): the job died")
            }
            // A last worker that is left alone finishes the job.
            let worker = try Self.startWorker(setup, environment: environment)
            defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL) } }
            let finished = try await eventually(timeout: 120, every: .milliseconds(100)) {
                (try await Self.job(id, environment)["state"] as? String) == "succeeded"
            }
            let job = try await Self.job(id, environment)
            #expect(finished, "job ended \(job["state"] ?? "?"): \(job["lastError"] ?? "")")
            let result = try #require(job["result"] as? [String: Any])
            let counts = try #require(result["counts"] as? [String: Int])
            #expect((counts["failed"] ?? 0) == 0, "\(counts)")
            kill(worker.processIdentifier, SIGTERM)
            worker.waitUntilExit()
            try await Self.checkFleet(simulator)
        }
    }

    @Test("SIGTERM during a job: exit 0, lease released, the next start finishes the job")
    func terminatedGracefully() async throws {
        let setup = try Self.setup()
        defer { try? FileManager.default.removeItem(atPath: setup.directory) }
        try await withSimulator(speed: 2, arguments: ["--fleet", setup.fleetPath]) { simulator in
            let environment = Self.environment(simulator, setup)
            let id = try await Self.enqueueNightly(environment)
            let worker = try Self.startWorker(setup, environment: environment)
            let running = try await eventually(timeout: 30, every: .milliseconds(100)) { (try await Self.job(id, environment)["state"] as? String) == "running" }
            #expect(running)
            kill(worker.processIdentifier, SIGTERM)
            let exited = try await eventually(timeout: 20, every: .milliseconds(100)) { !worker.isRunning }
            #expect(exited, "the worker did not exit after SIGTERM")
            if worker.isRunning { kill(worker.processIdentifier, SIGKILL) }
            worker.waitUntilExit()
            #expect(worker.terminationReason == .exit && worker.terminationStatus == 0)
            let afterStop = try await Self.job(id, environment)
            let state = afterStop["state"] as? String
            // Either it finished within the grace period, or its lease was
            // given back: queued again, no lease holder, attempt not counted.
            #expect(state == "succeeded" || (state == "queued" && afterStop["leaseOwner"] == nil && afterStop["attempts"] as? Int == 0),
                    "\(afterStop)")

            let next = try Self.startWorker(setup, environment: environment)
            defer { if next.isRunning { kill(next.processIdentifier, SIGKILL) } }
            let finished = try await eventually(timeout: 120, every: .milliseconds(100)) { (try await Self.job(id, environment)["state"] as? String) == "succeeded" }
            #expect(finished)
            kill(next.processIdentifier, SIGTERM)
            next.waitUntilExit()
            try await Self.checkFleet(simulator)
        }
    }

    @Test("a corrupt payload and an unknown kind end dead with their reason, and do not block other jobs")
    func poisonJobs() async throws {
        let setup = try Self.setup()
        defer { try? FileManager.default.removeItem(atPath: setup.directory) }
        try await withSimulator(speed: 20, arguments: ["--fleet", setup.fleetPath]) { simulator in
            let environment = Self.environment(simulator, setup)
            // Written straight into the queue's file, as a broken producer
            // (or a disk error) would leave them.
            let created = try await torpor(["jobs", "list"], environment: environment) // creates the database
            #expect(created.status == 0, "\(created.stderr)")
            let poison = """
            import sqlite3, sys, time
            db = sqlite3.connect(sys.argv[1])
            now = time.time()
            for id, kind, payload in [("job-poison-1", "fleet.stop", "{not json"), ("job-poison-2", "fleet.reboot", "{}")]:
                db.execute("INSERT INTO job (id, kind, payload, payloadVersion, priority, notBefore, attempts, maxAttempts, state, createdAt, updatedAt) VALUES (?, ?, ?, 1, 10, ?, 0, 5, 'queued', ?, ?)", (id, kind, payload, now, now, now))
            db.commit()
            """
            let inserted = try await runProcess("/usr/bin/env", ["python3", "-c", poison, setup.queuePath], environment: ProcessInfo.processInfo.environment)
            #expect(inserted.status == 0, "\(inserted.stderr)")
            let good = try await torpor(["enqueue", "stop", "--tag", "Job=other", "--output", "json"], environment: environment)
            let goodID = try #require(good.json?["id"] as? String)

            let worker = try Self.startWorker(setup, environment: environment)
            defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL) } }
            let done = try await eventually(timeout: 60, every: .milliseconds(100)) { (try await Self.job(goodID, environment)["state"] as? String) == "succeeded" }
            #expect(done)
            let corrupt = try await Self.job("job-poison-1", environment)
            #expect(corrupt["state"] as? String == "dead")
            #expect((corrupt["lastError"] as? String)?.contains("not valid JSON") == true, "\(corrupt)")
            let unknown = try await Self.job("job-poison-2", environment)
            #expect(unknown["state"] as? String == "dead")
            #expect((unknown["lastError"] as? String)?.contains("unknown job kind 'fleet.reboot'") == true, "\(unknown)")
            kill(worker.processIdentifier, SIGTERM)
            worker.waitUntilExit()
        }
    }

    @Test("/healthz answers and /metrics counts jobs, EC2 calls and instances, in Prometheus text format")
    func metrics() async throws {
        let setup = try Self.setup()
        defer { try? FileManager.default.removeItem(atPath: setup.directory) }
        try await withSimulator(speed: 40, arguments: ["--fleet", setup.fleetPath]) { simulator in
            let environment = Self.environment(simulator, setup)
            let enqueued = try await torpor(["enqueue", "stop", "--tag", "Job=other", "--output", "json"], environment: environment)
            let id = try #require(enqueued.json?["id"] as? String)
            let log = setup.directory + "/worker.log"
            let worker = try Self.startWorker(setup, environment: environment, extra: ["--metrics", "127.0.0.1:0"], log: log)
            defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL) } }
            let done = try await eventually(timeout: 60, every: .milliseconds(100)) { (try await Self.job(id, environment)["state"] as? String) == "succeeded" }
            #expect(done)

            // The worker says where it listens: "metrics on http://127.0.0.1:PORT/metrics".
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            let address = try #require(text.firstRange(of: "http://127.0.0.1:").map { start in
                String(text[start.lowerBound...].prefix { !$0.isWhitespace })
            }, "no metrics address in the worker's log: \(text)")
            let base = address.replacingOccurrences(of: "/metrics", with: "")
            let transport = CurlTransport()
            let health = try await transport.send(HTTPRequest(method: "GET", url: try RequestURL(parsing: base + "/healthz")))
            #expect(health.status == 200 && health.bodyText == "ok\n")
            let scraped = try await transport.send(HTTPRequest(method: "GET", url: try RequestURL(parsing: base + "/metrics")))
            #expect(scraped.status == 200)
            #expect(scraped.headers["Content-Type"]?.hasPrefix("text/plain") == true)
            let body = scraped.bodyText
            #expect(body.contains("torpor_jobs_finished_total{kind=\"fleet.stop\",state=\"succeeded\"} 1"), "\(body)")
            #expect(body.contains("torpor_ec2_calls_total{action=\"StopInstances\",outcome=\"success\"}"))
            #expect(body.contains("torpor_instances_total{action=\"stop\",outcome=\"stopped\"} 100"))
            #expect(body.contains("torpor_job_duration_seconds"))
            #expect(!body.contains(SimulatorProcess.secret))
            kill(worker.processIdentifier, SIGTERM)
            worker.waitUntilExit()
            #expect(worker.terminationStatus == 0)
        }
    }
}
