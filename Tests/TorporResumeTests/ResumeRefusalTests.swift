import Foundation
import Logging
import Synchronization
import Testing
import TorporAWS
import TorporEC2
import TorporFleet
import TorporPolicies
import TorporResume
import TorporSigV4
import TorporSim
import TorporTestSupport

/// Log lines, kept for a test to read.
final class LogCapture: Sendable {
    struct Line: Sendable {
        let level: Logger.Level
        let message: String
    }

    private let lines = Mutex<[Line]>([])

    var all: [Line] { lines.withLock { $0 } }

    func append(_ line: Line) { lines.withLock { $0.append(line) } }

    func logger() -> Logger {
        var logger = Logger(label: "capture") { _ in Handler(capture: self) }
        logger.logLevel = .debug
        return logger
    }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            capture.append(Line(level: event.level, message: event.message.description))
        }
    }
}

@Suite("Resume tracker refused by EC2", .serialized)
struct ResumeRefusalTests {
    @Test("describes refused (wrong credentials): one clear error, the resumes time out with what was known, nothing crashes")
    func refusedDescribes() async throws {
        let spec = makeSpec([tierGroup("batch", 5) { $0.initialState = .hibernated }])
        try await withSimulator(spec, speed: 20) { sim in
            // A client whose secret the simulator does not accept: every
            // call is refused with a signature error.
            let wrong = EC2Client(aws: AWSQueryClient(
                service: "ec2", apiVersion: EC2Client.apiVersion, location: sim.location,
                credentials: StaticCredentialProvider(AWSCredentials(accessKeyID: sim.credentials.accessKeyID, secretAccessKey: "not-the-secret")),
                transport: CurlTransport(), retryPolicy: sim.retry, logger: quietLogger, observer: nil))
            var settings = ResumeSettings()
            var batch = ResumePolicy(name: "batch")
            batch.targets = PolicyTargets(tags: [PolicyTag(key: "Tier", value: "batch")])
            batch.deadline = 30
            settings.policies = [batch]
            let capture = LogCapture()
            let tracker = ResumeTracker(ec2: wrong, clock: sim.clock, store: nil, policies: settings,
                                        prober: NetworkProber(transport: CurlTransport(), timeout: 0.5), owner: "tests",
                                        logger: capture.logger())
            let tracking = track(tracker)
            try await sim.startAll { await tracker.register($0) }
            try await finish(tracker, tracking)

            let finished = await tracker.finished
            #expect(finished.count == 5)
            #expect(finished.allSatisfy { $0.state == .timedOut && $0.running == nil }, "\(finished.map(\.state))")
            let errors = capture.all.filter { $0.level == .error }
            #expect(errors.count == 1, "\(errors.map(\.message))")
            #expect(errors.first?.message.contains("ec2:DescribeInstanceStatus") == true)
            #expect(capture.all.filter { $0.message == "resume timed out" }.count == 5)
            #expect(!capture.all.contains { $0.message.contains("not-the-secret") })
        }
    }
}
