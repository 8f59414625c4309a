public import TorporEC2

/// What a plan does to the fleet.
public enum FleetAction: String, Codable, Sendable, CaseIterable {
    /// Stop with hibernation (memory kept on the root volume).
    case hibernate
    /// Stop without hibernation.
    case stop
    case start
}

/// What to do with an instance that a hibernate plan targets but that is not
/// configured for hibernation.
public enum HibernationFallback: String, Codable, Sendable, CaseIterable {
    /// Stop it without hibernation (its next start is a cold boot).
    case stop
    /// Leave it running.
    case skip
    /// Report it as failed.
    case fail
}

/// The rules every plan applies before any call.
public struct PlanRules: Codable, Sendable, Equatable {
    /// Instances with this tag and value are never touched.
    public var protectTagKey = "torpor:protect"
    public var protectTagValue = "true"
    public var hibernationFallback = HibernationFallback.stop
    /// Blast radius: at most this many instances acted on per plan...
    public var maxInstances = 1000
    /// ...and at most this share of the selected instances.
    public var maxShare = 1.0
    /// Lets a plan past the blast-radius limits.
    public var overrideBlastRadius = false
    /// `StopInstances` with `Force`.
    public var force = false

    public init() {}

    public init(protectTagKey: String, protectTagValue: String, hibernationFallback: HibernationFallback = .stop,
                maxInstances: Int = 1000, maxShare: Double = 1, overrideBlastRadius: Bool = false, force: Bool = false) {
        self.protectTagKey = protectTagKey
        self.protectTagValue = protectTagValue
        self.hibernationFallback = hibernationFallback
        self.maxInstances = maxInstances
        self.maxShare = maxShare
        self.overrideBlastRadius = overrideBlastRadius
        self.force = force
    }

    /// `KEY=VALUE` split at the first `=`; nil without a key.
    public static func parseTag(_ text: String) -> (key: String, value: String)? {
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else { return nil }
        return (String(text[..<equals]), String(text[text.index(after: equals)...]))
    }

    public static let autoScalingGroupTag = "aws:autoscaling:groupName"
}

/// A planned instance and the decision for it.
public struct PlannedInstance: Codable, Sendable, Equatable {
    public enum Decision: Codable, Sendable, Equatable {
        case hibernate
        /// A stop; `fallbackReason` says why when the plan asked to hibernate.
        case stop(fallbackReason: String?)
        case start
        case noActionNeeded(reason: String)
        case skip(reason: String)
        /// Refused by the plan itself (hibernation fallback `fail`).
        case fail(reason: String)

        public var acts: Bool {
            switch self {
            case .hibernate, .stop, .start: return true
            default: return false
            }
        }

        public var label: String {
            switch self {
            case .hibernate: return "hibernate"
            case .stop(let reason): return reason == nil ? "stop" : "stop (fallback)"
            case .start: return "start"
            case .noActionNeeded: return "no action needed"
            case .skip: return "skip"
            case .fail: return "fail"
            }
        }

        public var reason: String? {
            switch self {
            case .stop(let reason): return reason
            case .noActionNeeded(let reason), .skip(let reason), .fail(let reason): return reason
            default: return nil
            }
        }
    }

    public let instance: EC2Instance
    public let decision: Decision

    public var instanceID: String { instance.instanceID }
}

/// An instance id that the selection named but EC2 does not know.
public struct MissingInstance: Codable, Sendable, Equatable {
    public let instanceID: String
    public let code: String
    public let message: String
}

/// A plan: the decision for every selected instance, and whether the blast
/// radius allows it. A value: it can be shown (`--plan`) before it runs.
public struct FleetPlan: Codable, Sendable, Equatable {
    public let action: FleetAction
    public let rules: PlanRules
    public let instances: [PlannedInstance]
    public let missing: [MissingInstance]

    public var acting: [PlannedInstance] { instances.filter { $0.decision.acts } }

    /// Why the plan may not run, or nil when it may.
    public var blastRadiusRefusal: String? {
        guard !rules.overrideBlastRadius else { return nil }
        let count = acting.count
        if count > rules.maxInstances {
            return "the plan would \(action.rawValue) \(count) instances, more than the limit of \(rules.maxInstances); "
                + "raise it with --max-instances or pass --override-blast-radius"
        }
        if !instances.isEmpty, Double(count) / Double(instances.count) > rules.maxShare {
            let percent = Int((Double(count) / Double(instances.count) * 100).rounded())
            return "the plan would \(action.rawValue) \(percent)% of the \(instances.count) selected instances, more than the limit of "
                + "\(Int(rules.maxShare * 100))%; raise it with --max-share or pass --override-blast-radius"
        }
        return nil
    }

    /// Decisions counted by label.
    public var counts: [String: Int] {
        instances.reduce(into: [:]) { $0[$1.decision.label, default: 0] += 1 }
    }
}

/// Builds plans. Pure: the same instances and rules always give the same plan.
public enum Planner {
    /// - Parameters:
    ///   - spotRequestTypes: `one-time` or `persistent` per spot request id,
    ///     from DescribeSpotInstanceRequests; a spot instance whose request
    ///     is not known is acted on, and EC2's answer decides.
    public static func plan(_ action: FleetAction, instances: [EC2Instance], missing: [MissingInstance] = [],
                            spotRequestTypes: [String: String] = [:], rules: PlanRules) -> FleetPlan {
        let planned = instances.map { instance in
            PlannedInstance(instance: instance, decision: decide(action, instance, spotRequestTypes, rules))
        }
        return FleetPlan(action: action, rules: rules, instances: planned, missing: missing)
    }

    static func decide(_ action: FleetAction, _ instance: EC2Instance, _ spotTypes: [String: String],
                       _ rules: PlanRules) -> PlannedInstance.Decision {
        let state = instance.state.name
        if state == "terminated" || state == "shutting-down" {
            return .skip(reason: "instance is \(state)")
        }
        if instance.tag(rules.protectTagKey) == rules.protectTagValue {
            return .skip(reason: "protected by tag \(rules.protectTagKey)=\(rules.protectTagValue)")
        }
        switch action {
        case .start:
            if state == "running" || state == "pending" { return .noActionNeeded(reason: "already \(state)") }
            return .start
        case .hibernate, .stop:
            if state == "stopped" || state == "stopping" { return .noActionNeeded(reason: "already \(state)") }
            if let group = instance.tag(PlanRules.autoScalingGroupTag) {
                return .skip(reason: "in Auto Scaling group \(group), which would replace a stopped instance")
            }
            if instance.rootDeviceType == "instance-store" {
                return .skip(reason: "instance-store root volume: EC2 cannot stop it")
            }
            if instance.instanceLifecycle == "spot", let request = instance.spotInstanceRequestID,
               spotTypes[request] == "one-time" {
                return .skip(reason: "one-time spot instance: EC2 cannot stop it")
            }
            guard action == .hibernate else { return .stop(fallbackReason: nil) }
            if instance.hibernationConfigured { return .hibernate }
            let why = "not configured for hibernation"
            switch rules.hibernationFallback {
            case .stop: return .stop(fallbackReason: why)
            case .skip: return .skip(reason: why)
            case .fail: return .fail(reason: why)
            }
        }
    }
}
