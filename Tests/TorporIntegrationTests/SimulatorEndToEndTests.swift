import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import Testing
import TorporAWS
import TorporEC2
import TorporSigV4
import TorporTestSupport

/// `torpor sim` running as a process on an ephemeral loopback port. Unless
/// `watchdog` is false it runs under a small Python wrapper that stops it
/// when our end of its standard input closes, so that it cannot outlive a
/// crashed test run; it is terminated when this object goes away.
final class SimulatorProcess: @unchecked Sendable {
    static let accessKeyID = "AKIDTORPORSIMULATOR"
    static let secret = "torpor-simulator-secret-key"
    static let wrapper = """
    import signal, subprocess, sys, threading
    child = subprocess.Popen(sys.argv[1:])
    def stop(*_):
        if child.poll() is None: child.terminate()
    signal.signal(signal.SIGTERM, stop)
    threading.Thread(target=lambda: (sys.stdin.read(), stop()), daemon=True).start()
    sys.exit(child.wait())
    """

    let process = Process()
    private let input = Pipe()
    let endpoint: String
    let port: Int
    let stderrPath: String

    init(speed: Double = 10, arguments: [String] = [], watchdog: Bool = true, startupTimeout: TimeInterval = 60) throws {
        let simArguments = ["sim", "--port", "0", "--speed", String(speed)] + arguments
        if watchdog {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", Self.wrapper, TestPaths.torpor] + simArguments
        } else {
            process.executableURL = URL(fileURLWithPath: TestPaths.torpor)
            process.arguments = simArguments
        }
        process.environment = isolatedEnvironment()
        process.standardInput = input
        stderrPath = FileManager.default.temporaryDirectory.appendingPathComponent("torpor-sim-\(UUID().uuidString).log").path
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        let output = Pipe()
        process.standardOutput = output
        try startProcess(process)

        let line = Mutex<String?>(nil)
        let ready = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            var buffer = Data()
            while !buffer.contains(0x0A) {
                let chunk = output.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                buffer.append(chunk)
            }
            line.withLock { $0 = String(decoding: buffer, as: UTF8.self).split(separator: "\n").first.map(String.init) }
            ready.signal()
        }
        if ready.wait(timeout: .now() + startupTimeout) == .timedOut {
            Self.stop(process, input)
            throw TestProcessError.timedOut("torpor sim did not print its listening line")
        }
        guard let first = line.withLock({ $0 }), first.hasPrefix("listening on http://127.0.0.1:"),
              let port = Int(first.dropFirst("listening on http://127.0.0.1:".count)) else {
            Self.stop(process, input)
            let log = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
            throw TestProcessError.noOutput("torpor sim printed '\(line.withLock { $0 } ?? "nothing")': \(log)")
        }
        self.port = port
        endpoint = "http://127.0.0.1:\(port)"
    }

    /// Starts one off the cooperative pool.
    static func start(speed: Double = 10, arguments: [String] = [], watchdog: Bool = true) async throws -> SimulatorProcess {
        try await offPool { try SimulatorProcess(speed: speed, arguments: arguments, watchdog: watchdog) }
    }

    /// Closes its input and sends SIGTERM, then waits (at most 15 s before SIGKILL) for the exit.
    func stop() { Self.stop(process, input) }

    static func stop(_ process: Process, _ input: Pipe) {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        let deadline = Date().addingTimeInterval(15)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    func stopOffPool() async {
        _ = try? await offPool { self.stop() }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: stderrPath)
    }

    func client(secret: String = SimulatorProcess.secret, maxAttempts: Int = 1) throws -> EC2Client {
        let location = ServiceLocation(region: "us-east-1", endpoint: try RequestURL(parsing: endpoint), endpointSource: "test")
        let aws = AWSQueryClient(service: "ec2", apiVersion: EC2Client.apiVersion, location: location,
                                 credentials: StaticCredentialProvider(AWSCredentials(accessKeyID: Self.accessKeyID, secretAccessKey: secret)),
                                 transport: CurlTransport(),
                                 retryPolicy: RetryPolicy(maxAttempts: maxAttempts, baseDelay: .milliseconds(10)))
        return EC2Client(aws: aws)
    }

    /// A plain HTTP request to the simulator (the control API, or unsigned EC2 calls).
    func http(_ method: String, _ path: String, body: String = "", headers: HTTPHeaders = HTTPHeaders()) async throws -> HTTPResponse {
        let request = HTTPRequest(method: method, url: try RequestURL(parsing: endpoint + path), headers: headers,
                                  body: Array(body.utf8), timeout: .seconds(30))
        return try await CurlTransport().send(request)
    }

    struct Event: Decodable {
        let sequence: Int
        let time: Double
        let instanceID: String
        let kind: String
        let from: String
        let to: String
        let cause: String
    }

    func events(instance: String? = nil) async throws -> [Event] {
        let response = try await http("GET", "/_sim/events" + (instance.map { "?instance=\($0)" } ?? ""))
        #expect(response.status == 200)
        return try JSONDecoder().decode([Event].self, from: Data(response.body))
    }

    func setFaults(_ json: String) async throws {
        let response = try await http("POST", "/_sim/faults", body: json, headers: ["Content-Type": "application/json"])
        #expect(response.status == 200, "\(response.bodyText)")
    }
}

