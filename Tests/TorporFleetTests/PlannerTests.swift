import Foundation
import Testing
@testable import TorporEC2
@testable import TorporFleet
import TorporTestSupport

/// One instance, one action, one set of rules: the decision the plan must make.
struct RuleCase: Sendable, CustomTestStringConvertible {
    let name: String
    let action: FleetAction
    let instance: EC2Instance
    var spotTypes: [String: String] = [:]
    var rules = PlanRules()
    /// The decision's label (`hibernate`, `stop`, `stop (fallback)`, `start`,
    /// `no action needed`, `skip`, `fail`) ...
    let label: String
    /// ... and what its reason must say (no reason at all when empty).
    var reason: [String] = []

    var testDescription: String { name }
}

private let protectTag = EC2Tag(key: "torpor:protect", value: "true")
private let asgTag = EC2Tag(key: PlanRules.autoScalingGroupTag, value: "workers")
private let customRules = rules { $0.protectTagKey = "keep"; $0.protectTagValue = "yes" }

let ruleCases: [RuleCase] = [
    // Terminated and shutting-down instances are never touched.
    RuleCase(name: "terminated, hibernate", action: .hibernate, instance: makeInstance(fakeID(1), state: .terminated),
             label: "skip", reason: ["instance is terminated"]),
    RuleCase(name: "terminated, start", action: .start, instance: makeInstance(fakeID(1), state: .terminated),
             label: "skip", reason: ["instance is terminated"]),
    RuleCase(name: "shutting-down, stop", action: .stop, instance: makeInstance(fakeID(1), state: .shuttingDown),
             label: "skip", reason: ["instance is shutting-down"]),
    RuleCase(name: "shutting-down, start", action: .start, instance: makeInstance(fakeID(1), state: .shuttingDown),
             label: "skip", reason: ["instance is shutting-down"]),

    // Protection: the default tag, and a custom key and value.
    RuleCase(name: "default protect tag, hibernate", action: .hibernate, instance: makeInstance(fakeID(2), tags: [protectTag]),
             label: "skip", reason: ["protected", "torpor:protect=true"]),
    RuleCase(name: "default protect tag, stop", action: .stop, instance: makeInstance(fakeID(2), tags: [protectTag]),
             label: "skip", reason: ["protected", "torpor:protect=true"]),
    RuleCase(name: "default protect tag, start", action: .start, instance: makeInstance(fakeID(2), state: .stopped, tags: [protectTag]),
             label: "skip", reason: ["protected", "torpor:protect=true"]),
    RuleCase(name: "protect tag with another value is not protection", action: .hibernate,
             instance: makeInstance(fakeID(2), tags: [EC2Tag(key: "torpor:protect", value: "false")]), label: "hibernate"),
    RuleCase(name: "custom protect key and value", action: .stop, instance: makeInstance(fakeID(3), tags: [EC2Tag(key: "keep", value: "yes")]),
             rules: customRules, label: "skip", reason: ["protected", "keep=yes"]),
    RuleCase(name: "custom key: the default tag no longer protects", action: .stop, instance: makeInstance(fakeID(3), tags: [protectTag]),
             rules: customRules, label: "stop"),
    RuleCase(name: "custom key with another value", action: .stop, instance: makeInstance(fakeID(3), tags: [EC2Tag(key: "keep", value: "no")]),
             rules: customRules, label: "stop"),

    // Already where the action would take it.
    RuleCase(name: "stopped, hibernate", action: .hibernate, instance: makeInstance(fakeID(4), state: .stopped),
             label: "no action needed", reason: ["already stopped"]),
    RuleCase(name: "stopping, hibernate", action: .hibernate, instance: makeInstance(fakeID(4), state: .stopping),
             label: "no action needed", reason: ["already stopping"]),
    RuleCase(name: "stopped, stop", action: .stop, instance: makeInstance(fakeID(4), state: .stopped),
             label: "no action needed", reason: ["already stopped"]),
    RuleCase(name: "stopping, stop", action: .stop, instance: makeInstance(fakeID(4), state: .stopping),
             label: "no action needed", reason: ["already stopping"]),
    RuleCase(name: "running, start", action: .start, instance: makeInstance(fakeID(4), state: .running),
             label: "no action needed", reason: ["already running"]),
    RuleCase(name: "pending, start", action: .start, instance: makeInstance(fakeID(4), state: .pending),
             label: "no action needed", reason: ["already pending"]),
    RuleCase(name: "stopped, start", action: .start, instance: makeInstance(fakeID(4), state: .stopped), label: "start"),
    RuleCase(name: "stopped unconfigured, start", action: .start, instance: makeInstance(fakeID(4), state: .stopped, configured: false),
             label: "start"),
    RuleCase(name: "running, hibernate", action: .hibernate, instance: makeInstance(fakeID(4)), label: "hibernate"),
    RuleCase(name: "running, stop", action: .stop, instance: makeInstance(fakeID(4)), label: "stop"),

    // Auto Scaling groups: stopping would make the group replace the instance; starting is harmless.
    RuleCase(name: "ASG, hibernate", action: .hibernate, instance: makeInstance(fakeID(5), tags: [asgTag]),
             label: "skip", reason: ["Auto Scaling group workers"]),
    RuleCase(name: "ASG, stop", action: .stop, instance: makeInstance(fakeID(5), tags: [asgTag]),
             label: "skip", reason: ["Auto Scaling group workers"]),
    RuleCase(name: "ASG, start", action: .start, instance: makeInstance(fakeID(5), state: .stopped, tags: [asgTag]), label: "start"),

    // Instance-store roots cannot be stopped.
    RuleCase(name: "instance-store, hibernate", action: .hibernate, instance: makeInstance(fakeID(6), root: "instance-store"),
             label: "skip", reason: ["instance-store"]),
    RuleCase(name: "instance-store, stop", action: .stop, instance: makeInstance(fakeID(6), root: "instance-store"),
             label: "skip", reason: ["instance-store"]),

    // Spot: one-time requests cannot be stopped; persistent ones can.
    RuleCase(name: "one-time spot, hibernate", action: .hibernate,
             instance: makeInstance(fakeID(7), lifecycle: "spot", spotRequest: "sir-once"), spotTypes: ["sir-once": "one-time"],
             label: "skip", reason: ["one-time spot", "cannot stop"]),
    RuleCase(name: "one-time spot, stop", action: .stop,
             instance: makeInstance(fakeID(7), lifecycle: "spot", spotRequest: "sir-once"), spotTypes: ["sir-once": "one-time"],
             label: "skip", reason: ["one-time spot", "cannot stop"]),
    RuleCase(name: "persistent spot, hibernate", action: .hibernate,
             instance: makeInstance(fakeID(7), lifecycle: "spot", spotRequest: "sir-keep"), spotTypes: ["sir-keep": "persistent"],
             label: "hibernate"),
    RuleCase(name: "spot whose request type is unknown is acted on", action: .hibernate,
             instance: makeInstance(fakeID(7), lifecycle: "spot", spotRequest: "sir-unknown"), spotTypes: ["sir-other": "one-time"],
             label: "hibernate"),
    RuleCase(name: "persistent spot, not configured: the fallback", action: .hibernate,
             instance: makeInstance(fakeID(7), configured: false, lifecycle: "spot", spotRequest: "sir-keep"),
             spotTypes: ["sir-keep": "persistent"], label: "stop (fallback)", reason: ["not configured for hibernation"]),
    RuleCase(name: "one-time spot, start (it is running: nothing to do)", action: .start,
             instance: makeInstance(fakeID(7), lifecycle: "spot", spotRequest: "sir-once"), spotTypes: ["sir-once": "one-time"],
             label: "no action needed", reason: ["already running"]),

    // Not configured for hibernation: the fallback decides.
    RuleCase(name: "unconfigured, fallback stop", action: .hibernate, instance: makeInstance(fakeID(8), configured: false),
             rules: rules { $0.hibernationFallback = .stop }, label: "stop (fallback)", reason: ["not configured for hibernation"]),
    RuleCase(name: "unconfigured, fallback skip", action: .hibernate, instance: makeInstance(fakeID(8), configured: false),
             rules: rules { $0.hibernationFallback = .skip }, label: "skip", reason: ["not configured for hibernation"]),
    RuleCase(name: "unconfigured, fallback fail", action: .hibernate, instance: makeInstance(fakeID(8), configured: false),
             rules: rules { $0.hibernationFallback = .fail }, label: "fail", reason: ["not configured for hibernation"]),
    RuleCase(name: "unconfigured, plain stop ignores the fallback", action: .stop, instance: makeInstance(fakeID(8), configured: false),
             rules: rules { $0.hibernationFallback = .fail }, label: "stop"),

    // Protection wins over every other rule.
    RuleCase(name: "protected beats ASG, instance-store, one-time spot, unconfigured with fallback fail", action: .hibernate,
             instance: makeInstance(fakeID(9), tags: [asgTag, protectTag], configured: false, lifecycle: "spot",
                                    spotRequest: "sir-once", root: "instance-store"),
             spotTypes: ["sir-once": "one-time"], rules: rules { $0.hibernationFallback = .fail },
             label: "skip", reason: ["protected"]),
    RuleCase(name: "protected beats already stopped", action: .hibernate,
             instance: makeInstance(fakeID(9), state: .stopped, tags: [protectTag]), label: "skip", reason: ["protected"]),
    RuleCase(name: "protected beats already running", action: .start,
             instance: makeInstance(fakeID(9), state: .running, tags: [protectTag]), label: "skip", reason: ["protected"]),
    RuleCase(name: "protected and unconfigured with fallback stop", action: .hibernate,
             instance: makeInstance(fakeID(9), tags: [protectTag], configured: false), label: "skip", reason: ["protected"]),
]

