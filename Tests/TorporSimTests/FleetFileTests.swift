import Foundation
import Testing
import TorporSigV4
@testable import TorporSim
import TorporYAML

@Suite("Fleet and throttle files")
struct FleetFileTests {
    static let configFile = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Config/sim-fleet.yaml")

    /// The error a fleet text fails with.
    func failure(_ text: String, file: String = "fleet.yaml") -> FleetFileError? {
        do {
            _ = try FleetSpec.parse(text, file: file)
            return nil
        } catch {
            return error
        }
    }

    // MARK: The default fleet

    @Test("the embedded default fleet is Config/sim-fleet.yaml, byte for byte")
    func embeddedMatchesConfig() throws {
        let data = try Data(contentsOf: Self.configFile)
        let file = try #require(String(data: data, encoding: .utf8))
        // The Swift literal cannot carry the file's final newline; everything else must match.
        #expect(file == DefaultFleet.yaml + "\n")
        #expect(Array(data) == Array((DefaultFleet.yaml + "\n").utf8))
    }

    @Test("the default fleet parses: 300 instances in 6 groups, with its credentials and rules")
    func defaultFleetParses() throws {
        let spec = try FleetSpec.parse(DefaultFleet.yaml, file: DefaultFleet.name)
        #expect(spec == DefaultFleet.spec())
        #expect(spec.groups.map(\.count).reduce(0, +) == 300)
        #expect(spec.groups.map(\.name) == ["web", "workers", "batch", "databases", "ci-runners", "prod-web"])
        #expect(spec.seed == 42)
        #expect(spec.region == "us-east-1")
        #expect(spec.hibernateReadyAfter == 300)
        #expect(spec.credentials.map(\.accessKeyID) == ["AKIDTORPORSIMULATOR"])
        #expect(spec.credentials.map(\.secretAccessKey) == ["torpor-simulator-secret-key"])
        let web = try #require(spec.groups.first)
        #expect(web.probePort == 8080)
        #expect(web.hibernationConfigured == 0.9)
        #expect(web.zones == ["us-east-1a", "us-east-1b", "us-east-1c"])
        #expect(web.timings.hibernate == DurationDistribution(median: 35, p95: 80))
        #expect(web.timings.reachable == DurationDistribution(median: 5, p95: 15))
        #expect(web.tags.map(\.key) == ["Env", "Tier", "Team"])
        #expect(spec.groups[1].spot == 0.1 && spec.groups[1].oneTimeSpot == 0.05)
        #expect(spec.groups[2].autoScalingGroup == "batch-workers")
        #expect(spec.groups[4].initialState == .stopped)
        #expect(spec.spotPrices.count == 2)
        #expect(spec.spotPrices[1].steps == [.init(at: 0, price: 0.035), .init(at: 7200, price: 0.052)])
        #expect(spec.spotPrices[0].randomWalk?.every == 300)

        let state = FleetState(spec: spec, now: t0)
        #expect(state.instances.count == 300)
        #expect(state.count(in: .running) == 280)
        #expect(state.count(in: .stopped) == 20)
    }

    // MARK: Durations

    @Test("durations: ms, s, m, h, d and plain seconds", arguments: [
        ("500ms", 0.5), ("30s", 30), ("2m", 120), ("1h", 3600), ("1d", 86_400), ("45", 45), ("1.5m", 90), ("0", 0),
        ("250ms", 0.25), ("2.5s", 2.5),
    ])
    func durations(text: String, seconds: Double) throws {
        #expect(YAMLReader.parseDuration(text) == seconds)
        let spec = try FleetSpec.parse("hibernateReadyAfter: \(text)\ngroups: []\n", file: "f.yaml")
        #expect(spec.hibernateReadyAfter == seconds)
    }

    @Test("malformed durations are refused", arguments: ["abc", "-5s", "5x", "", "ms", "s", "5 m", "inf", "nan"])
    func badDurations(text: String) {
        #expect(YAMLReader.parseDuration(text) == nil)
    }

    @Test("durations in timings and the per-GiB term")
    func timingDurations() throws {
        let spec = try FleetSpec.parse("""
        groups:
          - name: g
            count: 1
            timings:
              stop: { median: 500ms, p95: 2s }
              hibernate: { median: 1m, p95: 1h }
              hibernatePerGiB: 250ms
              coldBoot: { median: 90, p95: 3m }
        """, file: "f.yaml")
        let timings = spec.groups[0].timings
        #expect(timings.stop == DurationDistribution(median: 0.5, p95: 2))
        #expect(timings.hibernate == DurationDistribution(median: 60, p95: 3600))
        #expect(timings.hibernatePerGiB == 0.25)
        #expect(timings.coldBoot == DurationDistribution(median: 90, p95: 180))
        // Unset distributions keep their defaults.
        #expect(timings.resume == Timings().resume)
    }

