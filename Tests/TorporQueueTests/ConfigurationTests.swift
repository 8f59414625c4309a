import Foundation
import Testing
import TorporPolicies
import TorporYAML

/// The repository's Config/torpor.yaml, found from this file's location.
private let repositoryConfig: String = {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Config/torpor.yaml").path
}()

@Suite("Configuration file")
struct ConfigurationTests {
    @Test("Config/torpor.yaml validates with no problems",
          .enabled(if: FileManager.default.fileExists(atPath: repositoryConfig), "Config/torpor.yaml is not in this checkout"))
    func repositoryFileIsValid() throws {
        let text = try String(contentsOfFile: repositoryConfig, encoding: .utf8)
        let (config, problems) = TorporConfiguration.validate(text, file: "Config/torpor.yaml")
        #expect(problems.isEmpty, "\(problems.map(\.description))")
        // Its values are sane for a worker.
        #expect((1...64).contains(config.worker.concurrency))
        #expect(config.worker.lease >= 1)
        #expect(config.metrics.host == "127.0.0.1", "metrics stay on loopback by default")
    }

    @Test("a complete sample: every key read, with durations in their units")
    func sample() {
        let text = """
            # A worker for the dev fleet.
            aws:
              region: eu-west-1
              profile: fleet
              endpointUrl: http://127.0.0.1:4566
            queue:
              path: /tmp/torpor/queue.sqlite
            worker:
              concurrency: 8
              lease: 2m
              gracePeriod: 45s
              pollInterval: 250ms
              retryBase: 1.5m
              maxAttempts: 9
            metrics:
              enabled: false
              address: "[::1]:9100"
            fleet:
              protectTag: keep=yes
              maxInstances: 50
              maxShare: 0.5
              firstPoll: 30
              waitTimeout: 1h
              tagInstances: yes
            log:
              level: debug
            """
        let (config, problems) = TorporConfiguration.validate(text, file: "sample.yaml")
        #expect(problems.isEmpty, "\(problems.map(\.description))")
        #expect(config.aws.region == "eu-west-1")
        #expect(config.aws.profile == "fleet")
        #expect(config.aws.endpointURL == "http://127.0.0.1:4566")
        #expect(config.queue.path == "/tmp/torpor/queue.sqlite")
        #expect(config.worker.concurrency == 8)
        #expect(config.worker.lease == 120)
        #expect(config.worker.gracePeriod == 45)
        #expect(config.worker.pollInterval == 0.25)
        #expect(config.worker.retryBase == 90)
        #expect(config.worker.maxAttempts == 9)
        #expect(config.metrics.enabled == false)
        #expect(config.metrics.host == "::1")
        #expect(config.metrics.port == 9100)
        #expect(config.fleet.protectTag == "keep=yes")
        #expect(config.fleet.maxInstances == 50)
        #expect(config.fleet.maxShare == 0.5)
        #expect(config.fleet.firstPoll == 30)
        #expect(config.fleet.waitTimeout == 3600)
        #expect(config.fleet.tagInstances == true)
        #expect(config.logLevel == "debug")
    }

    @Test("a file with six mistakes: all six reported, each with its own line")
    func everyMistakeWithItsLine() {
        let text = """
            aws:
              region: eu-west-1
            colour: blue
            worker:
              concurrency: 0
              lease: soon
              speed: 3
              maxAttempts: 7
            metrics:
              address: nowhere
            log:
              level: loud
            """
        let (config, problems) = TorporConfiguration.validate(text, file: "bad.yaml")
        let found = problems.map { ($0.line, $0.message) }
        #expect(problems.count == 6, "\(problems.map(\.description))")
        func problem(at line: Int, _ contains: String, sourceLocation: SourceLocation = #_sourceLocation) {
            let matches = problems.filter { $0.line == line && $0.message.contains(contains) }
            #expect(matches.count == 1, "no single problem at line \(line) containing \"\(contains)\": \(found)", sourceLocation: sourceLocation)
        }
        problem(at: 3, "unknown key 'colour'")
        problem(at: 5, "worker.concurrency must be between 1 and 64, not 0")
        problem(at: 6, "worker.lease must be a duration")
        problem(at: 6, "'soon'")
        problem(at: 7, "worker: unknown key 'speed'")
        problem(at: 10, "metrics.address must be HOST:PORT, not 'nowhere'")
        problem(at: 12, "log.level must be one of")
        problem(at: 12, "'loud'")
        #expect(problems.allSatisfy { $0.file == "bad.yaml" })
        #expect(problems.map(\.description).contains("bad.yaml:3: the configuration: unknown key 'colour' (expected one of: aws, queue, worker, metrics, fleet, resume, log)"))
        // The good values around the mistakes are still read.
        #expect(config.aws.region == "eu-west-1")
        #expect(config.worker.maxAttempts == 7)
        // The bad ones leave the defaults.
        #expect(config.worker.concurrency == 2)
        #expect(config.worker.lease == 60)
        #expect(config.logLevel == "info")
    }