/// Runs `body` with a fresh simulator and stops it afterwards, whatever happens.
func withSimulator<T>(speed: Double = 10, arguments: [String] = [], _ body: (SimulatorProcess) async throws -> T) async throws -> T {
    let sim = try await SimulatorProcess.start(speed: speed, arguments: arguments)
    do {
        let result = try await body(sim)
        await sim.stopOffPool()
        return result
    } catch {
        await sim.stopOffPool()
        throw error
    }
}

/// Connects to `address:port` over TCP: 0 when accepted, else errno.
func tcpConnect(_ address: String, _ port: UInt16) -> Int32 {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return errno }
    defer { close(descriptor) }
    var socketAddress = sockaddr_in()
    socketAddress.sin_family = sa_family_t(AF_INET)
    socketAddress.sin_port = port.bigEndian
    guard inet_pton(AF_INET, address, &socketAddress.sin_addr) == 1 else { return EINVAL }
    let result = withUnsafePointer(to: &socketAddress) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    return result == 0 ? 0 : errno
}

/// The first page of a describe in pages of 5.
func firstPage(_ ec2: EC2Client) async throws -> Page<EC2Instance>? {
    var pages = ec2.describeInstances(maxResults: 5).makeAsyncIterator()
    return try await pages.next()
}

/// Environment for boto3: the machine's (for Python's paths) without its AWS settings.
func botoEnvironment() -> [String: String] {
    var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("AWS_") }
    environment["AWS_EC2_METADATA_DISABLED"] = "true"
    environment["AWS_CONFIG_FILE"] = "/dev/null"
    environment["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
    return environment
}

/// One simulator at a time: the default fleet's probe ports (127.x.y.z:8080)
/// belong to whichever simulator binds them first.
@Suite("torpor sim end to end", .serialized)
struct SimulatorEndToEndTests {
    // MARK: Torpor's own client

    @Test("describe in pages of 100: 3 pages, 300 distinct instances")
    func paginatedDescribe() async throws {
        try await withSimulator { sim in
            let ec2 = try sim.client()
            var pages = 0
            var ids: [String] = []
            for try await page in ec2.describeInstances(maxResults: 100) {
                pages += 1
                #expect(page.items.count == 100)
                #expect(page.requestID != nil)
                ids += page.items.map(\.instanceID)
            }
            #expect(pages == 3)
            #expect(ids.count == 300 && Set(ids).count == 300)
        }
    }

