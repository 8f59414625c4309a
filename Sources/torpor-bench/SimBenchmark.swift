import Foundation
import Logging
import TorporAWS
import TorporEC2
import TorporSigV4
import TorporSim

/// How fast the simulator answers the heaviest read a fleet tool makes: a
/// DescribeInstances page of 1000 instances. Measured twice: end to end
/// (HTTP, signature check, XML, Torpor's client parsing it) and the engine
/// alone (rendering the XML), so a benchmark of the fleet engine can tell
/// whether the simulator could ever be its bottleneck.
enum SimBenchmark {
    static func run(instances: Int, seconds: Double) async throws {
        var spec = FleetSpec()
        spec.credentials = [AWSCredentials(accessKeyID: "AKIDBENCH", secretAccessKey: "bench-secret")]
        var group = GroupSpec(name: "bench", count: instances)
        group.tags = [(key: "Env", value: "bench")]
        spec.groups = [group]
        let engine = SimEngine(spec: spec, clock: ScaledClock(speed: 1), throttle: .off, authenticate: true)
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let simulator = try await RunningSimulator.start(engine: engine, logger: logger)

        let location = ServiceLocation(region: "us-east-1", endpoint: try RequestURL(parsing: simulator.endpoint), endpointSource: "bench")
        let aws = AWSQueryClient(service: "ec2", apiVersion: EC2Client.apiVersion, location: location,
                                 credentials: StaticCredentialProvider(spec.credentials[0]), transport: CurlTransport(),
                                 retryPolicy: RetryPolicy(maxAttempts: 1), logger: logger)
        let ec2 = EC2Client(aws: aws)

        // End to end.
        let clock = ContinuousClock()
        var pages = 0, described = 0
        let started = clock.now
        while clock.now - started < .seconds(seconds) {
            for try await page in ec2.describeInstances(maxResults: 1000) {
                pages += 1
                described += page.items.count
            }
        }
        let elapsed = clock.now - started
        let wall = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18

        // The engine alone.
        var enginePages = 0
        let engineStarted = clock.now
        while clock.now - engineStarted < .seconds(min(seconds, 3)) {
            var token: String?
            repeat {
                var parameters = ["Action": "DescribeInstances", "Version": EC2Client.apiVersion, "MaxResults": "1000"]
                if let token { parameters["NextToken"] = token }
                guard case .reply(let reply) = engine.handle(action: "DescribeInstances", parameters: parameters) else { break }
                enginePages += 1
                // The token closes the document: look only at its tail.
                let tail = String(reply.body.suffix(300))
                token = tail.firstRange(of: "<nextToken>").map { start in
                    String(tail[start.upperBound...].prefix { $0 != "<" })
                }
            } while token != nil
        }
        let engineElapsed = clock.now - engineStarted
        let engineWall = Double(engineElapsed.components.seconds) + Double(engineElapsed.components.attoseconds) / 1e18
        await simulator.stop()
        print("{\"benchmark\":\"sim\",\"instances\":\(instances),\"pages_per_sec\":\(String(format: "%.1f", Double(pages) / wall)),"
              + "\"instances_per_sec\":\(Int(Double(described) / wall)),"
              + "\"engine_pages_per_sec\":\(String(format: "%.1f", Double(enginePages) / engineWall))}")
    }
}
