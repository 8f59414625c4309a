import Foundation
import TorporSigV4
public import TorporYAML
import Yams

/// A problem in a fleet or throttle file: which file, which line, what.
public typealias FleetFileError = YAMLFileError

extension FleetSpec {
    /// Reads a fleet file. `file` names it in errors.
    public static func parse(_ text: String, file: String) throws(FleetFileError) -> FleetSpec {
        let reader = YAMLReader(file: file)
        let root = try reader.load(text)
        let top = try reader.mapping(root, "the fleet file", allowed: [
            "seed", "region", "credentials", "groups", "spotPrices", "faults", "hibernateReadyAfter",
        ])
        var spec = FleetSpec()
        if let node = top["seed"] {
            let text = try reader.string(node, "seed")
            guard let seed = UInt64(text) else { throw reader.fail(node, "seed must be a whole number from 0, not '\(text)'") }
            spec.seed = seed
        }
        if let node = top["region"] { spec.region = try reader.string(node, "region") }
        if let node = top["hibernateReadyAfter"] { spec.hibernateReadyAfter = try reader.duration(node, "hibernateReadyAfter") }
        if let node = top["credentials"] {
            for (index, item) in try reader.sequence(node, "credentials").enumerated() {
                let context = "credentials[\(index + 1)]"
                let fields = try reader.mapping(item, context, allowed: ["accessKeyId", "secretAccessKey"])
                guard let key = fields["accessKeyId"], let secret = fields["secretAccessKey"] else {
                    throw reader.fail(item, "\(context) needs accessKeyId and secretAccessKey")
                }
                spec.credentials.append(AWSCredentials(accessKeyID: try reader.string(key, "\(context).accessKeyId"),
                                                       secretAccessKey: try reader.string(secret, "\(context).secretAccessKey")))
            }
        }
        guard let groupsNode = top["groups"] else { throw reader.fail(root, "the fleet file needs groups") }
        var names = Set<String>()
        for (index, item) in try reader.sequence(groupsNode, "groups").enumerated() {
            let group = try parseGroup(item, reader: reader, index: index)
            guard names.insert(group.name).inserted else { throw reader.fail(item, "groups: the name '\(group.name)' is used twice") }
            spec.groups.append(group)
        }
        if let node = top["spotPrices"] {
            for (index, item) in try reader.sequence(node, "spotPrices").enumerated() {
                spec.spotPrices.append(try parseSpotSeries(item, reader: reader, index: index))
            }
        }
        if let node = top["faults"] { spec.faults = try parseFaults(node, reader: reader, context: "faults") }
        return spec
    }

    static func parseGroup(_ node: Node, reader: YAMLReader, index: Int) throws(FleetFileError) -> GroupSpec {
        let fields = try reader.mapping(node, "groups[\(index + 1)]", allowed: [
            "name", "count", "instanceType", "memoryGiB", "zones", "state", "tags", "hibernationConfigured", "spot",
            "oneTimeSpot", "autoScalingGroup", "rootDeviceType", "timings", "probePort",
        ])
        guard let nameNode = fields["name"] else { throw reader.fail(node, "groups[\(index + 1)] needs a name") }
        let name = try reader.string(nameNode, "groups[\(index + 1)].name")
        let context = "group '\(name)'"
        guard let countNode = fields["count"] else { throw reader.fail(node, "\(context) needs a count") }
        var group = GroupSpec(name: name, count: try reader.int(countNode, "\(context).count", range: 0...200_000))
        if let node = fields["instanceType"] { group.instanceType = try reader.string(node, "\(context).instanceType") }
        if let node = fields["memoryGiB"] { group.memoryGiB = try reader.double(node, "\(context).memoryGiB", range: 0.5...24_576) }
        if let node = fields["zones"] {
            group.zones = try reader.sequence(node, "\(context).zones").map { (zone) throws(FleetFileError) in try reader.string(zone, "\(context).zones") }
            if group.zones.isEmpty { throw reader.fail(node, "\(context).zones must name at least one zone") }
        }
        if let node = fields["state"] {
            let text = try reader.string(node, "\(context).state")
            guard let state = GroupSpec.InitialState(rawValue: text) else {
                throw reader.fail(node, "\(context).state must be running, stopped or hibernated, not '\(text)'")
            }
            group.initialState = state
        }
        if let node = fields["tags"] {
            guard case .mapping(let mapping) = node else { throw reader.fail(node, "\(context).tags must be a mapping") }
            for (key, value) in mapping {
                group.tags.append((try reader.string(key, "\(context).tags"), try reader.string(value, "\(context).tags")))
            }
        }
        if let node = fields["hibernationConfigured"] { group.hibernationConfigured = try reader.fraction(node, "\(context).hibernationConfigured") }
        if let node = fields["spot"] { group.spot = try reader.fraction(node, "\(context).spot") }
        if let node = fields["oneTimeSpot"] { group.oneTimeSpot = try reader.fraction(node, "\(context).oneTimeSpot") }
        if group.spot + group.oneTimeSpot > 1 {
            throw reader.fail(fields["oneTimeSpot"] ?? node, "\(context): spot and oneTimeSpot together exceed the whole group")
        }
        if let node = fields["autoScalingGroup"] { group.autoScalingGroup = try reader.string(node, "\(context).autoScalingGroup") }
        if let node = fields["rootDeviceType"] {
            let text = try reader.string(node, "\(context).rootDeviceType")
            guard text == "ebs" || text == "instance-store" else {
                throw reader.fail(node, "\(context).rootDeviceType must be ebs or instance-store, not '\(text)'")
            }
            group.rootDeviceType = text
        }
        if let node = fields["probePort"] { group.probePort = try reader.int(node, "\(context).probePort", range: 1...65535) }
        if let node = fields["timings"] { group.timings = try parseTimings(node, reader: reader, context: "\(context).timings") }
        return group
    }

