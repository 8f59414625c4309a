import Foundation
import Testing
import TorporAWS
import TorporEC2
import TorporFleet

/// Our client against moto with IAM authentication on: every call below is
/// signed by Torpor and verified by moto.
@Suite("EC2 operations against moto (IAM auth on)")
struct MotoEC2Tests {
    @Test("describe, stop with hibernation, start: the states follow")
    func lifecycle() async throws {
        let moto = try await MotoFixture.get()
        let marker = uniqueMarker("lifecycle")
        let ids = try await moto.launch(count: 3, marker: marker)
        let ec2 = try moto.client()
        let byTag = [EC2Filter(name: "tag:Marker", values: [marker])]

        let described = try await ec2.describeInstances(filters: byTag).all()
        #expect(Set(described.map(\.instanceID)) == Set(ids))
        #expect(described.allSatisfy { $0.state == .running && $0.hibernationConfigured && $0.instanceType == "m5.large" })
        #expect(described.allSatisfy { $0.tag("Marker") == marker && $0.availabilityZone != nil && $0.launchTime != nil })

        let stopped = try await ec2.stopInstances(ids: ids, hibernate: true)
        #expect(Set(stopped.changes.map(\.instanceID)) == Set(ids))
        #expect(stopped.changes.allSatisfy { $0.previousState == .running })
        let afterStop = try await ec2.describeInstances(ids: ids).all()
        #expect(afterStop.allSatisfy { $0.state == .stopped || $0.state == .stopping }, "\(afterStop.map(\.state))")

        let started = try await ec2.startInstances(ids: ids)
        #expect(Set(started.changes.map(\.instanceID)) == Set(ids))
        let afterStart = try await ec2.describeInstances(ids: ids).all()
        #expect(afterStart.allSatisfy { $0.state == .running || $0.state == .pending })
    }

    @Test("pagination: MaxResults 5 gives several pages and every instance exactly once")
    func pagination() async throws {
        let moto = try await MotoFixture.get()
        // moto counts MaxResults in reservations and paginates unfiltered
        // describes only, so this launches twelve reservations and walks the
        // whole (shared) fleet looking for them.
        let ids = try await moto.launch(count: 1, marker: uniqueMarker("pages"), reservations: 12)
        let ec2 = try moto.client()
        var pages = 0
        var seen: [String] = []
        for try await page in ec2.describeInstances(maxResults: 5) {
            pages += 1
            seen += page.items.map(\.instanceID)
        }
        #expect(pages >= 3)
        #expect(Set(seen).count == seen.count, "an instance came back on two pages")
        #expect(Set(ids).isSubset(of: Set(seen)))
    }

    @Test("a wrong secret is refused as an authentication error, not retried")
    func wrongSecret() async throws {
        let moto = try await MotoFixture.get()
        let ec2 = try moto.client(secret: "not-the-secret")
        do {
            _ = try await ec2.describeInstances().all()
            Issue.record("a request signed with the wrong secret was accepted")
        } catch let error as AWSServiceError {
            #expect(["AuthFailure", "SignatureDoesNotMatch"].contains(error.code), "\(error)")
            #expect((400..<500).contains(error.httpStatus))
        }
    }

    @Test("dry run: DryRunOperation is reported as permitted and nothing changes")
    func dryRun() async throws {
        let moto = try await MotoFixture.get()
        let ids = try await moto.launch(count: 2, marker: uniqueMarker("dry"))
        let ec2 = try moto.client()
        let result = try await ec2.stopInstances(ids: ids, hibernate: true, dryRun: true)
        #expect(result.dryRunPermitted)
        #expect(result.changes.isEmpty)
        let after = try await ec2.describeInstances(ids: ids).all()
        #expect(after.allSatisfy { $0.state == .running })
    }

    @Test("an unknown id fails the call with InvalidInstanceID.NotFound naming it; the fleet engine isolates it")
    func unknownID() async throws {
        let moto = try await MotoFixture.get()
        let ids = try await moto.launch(count: 2, marker: uniqueMarker("unknown"))
        let ec2 = try moto.client()
        let bogus = "i-0000000000000dead"
        await #expect(throws: AWSServiceError.self) { _ = try await ec2.stopInstances(ids: ids + [bogus]) }

        // A plan that believes in the bogus instance: EC2's refusal names it,
        // and the engine takes exactly it out and resends the rest.
        let described = try await ec2.describeInstances(ids: ids).all()
        let phantom = EC2Instance(instanceID: bogus, instanceType: "m5.large", state: .running)
        var rules = PlanRules()
        rules.overrideBlastRadius = true
        let plan = Planner.plan(.stop, instances: described + [phantom], rules: rules)
        var options = FleetExecutor.Options()
        options.firstPoll = 0.2
        let report = try await FleetExecutor(ec2: ec2, options: options).execute(plan)
        #expect(report.results.count == 3)
        for id in ids {
            let result = try #require(report.results.first { $0.instanceID == id })
            #expect(result.outcome == .stopped, "\(result)")
            #expect(result.previousState == "running" && result.lastState == "stopped")
        }
        let failed = try #require(report.results.first { $0.instanceID == bogus })
        #expect(failed.outcome == .failed)
        #expect(failed.errorCode == "InvalidInstanceID.NotFound")
        #expect(failed.errorMessage?.contains(bogus) == true)
    }

    @Test("instance status, instance types and spot price history decode")
    func otherDescribes() async throws {
        let moto = try await MotoFixture.get()
        let ids = try await moto.launch(count: 2, marker: uniqueMarker("status"))
        let ec2 = try moto.client()
        let statuses = try await ec2.describeInstanceStatus(ids: ids, includeAllInstances: true).all()
        #expect(Set(statuses.map(\.instanceID)) == Set(ids))
        #expect(statuses.allSatisfy { $0.state == .running })

        let types = try await ec2.describeInstanceTypes(instanceTypes: ["m5.large", "t3.micro"]).all()
        #expect(Set(types.map(\.instanceType)) == ["m5.large", "t3.micro"])
        #expect(types.first { $0.instanceType == "m5.large" }?.memoryMiB == 8192)

        let prices = try await ec2.describeSpotPriceHistory(instanceTypes: ["m5.large"]).all()
        #expect(prices.allSatisfy { $0.instanceType == "m5.large" && Double($0.price) != nil })
    }

    @Test("more than 100 ids for DescribeInstanceStatus is refused before any call")
    func statusLimit() async throws {
        let ec2 = try await MotoFixture.get().client()
        let ids = (0..<101).map { String(format: "i-%017x", $0) }
        #expect(throws: EC2UsageError.self) { _ = try ec2.describeInstanceStatus(ids: ids) }
    }
}