    @Test("more mistakes: a lease under a second, a bad URL, a bad protect tag, a share over 1, a bad boolean")
    func moreMistakes() {
        let text = """
            aws:
              endpointUrl: localhost:4566
            worker:
              lease: 500ms
            metrics:
              enabled: perhaps
            fleet:
              protectTag: =true
              maxShare: 1.5
            """
        let (_, problems) = TorporConfiguration.validate(text, file: "f.yaml")
        #expect(problems.map(\.line) == [2, 4, 6, 8, 9], "\(problems.map(\.description))")
        #expect(problems.map(\.message).contains("worker.lease must be at least 1s"))
        #expect(problems.contains { $0.message.contains("aws.endpointUrl must start with http:// or https://") })
        #expect(problems.contains { $0.message.contains("metrics.enabled must be true or false") })
        #expect(problems.contains { $0.message.contains("fleet.protectTag must be KEY=VALUE") })
        #expect(problems.contains { $0.message.contains("fleet.maxShare must be between 0") })
    }

    @Test("keys that are absent keep their defaults")
    func defaults() {
        let (config, problems) = TorporConfiguration.validate("log:\n  level: warning\n", file: "min.yaml")
        #expect(problems.isEmpty)
        #expect(config.logLevel == "warning")
        var expected = TorporConfiguration()
        expected.logLevel = "warning"
        #expect(config == expected)
        #expect(config.aws.region == nil && config.aws.profile == nil && config.aws.endpointURL == nil)
        #expect(config.queue.path == TorporConfiguration.defaultQueuePath)
        #expect(config.worker.concurrency == 2)
        #expect(config.worker.lease == 60)
        #expect(config.worker.gracePeriod == 30)
        #expect(config.worker.pollInterval == 1)
        #expect(config.worker.retryBase == 30)
        #expect(config.worker.maxAttempts == 5)
        #expect(config.metrics.enabled)
        #expect(config.metrics.host == "127.0.0.1" && config.metrics.port == 9464)
        #expect(config.fleet.protectTag == "torpor:protect=true")
        #expect(config.fleet.maxInstances == 1000 && config.fleet.maxShare == 1)
        #expect(config.fleet.firstPoll == 45 && config.fleet.waitTimeout == 1800 && !config.fleet.tagInstances)

        // An empty section is an error (it must be a mapping), but reading goes on.
        let (_, sectionProblems) = TorporConfiguration.validate("worker:\nlog:\n  level: info\n", file: "e.yaml")
        #expect(sectionProblems.count == 1 && sectionProblems.first?.line == 1, "\(sectionProblems.map(\.description))")
    }

    @Test("not YAML at all: one problem, with a line")
    func notYAML() {
        let (_, problems) = TorporConfiguration.validate("worker:\n  lease: [1, 2\n", file: "broken.yaml")
        #expect(problems.count == 1)
        #expect(problems.first?.message.hasPrefix("not valid YAML") == true)
        #expect(problems.first?.line != nil)
    }

    @Test("parseAddress", arguments: [
        ("127.0.0.1:9464", "127.0.0.1", 9464),
        ("localhost:0", "localhost", 0),
        ("0.0.0.0:65535", "0.0.0.0", 65535),
        ("[::1]:9100", "::1", 9100),
        ("metrics.internal:80", "metrics.internal", 80),
    ])
    func parseAddress(text: String, host: String, port: Int) throws {
        let parsed = try #require(TorporConfiguration.parseAddress(text))
        #expect(parsed.0 == host)
        #expect(parsed.1 == port)
    }

    @Test("parseAddress refuses", arguments: ["nowhere", ":9464", "host:", "host:65536", "host:-1", "host:http", "[]:80", "", "9464"])
    func parseAddressRefuses(text: String) {
        #expect(TorporConfiguration.parseAddress(text) == nil)
    }
}
