import Foundation
import Testing
import TorporAWS
import TorporEC2

/// The `torpor` binary as a user runs it, against moto with IAM auth on.
@Suite("torpor describe/stop/start against moto")
struct CommandLineTests {
    @Test("describe --output json lists exactly the selected instances")
    func describeJSON() async throws {
        let moto = try await MotoFixture.get()
        let marker = uniqueMarker("cli-describe")
        let ids = try await moto.launch(count: 3, marker: marker)
        let result = try await torpor(["describe", "--tag", "Marker=\(marker)", "--output", "json"], environment: moto.cliEnvironment)
        #expect(result.status == 0, "\(result.stderr)")
        let document = try #require(result.json)
        let instances = try #require(document["instances"] as? [[String: Any]])
        #expect(Set(instances.compactMap { $0["instanceId"] as? String }) == Set(ids))
        #expect(instances.allSatisfy { $0["state"] as? String == "running" && $0["hibernationConfigured"] as? Bool == true })
        #expect(!result.stdout.contains(moto.secretAccessKey) && !result.stderr.contains(moto.secretAccessKey))
    }

    @Test("stop --hibernate --yes then start --yes: every instance reaches its state, outcomes follow")
    func stopAndStart() async throws {
        let moto = try await MotoFixture.get()
        let marker = uniqueMarker("cli-stop")
        let ids = try await moto.launch(count: 4, marker: marker)
        let stop = try await torpor(["stop", "--tag", "Marker=\(marker)", "--hibernate", "--yes", "--output", "json", "--first-poll", "0.2"],
                              environment: moto.cliEnvironment)
        #expect(stop.status == 0, "\(stop.stderr)")
        let stopDoc = try #require(stop.json)
        #expect(stopDoc["hibernate"] as? Bool == true)
        // moto does not record that a stop was a hibernation, so its
        // instances come back as stopped rather than hibernated.
        let counts = try #require(stopDoc["counts"] as? [String: Int])
        #expect((counts["hibernated"] ?? 0) + (counts["stopped"] ?? 0) == 4, "\(counts)")
        let outcomes = try #require(stopDoc["instances"] as? [[String: Any]])
        #expect(Set(outcomes.compactMap { $0["instanceId"] as? String }) == Set(ids))
        #expect(outcomes.allSatisfy { $0["previousState"] as? String == "running" && $0["newState"] as? String == "stopped" })

        // A second stop finds nothing to do.
        let again = try await torpor(["stop", "--tag", "Marker=\(marker)", "--yes", "--output", "json"], environment: moto.cliEnvironment)
        #expect(again.status == 0)
        #expect((again.json?["counts"] as? [String: Int])?["no-action-needed"] == 4)

        let start = try await torpor(["start", "--tag", "Marker=\(marker)", "--yes", "--first-poll", "0.2"], environment: moto.cliEnvironment)
        #expect(start.status == 0, "\(start.stderr)")
        #expect(start.stdout.contains("4 started"), "\(start.stdout)")
        let describe = try await torpor(["describe", "--tag", "Marker=\(marker)", "--output", "json"], environment: moto.cliEnvironment)
        let states = (describe.json?["instances"] as? [[String: Any]])?.compactMap { $0["state"] as? String } ?? []
        #expect(states.count == 4 && states.allSatisfy { $0 == "running" || $0 == "pending" })
    }

    @Test("one unknown id does not hide the others: exit 1, the good one accepted, the bad one failed")
    func partialFailure() async throws {
        let moto = try await MotoFixture.get()
        let ids = try await moto.launch(count: 1, marker: uniqueMarker("cli-partial"))
        let bogus = "i-00000000000000bad"
        let result = try await torpor(["stop", "--id", ids[0], "--id", bogus, "--yes", "--output", "json", "--first-poll", "0.2"],
                                      environment: moto.cliEnvironment)
        #expect(result.status == 1)
        let outcomes = try #require(result.json?["instances"] as? [[String: Any]])
        let byID = Dictionary(uniqueKeysWithValues: outcomes.compactMap { o in (o["instanceId"] as? String).map { ($0, o) } })
        #expect(byID[ids[0]]?["outcome"] as? String == "stopped")
        #expect(byID[bogus]?["outcome"] as? String == "failed")
        #expect(byID[bogus]?["errorCode"] as? String == "InvalidInstanceID.NotFound")
    }

    @Test("no --yes without a terminal: refused with exit 2 and nothing changes")
    func refusesWithoutYes() async throws {
        let moto = try await MotoFixture.get()
        let ids = try await moto.launch(count: 2, marker: uniqueMarker("cli-noyes"))
        let result = try await torpor(["stop", "--id", ids[0], "--id", ids[1]], environment: moto.cliEnvironment)
        #expect(result.status == 2)
        #expect(result.stderr.contains("--yes"))
        let states = try await moto.client().describeInstances(ids: ids).all().map(\.state)
        #expect(states.allSatisfy { $0 == .running })
    }

