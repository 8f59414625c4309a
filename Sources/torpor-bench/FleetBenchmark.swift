import Foundation
import Logging
import TorporAWS
import TorporEC2
import TorporFleet
import TorporSigV4
import TorporSim

/// The fleet engine on a large simulated fleet under EC2's real throttling:
/// how close dispatch comes to the least time EC2's buckets allow, how many
/// calls it takes against the least possible, and whether every instance's
/// outcome matches the simulator's ground truth.
enum FleetBenchmark {
    static let tagKey = "Bench"
    static let tagValue = "hibernate"

    /// Half the fleet is tagged for the run: mostly a web tier (20% not
    /// configured for hibernation, 5% spot of which a fifth one-time), plus
    /// a few protected instances and a handful in an Auto Scaling group.
    static func fleet(instances: Int) -> FleetSpec {
        var spec = FleetSpec()
        spec.seed = 2026
        spec.credentials = [AWSCredentials(accessKeyID: "AKIDBENCH", secretAccessKey: "bench-secret")]
        let tagged = instances / 2
        let protected = max(1, instances / 500)
        let autoScaled = max(1, instances / 330)
        var web = GroupSpec(name: "web", count: tagged - protected - autoScaled)
        web.tags = [(key: tagKey, value: tagValue), (key: "Tier", value: "web")]
        web.hibernationConfigured = 0.8
        web.spot = 0.04
        web.oneTimeSpot = 0.01
        var guarded = GroupSpec(name: "protected", count: protected)
        guarded.tags = [(key: tagKey, value: tagValue), (key: "torpor:protect", value: "true")]
        var asg = GroupSpec(name: "asg", count: autoScaled)
        asg.tags = [(key: tagKey, value: tagValue)]
        asg.autoScalingGroup = "bench-workers"
        var rest = GroupSpec(name: "untouched", count: instances - tagged)
        rest.tags = [(key: "Tier", value: "other")]
        rest.hibernationConfigured = 0.8
        rest.spot = 0.05
        spec.groups = [web, guarded, asg, rest]
        return spec
    }

    static func run(instances: Int, speed: Double) async throws -> Bool {
        let spec = fleet(instances: instances)
        let engine = SimEngine(spec: spec, clock: ScaledClock(speed: speed), throttle: .aws, authenticate: true)
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let simulator = try await RunningSimulator.start(engine: engine, logger: logger)
        let location = ServiceLocation(region: spec.region, endpoint: try RequestURL(parsing: simulator.endpoint), endpointSource: "bench")
        let ec2 = EC2Client.forFleet(location: location, credentials: StaticCredentialProvider(spec.credentials[0]), logger: logger)
        let clock = ScaledFleetClock(speed: speed, now: { engine.clock.now() })

        var allCorrect = true
        for action in [FleetAction.hibernate, .start] {
            let before = Dictionary(uniqueKeysWithValues: engine.truth().map { ($0.id, $0) })
            let selector = FleetSelector(tags: [Tag(key: tagKey, value: tagValue)])
            let selection = try await FleetSelection.resolve(ec2, selector)
            let spot = action == .start ? (types: [String: String](), calls: 0)
                : await FleetSelection.spotRequestTypes(ec2, for: selection.instances)
            var rules = PlanRules()
            rules.maxInstances = instances
            let plan = Planner.plan(action, instances: selection.instances, spotRequestTypes: spot.types, rules: rules)

            var options = FleetExecutor.Options()
            // The first check comes when most transitions should be over:
            // about the p95 of the slowest transition in this fleet.
            options.firstPoll = 120
            let report = try await FleetExecutor(ec2: ec2, clock: clock, options: options).execute(plan)

            if ProcessInfo.processInfo.environment["TORPOR_BENCH_DEBUG"] != nil {
                let stats = engine.stats()
                FileHandle.standardError.write(Data("debug \(action): calls \(stats.calls) throttled \(stats.throttled)\n".utf8))
            }
            let truth = Dictionary(uniqueKeysWithValues: engine.truth().map { ($0.id, $0) })
            let incorrect = report.results.filter {
                !SimEngine.confirms(truth[$0.instanceID], outcome: $0.outcome.rawValue, before: before[$0.instanceID]?.state,
                                    starting: action == .start)
            }
            for wrong in incorrect.prefix(5) {
                FileHandle.standardError.write(Data("incorrect: \(wrong) truth: \(String(describing: truth[wrong.instanceID]))\n".utf8))
            }

            let acting = plan.acting
            let hibernating = acting.filter { $0.decision == .hibernate }.count
            let bound = leastDispatchTime(action: action, instances: acting.count, limits: options.limits)
            let dispatch = (report.lastDispatchAt ?? 0) - (report.firstCallAt ?? 0)
            let settle = (report.settledAt ?? 0) - (report.firstCallAt ?? 0)
            let selectionCalls = selection.calls + spot.calls
            let batches = action == .start
                ? pages(acting.count) : pages(hibernating) + pages(acting.count - hibernating)
            let minCalls = pages(selection.instances.count) + (spot.calls > 0 ? 1 : 0) + batches + pages(acting.count)
            let calls = report.calls + selectionCalls
            allCorrect = allCorrect && incorrect.isEmpty
            let outcomes = report.counts.filter { $0.value > 0 }.sorted { $0.key < $1.key }
                .map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
            print("{\"phase\":\"\(action.rawValue)\",\"instances\":\(acting.count),"
                  + "\"dispatch_s\":\(format(dispatch)),\"bound_s\":\(format(bound)),"
                  + "\"ratio\":\(String(format: "%.2f", bound > 0 ? dispatch / bound : 1)),"
                  + "\"settle_s\":\(format(settle)),\"calls\":\(calls),\"min_calls\":\(minCalls),"
                  + "\"throttled\":\(report.throttled),\"outcomes\":{\(outcomes)},\"incorrect\":\(incorrect.count)}")
        }
        await simulator.stop()
        return allCorrect
    }

    static func pages(_ count: Int) -> Int { (count + 999) / 1000 }

    static func format(_ value: Double) -> String { String(format: "%.1f", value) }

    /// The least time in which EC2's buckets, starting full, admit `n`
    /// instances in batches of at most 1000: the resource bucket gives its
    /// capacity at once and then its refill rate; the request bucket must
    /// also hold one token per batch. (ARCHITECTURE.md explains it.)
    static func leastDispatchTime(action: FleetAction, instances n: Int, limits: EC2Limits) -> Double {
        guard n > 0 else { return 0 }
        let resources = action == .start ? limits.startResources : limits.stopResources
        let requests = action == .start ? limits.startRequests : limits.mutating
        let resourceTime = max(0, (Double(n) - resources.capacity) / resources.refill)
        let batches = Double(pages(n))
        let requestTime = max(0, (batches - requests.capacity) / requests.refill)
        return max(resourceTime, requestTime)
    }
}
