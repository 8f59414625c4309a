import Foundation
import Testing
import TorporAWS
import TorporEC2
import TorporFleet
import TorporSigV4

/// The fleet engine's stop/start path (selection, plan, paced execution,
/// bulk waits) against moto with IAM authentication on: every call signed by
/// Torpor and verified by moto.
@Suite("Fleet engine against moto (IAM auth on)")
struct FleetMotoTests {
    /// A client as the fleet engine wants it: throttling left to its pacer.
    func fleetClient(_ moto: MotoFixture) throws -> EC2Client {
        let location = ServiceLocation(region: "us-east-1", endpoint: try RequestURL(parsing: moto.endpoint), endpointSource: "test")
        return EC2Client(aws: AWSQueryClient(
            service: "ec2", apiVersion: EC2Client.apiVersion, location: location,
            credentials: StaticCredentialProvider(moto.credentials), transport: CurlTransport(),
            retryPolicy: RetryPolicy(retryThrottling: false, baseDelay: .milliseconds(10))))
    }

    func options(tag: Bool = false) -> FleetExecutor.Options {
        var options = FleetExecutor.Options()
        options.firstPoll = 0.2
        options.maxPollInterval = 1
        options.waitDeadline = 60
        options.tagInstances = tag
        return options
    }

    @Test("hibernate then start: every selected instance stopped (or hibernated), then started; the protected one untouched")
    func hibernateThenStart() async throws {
        let moto = try await MotoFixture.get()
        let marker = uniqueMarker("fleet")
        let configured = try await moto.launch(count: 3, marker: marker)
        let plain = try await moto.launch(count: 2, marker: marker, hibernation: false)
        let protected = try await moto.launch(count: 1, marker: marker)
        let ec2 = try fleetClient(moto)
        try await ec2.createTags(resourceIDs: protected, tags: [TorporEC2.Tag(key: "torpor:protect", value: "true")])
        let everyone = configured + plain + protected
        let selector = FleetSelector(tags: [TorporEC2.Tag(key: "Marker", value: marker)])

        // Hibernate.
        let selection = try await FleetSelection.resolve(ec2, selector)
        #expect(Set(selection.instances.map(\.instanceID)) == Set(everyone))
        #expect(selection.missing.isEmpty)
        let spot = await FleetSelection.spotRequestTypes(ec2, for: selection.instances)
        #expect(spot.types.isEmpty)
        let plan = Planner.plan(.hibernate, instances: selection.instances, spotRequestTypes: spot.types, rules: PlanRules())
        #expect(plan.blastRadiusRefusal == nil)
        #expect(plan.counts == ["hibernate": 3, "stop (fallback)": 2, "skip": 1])
        let report = try await FleetExecutor(ec2: ec2, options: options(tag: true)).execute(plan)
        #expect(report.results.count == everyone.count)
        #expect(report.failedCount == 0)
        let results = Dictionary(uniqueKeysWithValues: report.results.map { ($0.instanceID, $0) })
        for id in configured {
            let result = try #require(results[id])
            // moto reports hibernation as a plain stop.
            #expect([.hibernated, .stopped].contains(result.outcome), "\(result)")
            #expect(result.previousState == "running" && result.lastState == "stopped")
        }
        for id in plain {
            let result = try #require(results[id])
            #expect(result.outcome == .stopped, "\(result)")
            #expect(result.reason?.contains("hibernation") == true, "\(result)")
            #expect(result.lastState == "stopped")
        }
        for id in protected {
            let result = try #require(results[id])
            #expect(result.outcome == .skipped)
            #expect(result.reason?.contains("torpor:protect") == true)
        }
        let afterStop = Dictionary(uniqueKeysWithValues: try await ec2.describeInstances(ids: everyone).all().map { ($0.instanceID, $0) })
        for id in configured + plain {
            #expect(afterStop[id]?.state == .stopped, "\(id): \(String(describing: afterStop[id]?.state))")
            #expect(afterStop[id]?.tag("torpor:last-action") == "hibernate")
        }
        #expect(afterStop[protected[0]]?.state == .running)
        #expect(afterStop[protected[0]]?.tag("torpor:last-action") == nil)

        // Start again.
        let again = try await FleetSelection.resolve(ec2, selector)
        let startPlan = Planner.plan(.start, instances: again.instances, rules: PlanRules())
        #expect(startPlan.counts == ["start": 5, "skip": 1])
        let started = try await FleetExecutor(ec2: ec2, options: options()).execute(startPlan)
        #expect(started.results.count == everyone.count)
        #expect(started.failedCount == 0)
        for result in started.results where result.instanceID != protected[0] {
            #expect(result.outcome == .started, "\(result)")
            #expect(result.previousState == "stopped" && result.lastState == "running")
        }
        let afterStart = try await ec2.describeInstances(ids: everyone).all()
        #expect(afterStart.count == everyone.count)
        #expect(afterStart.allSatisfy { $0.state == .running }, "\(afterStart.map(\.state))")

        // Running now: a second start has nothing to do.
        let noop = try await FleetExecutor(ec2: ec2, options: options())
            .execute(Planner.plan(.start, instances: try await FleetSelection.resolve(ec2, selector).instances, rules: PlanRules()))
        #expect(noop.calls == 0)
        #expect(noop.results.filter { $0.outcome == .noActionNeeded }.count == 5)
    }

    @Test("an id moto does not know: the selection reports it missing, the run reports it failed, the rest stop")
    func missingFromSelection() async throws {
        let moto = try await MotoFixture.get()
        let marker = uniqueMarker("fleet-missing")
        let ids = try await moto.launch(count: 2, marker: marker)
        let ec2 = try fleetClient(moto)
        let bogus = "i-0000000000000beef"
        let selection = try await FleetSelection.resolve(ec2, FleetSelector(ids: ids + [bogus]))
        #expect(Set(selection.instances.map(\.instanceID)) == Set(ids))
        #expect(selection.missing.map(\.instanceID) == [bogus])
        #expect(selection.missing.first?.code == "InvalidInstanceID.NotFound")

        let plan = Planner.plan(.stop, instances: selection.instances, missing: selection.missing, rules: PlanRules())
        let report = try await FleetExecutor(ec2: ec2, options: options()).execute(plan)
        #expect(report.results.count == 3)
        let failed = try #require(report.results.first { $0.instanceID == bogus })
        #expect(failed.outcome == .failed && failed.errorCode == "InvalidInstanceID.NotFound")
        for id in ids {
            #expect(report.results.first { $0.instanceID == id }?.outcome == .stopped)
        }
        let after = try await ec2.describeInstances(ids: ids).all()
        #expect(after.allSatisfy { $0.state == .stopped })
    }
}