    @Test("--dry-run asks EC2 and changes nothing")
    func dryRun() async throws {
        let moto = try await MotoFixture.get()
        let marker = uniqueMarker("cli-dry")
        let ids = try await moto.launch(count: 2, marker: marker)
        let result = try await torpor(["stop", "--tag", "Marker=\(marker)", "--hibernate", "--dry-run", "--output", "json"],
                                environment: moto.cliEnvironment)
        #expect(result.status == 0, "\(result.stderr)")
        #expect((result.json?["counts"] as? [String: Int])?["no-action-needed"] == 2)
        let reasons = (result.json?["instances"] as? [[String: Any]])?.compactMap { $0["reason"] as? String } ?? []
        #expect(reasons.count == 2 && reasons.allSatisfy { $0.contains("dry run") })
        let states = try await moto.client().describeInstances(ids: ids).all().map(\.state)
        #expect(states.allSatisfy { $0 == .running })
    }

    @Test("usage and configuration errors exit 2 with a message that says what to do",
          arguments: [
            (["stop"], "selector"),
            (["start", "--output", "yaml", "--id", "i-0123456789abcdef0"], "yaml"),
            (["stop", "--id", "web-1"], "not an instance id"),
            (["stop", "--tag", "Env", "--yes"], "KEY=VALUE"),
            (["stop", "--state", "sleeping", "--yes"], "not an instance state"),
            (["stop", "--id", "i-0123456789abcdef0", "--hibernate", "--force"], "cannot be combined"),
            (["enqueue", "stop", "--tag", "Env=dev", "--no-wait"], "--no-wait goes with start jobs"),
            (["enqueue", "start", "--tag", "Env=dev", "--not-before", "someday"], "--not-before 'someday'"),
          ])
    func usageErrors(arguments: [String], message: String) async throws {
        let result = try await torpor(arguments, environment: isolatedEnvironment())
        #expect(result.status == 2)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    @Test("no region anywhere: exit 2 naming --region")
    func noRegion() async throws {
        let result = try await torpor(["describe"], environment: isolatedEnvironment(["AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"]))
        #expect(result.status == 2)
        #expect(result.stderr.contains("--region"))
    }

    @Test("no credentials anywhere: exit 2 listing every source tried")
    func noCredentials() async throws {
        let moto = try await MotoFixture.get()
        let result = try await torpor(["describe", "--endpoint-url", moto.endpoint, "--region", "us-east-1"], environment: isolatedEnvironment())
        #expect(result.status == 2)
        #expect(result.stderr.contains("no AWS credentials found"))
        #expect(result.stderr.contains("environment") && result.stderr.contains("profile default"))
    }

    @Test("a profile from the shared files is used, and a malformed file is reported with its line")
    func profiles() async throws {
        let moto = try await MotoFixture.get()
        let environment = isolatedEnvironment(["AWS_ENDPOINT_URL_EC2": moto.endpoint])
        let home = try #require(environment["HOME"])
        try FileManager.default.createDirectory(atPath: home + "/.aws", withIntermediateDirectories: true)
        try "[fleet]\naws_access_key_id = \(moto.accessKeyID)\naws_secret_access_key = \(moto.secretAccessKey)\n"
            .write(toFile: home + "/.aws/credentials", atomically: true, encoding: .utf8)
        try "[profile fleet]\nregion = us-east-1\n".write(toFile: home + "/.aws/config", atomically: true, encoding: .utf8)
        let ok = try await torpor(["describe", "--profile", "fleet", "--output", "json"], environment: environment)
        #expect(ok.status == 0, "\(ok.stderr)")

        let missing = try await torpor(["describe", "--profile", "nope"], environment: environment)
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("profile 'nope'"))

        try "[profile fleet]\nregion us-east-1\n".write(toFile: home + "/.aws/config", atomically: true, encoding: .utf8)
        let broken = try await torpor(["describe", "--profile", "fleet"], environment: environment)
        #expect(broken.status == 2)
        #expect(broken.stderr.contains("config:2"), "\(broken.stderr)")
    }

    @Test("--help explains the commands and exits 0")
    func help() async throws {
        let result = try await torpor(["stop", "--help"], environment: isolatedEnvironment())
        #expect(result.status == 0)
        #expect(result.stdout.contains("--hibernate") && result.stdout.contains("--dry-run") && result.stdout.contains("--yes"))
    }
}