@Suite("Planner: decisions and blast radius")
struct PlannerTests {
    @Test("every rule", arguments: ruleCases)
    func rule(_ rule: RuleCase) {
        let plan = Planner.plan(rule.action, instances: [rule.instance], spotRequestTypes: rule.spotTypes, rules: rule.rules)
        #expect(plan.action == rule.action)
        #expect(plan.rules == rule.rules)
        #expect(plan.instances.count == 1)
        let decision = plan.instances[0].decision
        #expect(plan.instances[0].instance == rule.instance)
        #expect(decision.label == rule.label, "\(decision)")
        if rule.reason.isEmpty {
            #expect(decision.reason == nil, "\(decision)")
        } else {
            let reason = decision.reason ?? ""
            for fragment in rule.reason { #expect(reason.contains(fragment), "'\(reason)' should mention '\(fragment)'") }
        }
        let acts = ["hibernate", "stop", "stop (fallback)", "start"].contains(rule.label)
        #expect(decision.acts == acts)
        #expect(plan.acting.count == (acts ? 1 : 0))
        // Nothing to refuse for a single instance under the default limits.
        #expect(plan.blastRadiusRefusal == nil)
    }

    @Test("decisions are the documented values, not just their labels")
    func exactDecisions() {
        let instances = [
            makeInstance(fakeID(1)), makeInstance(fakeID(2), configured: false), makeInstance(fakeID(3), state: .stopped),
        ]
        let hibernate = Planner.plan(.hibernate, instances: instances, rules: PlanRules())
        #expect(hibernate.instances.map(\.decision) == [
            .hibernate, .stop(fallbackReason: "not configured for hibernation"), .noActionNeeded(reason: "already stopped"),
        ])
        let stop = Planner.plan(.stop, instances: instances, rules: PlanRules())
        #expect(stop.instances.map(\.decision) == [
            .stop(fallbackReason: nil), .stop(fallbackReason: nil), .noActionNeeded(reason: "already stopped"),
        ])
        let start = Planner.plan(.start, instances: instances, rules: PlanRules())
        #expect(start.instances.map(\.decision) == [
            .noActionNeeded(reason: "already running"), .noActionNeeded(reason: "already running"), .start,
        ])
    }

    @Test("the default rules")
    func defaults() {
        let rules = PlanRules()
        #expect(rules.protectTagKey == "torpor:protect" && rules.protectTagValue == "true")
        #expect(rules.hibernationFallback == .stop)
        #expect(rules.maxInstances == 1000 && rules.maxShare == 1.0)
        #expect(!rules.overrideBlastRadius && !rules.force)
        #expect(PlanRules.autoScalingGroupTag == "aws:autoscaling:groupName")
    }

    // MARK: Blast radius

    struct RadiusCase: Sendable, CustomTestStringConvertible {
        let name: String
        /// Running instances (they act) and stopped ones (selected, no action).
        let running: Int
        let stopped: Int
        var maxInstances = 1000
        var maxShare = 1.0
        var override = false
        /// nil: the plan may run; else what the refusal must say.
        let refusal: [String]?
        var testDescription: String { name }
    }

    static let radiusCases: [RadiusCase] = [
        RadiusCase(name: "more than maxInstances", running: 5, stopped: 0, maxInstances: 4,
                   refusal: ["hibernate 5 instances", "limit of 4", "--max-instances", "--override-blast-radius"]),
        RadiusCase(name: "exactly maxInstances", running: 4, stopped: 0, maxInstances: 4, refusal: nil),
        RadiusCase(name: "only acting instances count towards maxInstances", running: 4, stopped: 6, maxInstances: 4, refusal: nil),
        RadiusCase(name: "one over with many selected", running: 11, stopped: 89, maxInstances: 10,
                   refusal: ["11 instances", "limit of 10", "--max-instances"]),
        RadiusCase(name: "more than maxShare", running: 3, stopped: 1, maxShare: 0.5,
                   refusal: ["75%", "of the 4 selected instances", "limit of 50%", "--max-share", "--override-blast-radius"]),
        RadiusCase(name: "share rounded to a whole percent", running: 2, stopped: 1, maxShare: 0.5,
                   refusal: ["67%", "of the 3 selected", "limit of 50%"]),
        RadiusCase(name: "exactly maxShare", running: 2, stopped: 2, maxShare: 0.5, refusal: nil),
        RadiusCase(name: "maxShare 0 refuses any action", running: 1, stopped: 9, maxShare: 0,
                   refusal: ["10%", "limit of 0%"]),
        RadiusCase(name: "maxShare 0 with nothing acting", running: 0, stopped: 3, maxShare: 0, refusal: nil),
        RadiusCase(name: "override past both limits", running: 10, stopped: 0, maxInstances: 1, maxShare: 0.1, override: true,
                   refusal: nil),
        RadiusCase(name: "override past maxInstances", running: 3, stopped: 0, maxInstances: 2, override: true, refusal: nil),
        RadiusCase(name: "empty selection", running: 0, stopped: 0, maxInstances: 0, maxShare: 0, refusal: nil),
        RadiusCase(name: "maxInstances is checked before maxShare", running: 5, stopped: 0, maxInstances: 2, maxShare: 0.5,
                   refusal: ["--max-instances"]),
    ]

    @Test("blast radius", arguments: radiusCases)
    func blastRadius(_ radius: RadiusCase) {
        let instances = (0..<radius.running).map { makeInstance(fakeID($0)) }
            + (0..<radius.stopped).map { makeInstance(fakeID(1000 + $0), state: .stopped) }
        let plan = Planner.plan(.hibernate, instances: instances, rules: rules {
            $0.maxInstances = radius.maxInstances
            $0.maxShare = radius.maxShare
            $0.overrideBlastRadius = radius.override
        })
        #expect(plan.acting.count == radius.running)
        guard let fragments = radius.refusal else {
            #expect(plan.blastRadiusRefusal == nil)
            return
        }
        let refusal = plan.blastRadiusRefusal
        #expect(refusal != nil)
        for fragment in fragments {
            #expect(refusal?.contains(fragment) == true, "'\(refusal ?? "nil")' should mention '\(fragment)'")
        }
        if radius.name == "maxInstances is checked before maxShare" {
            #expect(refusal?.contains("--max-share") == false)
        }
    }

    @Test("the refusal names the plan's action")
    func refusalNamesAction() {
        let stopped = (0..<3).map { makeInstance(fakeID($0), state: .stopped) }
        let plan = Planner.plan(.start, instances: stopped, rules: rules { $0.maxInstances = 2 })
        #expect(plan.blastRadiusRefusal?.contains("start 3 instances") == true)
    }

    // MARK: Counts, acting, order, purity

    static let mixedFleet: [EC2Instance] = [
        makeInstance(fakeID(1)),                                                     // hibernate
        makeInstance(fakeID(2), configured: false),                                  // stop (fallback)
        makeInstance(fakeID(3), state: .stopped),                                    // no action needed
        makeInstance(fakeID(4), tags: [protectTag]),                                 // skip
        makeInstance(fakeID(5), tags: [asgTag]),                                     // skip
        makeInstance(fakeID(6), root: "instance-store"),                             // skip
        makeInstance(fakeID(7), lifecycle: "spot", spotRequest: "sir-1"),            // skip (one-time)
        makeInstance(fakeID(8), lifecycle: "spot", spotRequest: "sir-2"),            // hibernate (persistent)
        makeInstance(fakeID(9), state: .terminated),                                 // skip
        makeInstance(fakeID(10), configured: false),                                 // stop (fallback)
    ]
    static let mixedSpot = ["sir-1": "one-time", "sir-2": "persistent"]

    @Test("counts by label and the acting list, in the selection's order")
    func countsAndActing() {
        let plan = Planner.plan(.hibernate, instances: Self.mixedFleet, spotRequestTypes: Self.mixedSpot, rules: PlanRules())
        #expect(plan.instances.map(\.instanceID) == Self.mixedFleet.map(\.instanceID))
        #expect(plan.counts == ["hibernate": 2, "stop (fallback)": 2, "no action needed": 1, "skip": 5])
        #expect(plan.counts.values.reduce(0, +) == Self.mixedFleet.count)
        #expect(plan.acting.map(\.instanceID) == [fakeID(1), fakeID(2), fakeID(8), fakeID(10)])

        let failing = Planner.plan(.hibernate, instances: Self.mixedFleet, spotRequestTypes: Self.mixedSpot,
                                   rules: rules { $0.hibernationFallback = .fail })
        #expect(failing.counts == ["hibernate": 2, "fail": 2, "no action needed": 1, "skip": 5])
        #expect(failing.acting.map(\.instanceID) == [fakeID(1), fakeID(8)])

        let stop = Planner.plan(.stop, instances: Self.mixedFleet, spotRequestTypes: Self.mixedSpot, rules: PlanRules())
        #expect(stop.counts == ["stop": 4, "no action needed": 1, "skip": 5])

        let start = Planner.plan(.start, instances: Self.mixedFleet, spotRequestTypes: Self.mixedSpot, rules: PlanRules())
        // Running ones need nothing; the stopped one starts; protected and terminated are skipped.
        #expect(start.counts == ["no action needed": 7, "start": 1, "skip": 2])
        #expect(start.acting.map(\.instanceID) == [fakeID(3)])
    }

    @Test("planning is pure, and missing ids pass through")
    func pure() {
        let missing = [MissingInstance(instanceID: fakeID(99), code: "InvalidInstanceID.NotFound", message: "gone")]
        let first = Planner.plan(.hibernate, instances: Self.mixedFleet, missing: missing, spotRequestTypes: Self.mixedSpot,
                                 rules: PlanRules())
        let second = Planner.plan(.hibernate, instances: Self.mixedFleet, missing: missing, spotRequestTypes: Self.mixedSpot,
                                  rules: PlanRules())
        #expect(first == second)
        #expect(first.missing == missing)
        // Missing ids are not planned instances and do not count.
        #expect(first.counts.values.reduce(0, +) == Self.mixedFleet.count)
    }

    @Test("a plan round-trips through JSON", arguments: FleetAction.allCases)
    func codable(_ action: FleetAction) throws {
        let custom = rules {
            $0.protectTagKey = "keep"
            $0.protectTagValue = "yes"
            $0.hibernationFallback = .fail
            $0.maxInstances = 7
            $0.maxShare = 0.25
            $0.overrideBlastRadius = true
            $0.force = true
        }
        var fleet = Self.mixedFleet
        fleet[0].stateReason = StateReason(code: "Client.UserInitiatedHibernate", message: "Client.UserInitiatedHibernate: User initiated hibernate")
        fleet[0].launchTime = 1_795_000_000
        fleet[0].availabilityZone = "us-east-1a"
        fleet[0].privateIPAddress = "10.0.0.1"
        fleet.append(makeInstance(fakeID(11), tags: [EC2Tag(key: "keep", value: "yes")]))
        let missing = [MissingInstance(instanceID: fakeID(99), code: "InvalidInstanceID.NotFound", message: "The instance ID does not exist")]
        for ruleSet in [PlanRules(), custom] {
            let plan = Planner.plan(action, instances: fleet, missing: missing, spotRequestTypes: Self.mixedSpot, rules: ruleSet)
            let data = try JSONEncoder().encode(plan)
            let decoded = try JSONDecoder().decode(FleetPlan.self, from: data)
            #expect(decoded == plan)
            #expect(decoded.blastRadiusRefusal == plan.blastRadiusRefusal)
            #expect(decoded.counts == plan.counts)
        }
    }

    @Test("every decision round-trips through JSON")
    func decisionsCodable() throws {
        let decisions: [PlannedInstance.Decision] = [
            .hibernate, .stop(fallbackReason: nil), .stop(fallbackReason: "why"), .start,
            .noActionNeeded(reason: "already"), .skip(reason: "skipped"), .fail(reason: "refused"),
        ]
        let data = try JSONEncoder().encode(decisions)
        #expect(try JSONDecoder().decode([PlannedInstance.Decision].self, from: data) == decisions)
    }
}