    @Test("a bad duration names its line")
    func badDurationLine() throws {
        let error = try #require(failure("""
        groups:
          - name: g
            count: 1
            timings:
              stop: { median: fast, p95: 2s }
        """))
        #expect(error.line == 5)
        #expect(error.description.contains("fleet.yaml:5:"))
        #expect(error.description.contains("fast"))
    }

    // MARK: Errors name their line

    @Test("an unknown key (a typo) is refused at its line, by name")
    func unknownKey() throws {
        let error = try #require(failure("""
        seed: 1
        groups:
          - name: web
            instanceTyp: m5.large
            count: 3
        """))
        #expect(error.line == 4)
        #expect(error.description.contains("fleet.yaml:4:"))
        #expect(error.description.contains("instanceTyp"))
        #expect(error.message.contains("unknown key"))
    }

    @Test("an unknown top-level key is refused")
    func unknownTopLevelKey() throws {
        let error = try #require(failure("""
        seed: 1
        regoin: us-east-1
        groups: []
        """))
        #expect(error.description.contains(":2:"))
        #expect(error.description.contains("regoin"))
    }

    @Test("a group without a count is refused at the group")
    func missingCount() throws {
        let error = try #require(failure("""
        seed: 1
        groups:
          - name: web
            instanceType: m5.large
        """))
        #expect(error.line == 3)
        #expect(error.description.contains(":3:"))
        #expect(error.message.contains("count"))
        #expect(error.message.contains("web"))
    }

    @Test("a share above 1 is refused at its line")
    func fractionAboveOne() throws {
        let error = try #require(failure("""
        groups:
          - name: web
            count: 3
            hibernationConfigured: 1.5
        """))
        #expect(error.line == 4)
        #expect(error.message.contains("hibernationConfigured"))
        #expect(error.message.contains("1.5"))
    }

    @Test("spot and oneTimeSpot together above the whole group are refused")
    func spotSharesExceedGroup() throws {
        let error = try #require(failure("""
        groups:
          - name: web
            count: 3
            spot: 0.7
            oneTimeSpot: 0.4
        """))
        #expect(error.line == 5)
        #expect(error.message.contains("spot and oneTimeSpot"))
        // Exactly the whole group is fine.
        #expect(failure("groups:\n  - name: web\n    count: 4\n    spot: 0.5\n    oneTimeSpot: 0.5\n") == nil)
    }

    @Test("an unknown initial state is refused at its line")
    func badState() throws {
        let error = try #require(failure("""
        groups:
          - name: web
            count: 3
            state: sleeping
        """))
        #expect(error.line == 4)
        #expect(error.message.contains("sleeping"))
        #expect(error.message.contains("running, stopped or hibernated"))
    }

    @Test("a p95 below the median is refused at the p95")
    func p95BelowMedian() throws {
        let error = try #require(failure("""
        groups:
          - name: web
            count: 3
            timings:
              stop:
                median: 30s
                p95: 10s
        """))
        #expect(error.line == 7)
        #expect(error.message.contains("p95"))
    }

    @Test("two groups with one name are refused at the second")
    func duplicateGroupNames() throws {
        let error = try #require(failure("""
        groups:
          - name: web
            count: 1
          - name: web
            count: 2
        """))
        #expect(error.line == 4)
        #expect(error.message.contains("'web'"))
        #expect(error.message.contains("twice"))
    }

    @Test("text that is not YAML is refused as such, with a line")
    func notYAML() throws {
        let error = try #require(failure("seed: 1\ngroups: [a, b\nregion: {\n"))
        #expect(error.message.contains("not valid YAML"))
        #expect(error.line != nil)
        #expect(error.description.hasPrefix("fleet.yaml:"))
    }

    @Test("a YAML scalar or list instead of a mapping is refused")
    func notAMapping() throws {
        let scalar = try #require(failure("just some words\n"))
        #expect(scalar.message.contains("must be a mapping"))
        let list = try #require(failure("- a\n- b\n"))
        #expect(list.message.contains("must be a mapping"))
    }

    @Test("an empty file, or one of comments only, is refused as empty")
    func emptyFile() throws {
        let empty = try #require(failure(""))
        #expect(empty.message.contains("empty"))
        #expect(empty.line == nil)
        #expect(empty.description == "fleet.yaml: the file is empty")
        let comments = try #require(failure("# nothing here\n# at all\n"))
        #expect(comments.message.contains("empty"))
    }

    @Test("a file without groups is refused")
    func noGroups() throws {
        let error = try #require(failure("seed: 3\n"))
        #expect(error.message.contains("needs groups"))
    }

    @Test("other checks: count, memory, root device, probe port, spot series, faults")
    func otherChecks() throws {
        let cases: [(String, Int, String)] = [
            ("groups:\n  - name: g\n    count: many\n", 3, "whole number"),
            ("groups:\n  - name: g\n    count: -1\n", 3, "between"),
            ("groups:\n  - name: g\n    count: 1\n    memoryGiB: 0.1\n", 4, "memoryGiB"),
            ("groups:\n  - name: g\n    count: 1\n    rootDeviceType: nvme\n", 4, "nvme"),
            ("groups:\n  - name: g\n    count: 1\n    probePort: 70000\n", 4, "probePort"),
            ("groups:\n  - name: g\n    count: 1\n    zones: []\n", 4, "at least one zone"),
            ("groups: []\nspotPrices:\n  - instanceType: m5.large\n    zone: us-east-1a\n", 3, "steps or a randomWalk"),
            ("groups: []\nfaults:\n  errorRate: 2\n", 3, "errorRate"),
            ("groups: []\nfaults:\n  resetrate: 0.1\n", 3, "resetrate"),
            ("seed: -4\ngroups: []\n", 1, "seed"),
        ]
        for (text, line, fragment) in cases {
            let error = try #require(failure(text), "accepted: \(text)")
            #expect(error.line == line, "\(error)")
            #expect(error.description.contains(fragment), "\(error)")
        }
    }

    @Test("faults, spot prices and credentials are read")
    func faultsAndPrices() throws {
        let spec = try FleetSpec.parse("""
        groups: []
        faults:
          errorRate: 0.25
          resetRate: 0.5
          lostReplyRate: 0.125
          latency: 150ms
          startFailureRate: 1
          noCapacity:
            - { instanceType: m5.large, zone: us-east-1a }
        spotPrices:
          - instanceType: c5.large
            zone: us-east-1b
            product: Windows
            steps:
              - { at: 1h, price: 0.2 }
              - { at: 0s, price: 0.1 }
        """, file: "f.yaml")
        #expect(spec.faults.errorRate == 0.25)
        #expect(spec.faults.resetRate == 0.5)
        #expect(spec.faults.lostReplyRate == 0.125)
        #expect(spec.faults.latencyMilliseconds == 150)
        #expect(spec.faults.startFailureRate == 1)
        #expect(spec.faults.noCapacity == [.init(instanceType: "m5.large", zone: "us-east-1a")])
        #expect(spec.spotPrices[0].product == "Windows")
        // Steps come out in time order whatever order the file lists them in.
        #expect(spec.spotPrices[0].steps.map(\.at) == [0, 3600])
    }

    // MARK: Throttle files

    @Test("a throttle file with an unknown category is refused at its line")
    func throttleUnknownCategory() throws {
        do {
            _ = try ThrottleConfig.parse("""
            buckets:
              mutating: { capacity: 10, refill: 1 }
              describeInstance: { capacity: 10, refill: 1 }
            """, file: "throttle.yaml")
            Issue.record("an unknown category was accepted")
        } catch {
            #expect(error.line == 3)
            #expect(error.description.contains("throttle.yaml:3:"))
            #expect(error.description.contains("describeInstance"))
        }
    }

    @Test("a throttle file overriding one bucket keeps EC2's sizes for the others")
    func throttlePartialOverride() throws {
        let config = try ThrottleConfig.parse("""
        buckets:
          mutating: { capacity: 10, refill: 0.5 }
        """, file: "throttle.yaml")
        #expect(config.buckets[.mutating] == .init(capacity: 10, refill: 0.5))
        for category in ThrottleConfig.Category.allCases where category != .mutating {
            #expect(config.buckets[category] == ThrottleConfig.aws.buckets[category], "\(category)")
        }
        #expect(config.buckets.count == ThrottleConfig.Category.allCases.count)
    }

    @Test("throttle files: missing fields and bad numbers are refused")
    func throttleErrors() throws {
        for (text, fragment) in [
            ("buckets:\n  mutating: { capacity: 10 }\n", "needs capacity and refill"),
            ("buckets:\n  mutating: { capacity: 0, refill: 1 }\n", "capacity"),
            ("buckets:\n  mutating: { capacity: 5, refill: -1 }\n", "refill"),
            ("limits: {}\n", "limits"),
            ("", "empty"),
        ] {
            do {
                _ = try ThrottleConfig.parse(text, file: "t.yaml")
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.description.contains(fragment), "\(error)")
            }
        }
    }
}