    @Test("hibernation: refused for an unconfigured instance, accepted for configured ones")
    func hibernationRules() async throws {
        try await withSimulator { sim in
            let ec2 = try sim.client()
            // The web group (Team=storefront; prod-web is Tier=web too, and all configured).
            let web = [EC2Filter(name: "tag:Team", values: ["storefront"]), EC2Filter(name: "instance-state-name", values: ["running"])]
            let unconfigured = try await ec2.describeInstances(filters: web + [EC2Filter(name: "hibernation-options.configured", values: ["false"])]).all()
            let configured = try await ec2.describeInstances(filters: web + [EC2Filter(name: "hibernation-options.configured", values: ["true"])]).all()
            #expect(unconfigured.count == 12 && configured.count == 108)
            let bad = try #require(unconfigured.first)
            do {
                _ = try await ec2.stopInstances(ids: [bad.instanceID], hibernate: true)
                Issue.record("hibernating an unconfigured instance was accepted")
            } catch let error as AWSServiceError {
                #expect(error.code == "UnsupportedHibernationConfiguration")
                #expect(error.httpStatus == 400)
                #expect(error.message.contains(bad.instanceID))
            }
            let good = configured.prefix(2).map(\.instanceID)
            let result = try await ec2.stopInstances(ids: good, hibernate: true)
            #expect(result.changes.map(\.instanceID) == good)
            #expect(result.changes.allSatisfy { $0.previousState == .running && $0.currentState == .stopping })
            let after = try await ec2.describeInstances(ids: [bad.instanceID]).all()
            #expect(after.first?.state == .running)
        }
    }

    @Test("a wrong secret is AuthFailure with HTTP 401")
    func wrongSecret() async throws {
        try await withSimulator { sim in
            let ec2 = try sim.client(secret: "not-the-secret")
            do {
                _ = try await ec2.describeInstances().all()
                Issue.record("a request signed with the wrong secret was accepted")
            } catch let error as AWSServiceError {
                #expect(error.code == "AuthFailure")
                #expect(error.httpStatus == 401)
            }
        }
    }

    @Test("ground truth: hibernated instances go running -> stopping -> stopped, caused by the StopInstances request")
    func groundTruth() async throws {
        try await withSimulator(speed: 50) { sim in
            let ec2 = try sim.client()
            let configured = try await ec2.describeInstances(filters: [
                EC2Filter(name: "tag:Tier", values: ["web"]), EC2Filter(name: "hibernation-options.configured", values: ["true"]),
            ]).all()
            let ids = configured.prefix(3).map(\.instanceID)
            let stop = try await ec2.stopInstances(ids: ids, hibernate: true)
            let requestID = try #require(stop.requestID)
            // web hibernates in 35 s median (+16 s for 8 GiB): about a second of real time at 50x.
            let stopped = try await eventually(timeout: 30, every: .milliseconds(100)) {
                try await ec2.describeInstances(ids: ids).all().allSatisfy { $0.state == .stopped }
            }
            #expect(stopped)
            let described = try await ec2.describeInstances().all()
            #expect(described.count == 300)
            let events = try await sim.events()
            for id in ids {
                let states = events.filter { $0.instanceID == id && $0.kind == "state" }
                #expect(states.map { "\($0.from)->\($0.to)" } == ["running->stopping", "stopping->stopped"])
                #expect(states.first?.cause == requestID)
                #expect(states.last?.cause == "scheduled")
                if let first = states.first, let last = states.last {
                    #expect(last.time - first.time >= 16, "hibernation of 8 GiB took \(last.time - first.time) s")
                }
                let one = try await sim.events(instance: id)
                #expect(one.map(\.sequence) == events.filter { $0.instanceID == id }.map(\.sequence))
            }
            // Describe agrees with the last state event of every instance (initial state when none).
            var lastState: [String: String] = [:]
            for event in events where event.kind == "state" { lastState[event.instanceID] = event.to }
            for instance in described {
                let expected = lastState[instance.instanceID] ?? (instance.tag("Tier") == "ci" ? "stopped" : "running")
                #expect(instance.state.name == expected, "\(instance.instanceID)")
            }
            #expect(Set(lastState.keys) == Set(ids))
        }
    }