    static func parseTimings(_ node: Node, reader: YAMLReader, context: String) throws(FleetFileError) -> Timings {
        let fields = try reader.mapping(node, context, allowed: [
            "stop", "hibernate", "hibernatePerGiB", "coldBoot", "resume", "statusOk", "reachable",
        ])
        var timings = Timings()
        func distribution(_ key: String) throws(FleetFileError) -> DurationDistribution? {
            guard let node = fields[key] else { return nil }
            let parts = try reader.mapping(node, "\(context).\(key)", allowed: ["median", "p95"])
            guard let median = parts["median"], let p95 = parts["p95"] else {
                throw reader.fail(node, "\(context).\(key) needs median and p95")
            }
            let m = try reader.duration(median, "\(context).\(key).median")
            let p = try reader.duration(p95, "\(context).\(key).p95")
            guard p >= m else { throw reader.fail(p95, "\(context).\(key).p95 must not be below the median") }
            return DurationDistribution(median: m, p95: p)
        }
        if let value = try distribution("stop") { timings.stop = value }
        if let value = try distribution("hibernate") { timings.hibernate = value }
        if let value = try distribution("coldBoot") { timings.coldBoot = value }
        if let value = try distribution("resume") { timings.resume = value }
        if let value = try distribution("statusOk") { timings.statusOk = value }
        if let value = try distribution("reachable") { timings.reachable = value }
        if let node = fields["hibernatePerGiB"] { timings.hibernatePerGiB = try reader.duration(node, "\(context).hibernatePerGiB") }
        return timings
    }

    static func parseSpotSeries(_ node: Node, reader: YAMLReader, index: Int) throws(FleetFileError) -> SpotSeriesSpec {
        let context = "spotPrices[\(index + 1)]"
        let fields = try reader.mapping(node, context, allowed: ["instanceType", "zone", "product", "steps", "randomWalk"])
        guard let type = fields["instanceType"], let zone = fields["zone"] else {
            throw reader.fail(node, "\(context) needs instanceType and zone")
        }
        var series = SpotSeriesSpec(instanceType: try reader.string(type, "\(context).instanceType"),
                                    zone: try reader.string(zone, "\(context).zone"))
        if let node = fields["product"] { series.product = try reader.string(node, "\(context).product") }
        if let node = fields["steps"] {
            for (stepIndex, item) in try reader.sequence(node, "\(context).steps").enumerated() {
                let stepContext = "\(context).steps[\(stepIndex + 1)]"
                let parts = try reader.mapping(item, stepContext, allowed: ["at", "price"])
                guard let at = parts["at"], let price = parts["price"] else { throw reader.fail(item, "\(stepContext) needs at and price") }
                series.steps.append(.init(at: try reader.duration(at, "\(stepContext).at"),
                                          price: try reader.double(price, "\(stepContext).price", range: 0...100_000)))
            }
            series.steps.sort { $0.at < $1.at }
        }
        if let node = fields["randomWalk"] {
            let parts = try reader.mapping(node, "\(context).randomWalk", allowed: ["start", "volatility", "every", "floor"])
            guard let start = parts["start"] else { throw reader.fail(node, "\(context).randomWalk needs start") }
            series.randomWalk = .init(
                start: try reader.double(start, "\(context).randomWalk.start", range: 0...100_000),
                volatility: try parts["volatility"].map { (n) throws(FleetFileError) in try reader.double(n, "\(context).randomWalk.volatility", range: 0...10) } ?? 0.05,
                every: try parts["every"].map { (n) throws(FleetFileError) in try reader.duration(n, "\(context).randomWalk.every") } ?? 300,
                floor: try parts["floor"].map { (n) throws(FleetFileError) in try reader.double(n, "\(context).randomWalk.floor", range: 0...100_000) } ?? 0.001)
            if series.randomWalk!.every <= 0 { throw reader.fail(node, "\(context).randomWalk.every must be above 0") }
        }
        if series.steps.isEmpty && series.randomWalk == nil {
            throw reader.fail(node, "\(context) needs steps or a randomWalk")
        }
        return series
    }

    static func parseFaults(_ node: Node, reader: YAMLReader, context: String) throws(FleetFileError) -> FaultSpec {
        let fields = try reader.mapping(node, context, allowed: ["errorRate", "resetRate", "lostReplyRate", "latency", "noCapacity", "startFailureRate"])
        var faults = FaultSpec()
        if let node = fields["errorRate"] { faults.errorRate = try reader.fraction(node, "\(context).errorRate") }
        if let node = fields["resetRate"] { faults.resetRate = try reader.fraction(node, "\(context).resetRate") }
        if let node = fields["lostReplyRate"] { faults.lostReplyRate = try reader.fraction(node, "\(context).lostReplyRate") }
        if let node = fields["startFailureRate"] { faults.startFailureRate = try reader.fraction(node, "\(context).startFailureRate") }
        if let node = fields["latency"] { faults.latencyMilliseconds = try reader.duration(node, "\(context).latency") * 1000 }
        if let node = fields["noCapacity"] {
            for (index, item) in try reader.sequence(node, "\(context).noCapacity").enumerated() {
                let parts = try reader.mapping(item, "\(context).noCapacity[\(index + 1)]", allowed: ["instanceType", "zone"])
                guard let type = parts["instanceType"], let zone = parts["zone"] else {
                    throw reader.fail(item, "\(context).noCapacity[\(index + 1)] needs instanceType and zone")
                }
                faults.noCapacity.append(.init(instanceType: try reader.string(type, "instanceType"), zone: try reader.string(zone, "zone")))
            }
        }
        return faults
    }
}
