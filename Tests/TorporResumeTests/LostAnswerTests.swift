import Foundation
import Testing
import TorporAWS
import TorporEC2
import TorporFleet
import TorporPolicies
import TorporResume
import TorporSim
import TorporTestSupport

/// Starts whose answer never arrived: EC2 carried them out, the connection
/// closed, the client (or the executor) asked again and heard "pending" or
/// "running". Those resumes are ours all the same and must be measured.
@Suite("Resume tracker: starts whose answer was lost", .serialized, .timeLimit(.minutes(2)))
struct LostAnswerTests {
    @Test("every instance the simulator started has a resume, its acceptance inside the stated bracket")
    func lostAnswers() async throws {
        let spec = makeSpec(seed: 91, [
            tierGroup("batch", 30) {
                $0.initialState = .hibernated
                $0.timings.resume = DurationDistribution(median: 8, p95: 15)
                $0.timings.statusOk = DurationDistribution(median: 6, p95: 12)
            },
        ])
        var settings = ResumeSettings()
        settings.pollInterval = 2
        settings.policies = [policy("batch", tags: ["Tier": "batch"], readiness: .statusOK)]
        try await withSimulator(spec, speed: 10) { sim in
            try await withStore { store, _ in
                let tracker = sim.tracker(settings, store: store)
                let selection = try await FleetSelection.resolve(sim.ec2, FleetSelector(states: ["stopped"]))
                var rules = PlanRules()
                rules.maxInstances = 1000
                let plan = Planner.plan(.start, instances: selection.instances, rules: rules)
                var options = FleetExecutor.Options()
                options.waitForFinalStates = false
                options.batchSize = 3
                var faults = FaultSpec()
                // Every answer lost 3 times in a row to a batch (client) and
                // 4 times over (executor) would fail it: 0.3^12, never.
                faults.lostReplyRate = 0.3
                sim.engine.setFaults(faults)
                let report = try await FleetExecutor(ec2: sim.ec2, clock: sim.clock, options: options,
                                                     startsAccepted: { await tracker.register($0) }).execute(plan)
                sim.engine.setFaults(FaultSpec())
                let lost = sim.engine.stats().errors["ReplyLost"] ?? 0
                #expect(lost > 0, "the fault was never exercised")

                let tracking = track(tracker)
                try await finish(tracker, tracking)
                let truth = sim.engine.resumeTruth()
                #expect(truth.count == 30, "the simulator started every instance (\(report.results.count) outcomes)")
                let finished = await tracker.finished
                #expect(Set(finished.map(\.instanceID)) == Set(truth.keys), "a started instance has no resume")
                #expect(finished.count == truth.count, "one resume per instance")
                for record in finished {
                    #expect(record.state == .complete, "\(record.instanceID): \(record.state) \(record.lastState ?? "")")
                    ResumeTrackerTests.checkAgainstTruth(record, truth[record.instanceID], withinInterval: false)
                }
                #expect(try await store.records(since: 0).count == truth.count, "every resume stored")
            }
        }
    }
}