    @Test("throttling: a burst of StartInstances dry runs is partly refused, and passes again after the refill")
    func throttling() async throws {
        // At 2x the StartInstances bucket (5, refilled 2 a simulated second)
        // gains 4 tokens a real second: the burst outruns it even when a
        // loaded machine spreads the 40 calls over a few seconds.
        try await withSimulator(speed: 2) { sim in
            let ec2 = try sim.client(maxAttempts: 1)
            let id = try #require(try await ec2.describeInstances(filters: [EC2Filter(name: "tag:Tier", values: ["ci"])]).all().first?.instanceID)
            let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<40 {
                    group.addTask {
                        do {
                            let result = try await ec2.startInstances(ids: [id], dryRun: true)
                            return result.dryRunPermitted ? "permitted" : "changed"
                        } catch let error as AWSServiceError {
                            return error.code + " \(error.httpStatus)"
                        }
                    }
                }
                var all: [String] = []
                for try await outcome in group { all.append(outcome) }
                return all
            }
            let throttled = outcomes.filter { $0 == "RequestLimitExceeded 503" }.count
            let permitted = outcomes.filter { $0 == "permitted" }.count
            #expect(throttled + permitted == 40, "\(outcomes)")
            #expect(throttled > 0 && permitted >= 5, "\(permitted) permitted, \(throttled) throttled")
            // 2 tokens per simulated second: at 2x, 1.5 real seconds refill the bucket.
            try await Task.sleep(for: .milliseconds(1500))
            #expect(try await ec2.startInstances(ids: [id], dryRun: true).dryRunPermitted)
            let stats = try await sim.http("GET", "/_sim/stats")
            let document = try #require(try JSONSerialization.jsonObject(with: Data(stats.body)) as? [String: Any])
            #expect((document["throttled"] as? [String: Int])?["StartInstances"] == throttled)
        }
    }

    // MARK: boto3

    @Test("boto3: pages, hibernation refusal, status, spot prices, instance types, wrong secret")
    func boto3() async throws {
        try await withSimulator { sim in
            let script = """
            import boto3, botocore, json, sys
            from botocore.config import Config
            config = Config(retries={"max_attempts": 1, "mode": "standard"})
            def client(secret):
                return boto3.client("ec2", endpoint_url=sys.argv[1], region_name="us-east-1",
                                    aws_access_key_id="AKIDTORPORSIMULATOR", aws_secret_access_key=secret, config=config)
            ec2 = client("torpor-simulator-secret-key")
            out = {}
            pages, ids = 0, []
            for page in ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 100}):
                pages += 1
                ids += [i["InstanceId"] for r in page["Reservations"] for i in r["Instances"]]
            out["pages"], out["ids"] = pages, ids
            unconfigured = ec2.describe_instances(Filters=[{"Name": "tag:Tier", "Values": ["web"]},
                                                           {"Name": "hibernation-options.configured", "Values": ["false"]}])
            victim = unconfigured["Reservations"][0]["Instances"][0]
            out["victim"] = victim["InstanceId"]
            out["victimConfigured"] = victim["HibernationOptions"]["Configured"]
            try:
                ec2.stop_instances(InstanceIds=[victim["InstanceId"]], Hibernate=True)
                out["hibernateError"] = None
            except botocore.exceptions.ClientError as e:
                out["hibernateError"] = e.response["Error"]["Code"]
            status = ec2.describe_instance_status(InstanceIds=ids[:5], IncludeAllInstances=True)
            out["status"] = [[s["InstanceId"], s["InstanceState"]["Name"], s["InstanceStatus"]["Status"], s["SystemStatus"]["Status"]]
                             for s in status["InstanceStatuses"]]
            spot = ec2.describe_spot_price_history(InstanceTypes=["m5.large"], ProductDescriptions=["Linux/UNIX"])
            out["spot"] = [[p["InstanceType"], p["AvailabilityZone"], p["SpotPrice"], p["Timestamp"].isoformat()]
                           for p in spot["SpotPriceHistory"]]
            types = ec2.describe_instance_types(Filters=[{"Name": "hibernation-supported", "Values": ["false"]}])
            out["noHibernation"] = sorted(t["InstanceType"] for t in types["InstanceTypes"])
            m5 = ec2.describe_instance_types(InstanceTypes=["m5.large"])["InstanceTypes"][0]
            out["m5"] = [m5["HibernationSupported"], m5["MemoryInfo"]["SizeInMiB"], m5["VCpuInfo"]["DefaultVCpus"]]
            try:
                client("wrong-secret").describe_instances()
                out["authError"] = None
            except botocore.exceptions.ClientError as e:
                out["authError"] = e.response["Error"]["Code"]
                out["authStatus"] = e.response["ResponseMetadata"]["HTTPStatusCode"]
            print(json.dumps(out))
            """
            let result = try await runProcess("/usr/bin/env", ["python3", "-c", script, sim.endpoint], environment: botoEnvironment())
            #expect(result.status == 0, "\(result.stderr)")
            let out = try #require(result.json, "\(result.stdout) \(result.stderr)")
            #expect(out["pages"] as? Int == 3)
            let ids = try #require(out["ids"] as? [String])
            #expect(ids.count == 300 && Set(ids).count == 300)
            #expect(out["victimConfigured"] as? Bool == false)
            #expect(out["hibernateError"] as? String == "UnsupportedHibernationConfiguration")
            let status = try #require(out["status"] as? [[String]])
            #expect(status.count == 5)
            #expect(status.allSatisfy { $0[1] == "running" && $0[2] == "ok" && $0[3] == "ok" }, "\(status)")
            #expect(Set(status.map { $0[0] }) == Set(ids.prefix(5)))
            let spot = try #require(out["spot"] as? [[String]])
            #expect(spot.count == 1, "\(spot)")
            #expect(spot.first?[0] == "m5.large" && spot.first?[1] == "us-east-1a")
            #expect(spot.first.flatMap { Double($0[2]) } == 0.035)
            #expect(out["noHibernation"] as? [String] == ["p3.2xlarge", "x1.16xlarge"])
            let m5 = try #require(out["m5"] as? [Any])
            #expect(m5.first as? Bool == true)
            #expect(m5.dropFirst().compactMap { $0 as? Int } == [8192, 2])
            #expect(out["authError"] as? String == "AuthFailure")
            #expect(out["authStatus"] as? Int == 401)
            // The victim is still running: the refused call changed nothing.
            let events = try await sim.events(instance: try #require(out["victim"] as? String))
            #expect(events.filter { $0.kind == "state" }.isEmpty)
        }
    }

    // MARK: The torpor binary

    @Test("torpor describe --endpoint-url against the simulator lists 300 instances")
    func torporDescribe() async throws {
        try await withSimulator { sim in
            let environment = isolatedEnvironment([
                "AWS_ACCESS_KEY_ID": SimulatorProcess.accessKeyID, "AWS_SECRET_ACCESS_KEY": SimulatorProcess.secret,
                "AWS_REGION": "us-east-1",
            ])
            let result = try await torpor(["describe", "--endpoint-url", sim.endpoint, "--output", "json"], environment: environment)
            #expect(result.status == 0, "\(result.stderr)")
            let document = try #require(result.json, "\(result.stdout)")
            let instances = try #require(document["instances"] as? [[String: Any]])
            #expect(instances.count == 300)
            #expect(Set(instances.compactMap { $0["instanceId"] as? String }).count == 300)
            #expect(instances.filter { $0["state"] as? String == "stopped" }.count == 20)
            #expect(!result.stdout.contains(SimulatorProcess.secret) && !result.stderr.contains(SimulatorProcess.secret))
        }
    }

    @Test("SIGTERM stops torpor sim with status 0 within 10 s")
    func sigterm() async throws {
        let sim = try await offPool { try SimulatorProcess(speed: 10, watchdog: false) }
        // It answers before it is asked to stop.
        #expect(try await firstPage(sim.client())?.items.count == 5)
        let started = ContinuousClock.now
        let exited = try await offPool { () -> Bool in
            kill(sim.process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            while sim.process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
            return !sim.process.isRunning
        }
        #expect(exited, "still running after 10 s")
        if exited {
            #expect(sim.process.terminationReason == .exit)
            #expect(sim.process.terminationStatus == 0)
            #expect(ContinuousClock.now - started < .seconds(10))
        }
        await sim.stopOffPool()
    }

    @Test("a fleet file with a typo: torpor sim exits 2 naming file:line")
    func fleetTypo() async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-typo-\(UUID().uuidString).yaml")
        try """
        seed: 1
        credentials:
          - { accessKeyId: AKID, secretAccessKey: secret }
        groups:
          - name: web
            count: 3
            hibernationConfigurd: 0.5
        """.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try await runProcess("/usr/bin/timeout", ["60", TestPaths.torpor, "sim", "--port", "0", "--fleet", file.path],
                                          environment: isolatedEnvironment(), timeout: 90)
        #expect(result.status == 2, "\(result.stdout) \(result.stderr)")
        #expect(result.stderr.contains("\(file.path):7:"), "\(result.stderr)")
        #expect(result.stderr.contains("hibernationConfigurd"))
        #expect(!result.stdout.contains("listening"))
    }

    @Test("--auth off accepts an unsigned POST")
    func authOff() async throws {
        try await withSimulator(arguments: ["--auth", "off"]) { sim in
            let response = try await sim.http("POST", "/", body: "Action=DescribeInstances&Version=2016-11-15&MaxResults=5",
                                              headers: ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"])
            #expect(response.status == 200, "\(response.bodyText)")
            #expect(response.bodyText.contains("<DescribeInstancesResponse"))
            #expect(response.bodyText.components(separatedBy: "<instanceId>").count - 1 == 5)
        }
        // With auth on, the same request is refused.
        try await withSimulator { sim in
            let response = try await sim.http("POST", "/", body: "Action=DescribeInstances&Version=2016-11-15",
                                              headers: ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"])
            #expect(response.status == 401)
            #expect(response.bodyText.contains("<Code>AuthFailure</Code>"))
        }
    }

    @Test("an X-Amz-Date ten minutes old is refused with RequestExpired; a current one passes")
    func requestExpired() async throws {
        try await withSimulator { sim in
            let url = try RequestURL(parsing: sim.endpoint + "/")
            let body = Array("Action=DescribeInstances&Version=2016-11-15&MaxResults=5".utf8)
            func send(secondsAgo: Int64) async throws -> HTTPResponse {
                var headers = HTTPHeaders()
                headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded; charset=utf-8")
                let date = SigningDate(secondsSinceEpoch: Int64(Date().timeIntervalSince1970) - secondsAgo)
                let signed = SigV4Signer(region: "us-east-1", service: "ec2").sign(
                    SigV4Request(method: "POST", url: url, headers: headers, payload: .bytes(body)),
                    credentials: AWSCredentials(accessKeyID: SimulatorProcess.accessKeyID, secretAccessKey: SimulatorProcess.secret),
                    date: date)
                return try await CurlTransport().send(HTTPRequest(method: "POST", url: url, headers: signed.headers, body: body))
            }
            let old = try await send(secondsAgo: 600)
            #expect(old.status == 400)
            #expect(old.bodyText.contains("<Code>RequestExpired</Code>"), "\(old.bodyText)")
            let current = try await send(secondsAgo: 0)
            #expect(current.status == 200, "\(current.bodyText)")
            let slightlyOld = try await send(secondsAgo: 120)
            #expect(slightlyOld.status == 200, "within five minutes is accepted")
        }
    }

    // MARK: Probes and faults

    @Test("probe: a running web instance accepts TCP on 8080; after hibernating to stopped, connections are refused")
    func probe() async throws {
        try await withSimulator(speed: 50) { sim in
            let ec2 = try sim.client()
            let web = try await ec2.describeInstances(filters: [
                EC2Filter(name: "tag:Tier", values: ["web"]), EC2Filter(name: "hibernation-options.configured", values: ["true"]),
            ]).all()
            let instance = try #require(web.first)
            let address = try #require(instance.privateIPAddress)
            #expect(address.hasPrefix("127."))
            let open = try await eventually(timeout: 10, every: .milliseconds(100)) { tcpConnect(address, 8080) == 0 }
            #expect(open, "\(address):8080 never accepted a connection")
            // Another instance's address answers too, and a port nobody probes does not.
            if let other = web.dropFirst().first?.privateIPAddress {
                #expect(try await eventually(timeout: 10, every: .milliseconds(100)) { tcpConnect(other, 8080) == 0 })
                #expect(tcpConnect(other, 8081) == ECONNREFUSED)
            }

            _ = try await ec2.stopInstances(ids: [instance.instanceID], hibernate: true)
            let stopped = try await eventually(timeout: 30, every: .milliseconds(100)) {
                try await ec2.describeInstances(ids: [instance.instanceID]).all().first?.state == .stopped
            }
            #expect(stopped)
            let refused = try await eventually(timeout: 15, every: .milliseconds(100)) { tcpConnect(address, 8080) == ECONNREFUSED }
            #expect(refused, "\(address):8080 still accepts connections after the instance stopped")
            let reachability = try await sim.events(instance: instance.instanceID).filter { $0.kind == "reachability" }
            #expect(reachability.map { "\($0.from)->\($0.to)" } == ["closed->open", "open->closed"])
        }
    }

    @Test("faults: errorRate 1 gives InternalError/Unavailable; resetRate 1 closes the connection; 0 restores service")
    func faults() async throws {
        try await withSimulator { sim in
            let ec2 = try sim.client(maxAttempts: 1)
            try await sim.setFaults(#"{"errorRate": 1}"#)
            for _ in 0..<6 {
                do {
                    _ = try await firstPage(ec2)
                    Issue.record("a call succeeded with errorRate 1")
                } catch let error as AWSServiceError {
                    #expect(["InternalError", "Unavailable"].contains(error.code), "\(error)")
                    #expect([500, 503].contains(error.httpStatus))
                    #expect((error.code == "InternalError") == (error.httpStatus == 500))
                }
            }
            try await sim.setFaults(#"{"resetRate": 1}"#)
            do {
                _ = try await firstPage(ec2)
                Issue.record("a call succeeded with resetRate 1")
            } catch let error as TransportError {
                #expect(error.kind == .connectionReset, "\(error)")
            }
            // A bad fault document is refused and changes nothing.
            let bad = try await sim.http("POST", "/_sim/faults", body: #"{"errorRat": 1}"#)
            #expect(bad.status == 400)
            #expect(bad.bodyText.contains("errorRat"))

            try await sim.setFaults(#"{"errorRate": 0, "resetRate": 0}"#)
            let page = try await firstPage(ec2)
            #expect(page?.items.count == 5)
            let stats = try await sim.http("GET", "/_sim/stats")
            let document = try #require(try JSONSerialization.jsonObject(with: Data(stats.body)) as? [String: Any])
            let errors = try #require(document["errors"] as? [String: Int])
            #expect((errors["InternalError"] ?? 0) + (errors["Unavailable"] ?? 0) == 6)
            // libcurl retries once, on a fresh connection, a request whose reused connection closed with no answer.
            #expect((1...2).contains(errors["ConnectionReset"] ?? 0))
        }
    }
}
