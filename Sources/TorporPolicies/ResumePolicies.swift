import Foundation
public import TorporReports
public import TorporYAML
import Yams

/// How a resume is judged ready: the phase whose time is held to the
/// policy's objectives.
public enum Readiness: Sendable, Equatable, CustomStringConvertible {
    /// The instance is `running`.
    case running
    /// Both status checks are `ok`.
    case statusOK
    /// A TCP connection to this port of the private address succeeds.
    case tcp(port: Int)
    /// An HTTP GET of the URL (`{ip}` is the private address) answers with
    /// this status.
    case http(url: String, status: Int)

    public var description: String {
        switch self {
        case .running: return "running"
        case .statusOK: return "status-ok"
        case .tcp(let port): return "tcp \(port)"
        case .http(let url, let status):
            let shown = Self.withoutUserInfo(url)
            return status == 200 ? "http \(shown)" : "http \(shown) (\(status))"
        }
    }

    /// A URL as it may be shown: a `user:password@` part is a secret.
    static func withoutUserInfo(_ url: String) -> String {
        guard let scheme = url.range(of: "://") else { return url }
        let rest = url[scheme.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return url }
        return String(url[..<scheme.upperBound]) + "***@" + String(rest[rest.index(after: at)...])
    }

    /// The URL with the instance's address filled in.
    public static func expand(_ url: String, ip: String) -> String {
        url.replacingOccurrences(of: "{ip}", with: ip)
    }
}

/// Which instances a policy covers: all the tags must match, and the type
/// must be one of `instanceTypes` when that is given. No tags and no types
/// covers every instance.
public struct PolicyTargets: Sendable, Equatable {
    public var tags: [PolicyTag]
    public var instanceTypes: [String]

    public init(tags: [PolicyTag] = [], instanceTypes: [String] = []) {
        self.tags = tags
        self.instanceTypes = instanceTypes
    }

    public func matches(tags instanceTags: [String: String], instanceType: String) -> Bool {
        (instanceTypes.isEmpty || instanceTypes.contains(instanceType))
            && tags.allSatisfy { instanceTags[$0.key] == $0.value }
    }

    /// True when some instance could match both.
    func overlaps(_ other: PolicyTargets) -> Bool {
        let values = Dictionary(tags.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        let conflicting = other.tags.contains { tag in values[tag.key].map { $0 != tag.value } ?? false }
        let typesMeet = instanceTypes.isEmpty || other.instanceTypes.isEmpty
            || !Set(instanceTypes).isDisjoint(with: other.instanceTypes)
        return !conflicting && typesMeet
    }

    /// True when every instance `other` covers is covered by this one too.
    func covers(_ other: PolicyTargets) -> Bool {
        let otherValues = Dictionary(other.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        let tagsImplied = tags.allSatisfy { otherValues[$0.key] == $0.value }
        let typesImplied = instanceTypes.isEmpty || (!other.instanceTypes.isEmpty && Set(other.instanceTypes).isSubset(of: instanceTypes))
        return tagsImplied && typesImplied
    }

    public var description: String {
        var parts = tags.map { "\($0.key)=\($0.value)" }
        if !instanceTypes.isEmpty { parts.append("type in \(instanceTypes.joined(separator: ", "))") }
        return parts.isEmpty ? "every instance" : parts.joined(separator: ", ")
    }
}

public struct PolicyTag: Sendable, Equatable, Hashable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// Objectives on the resume time, each optional, in seconds: the report's
/// own type, so that what is configured is what is reported.
public typealias ResumeObjectives = ObjectiveLimits

/// One entry of `resume.policies`.
public struct ResumePolicy: Sendable, Equatable {
    public var name: String
    public var targets = PolicyTargets()
    public var readiness = Readiness.statusOK
    public var objectives = ResumeObjectives()
    /// The statistics (and objectives) cover resumes of this last stretch.
    public var window: Double = 7 * 86_400
    /// A resume that is not ready this long after its start is recorded as
    /// timed out.
    public var deadline: Double = 600
    /// The line of the policy in its file, for messages.
    public var line: Int?

    /// The longest objective, window or deadline a policy may give: a year.
    /// Longer is a typo, and would overflow the whole numbers of reports.
    public static let longestDuration: Double = 365 * 86_400

    public init(name: String) { self.name = name }

    /// Resumes that match no configured policy are measured under this one.
    public static let fallback: ResumePolicy = {
        var policy = ResumePolicy(name: "default")
        policy.readiness = .statusOK
        return policy
    }()
}

/// The `resume` section: policies (first match wins) and the tracker's
/// settings.
public struct ResumeSettings: Sendable, Equatable {
    public var policies: [ResumePolicy] = []
    /// The shortest interval between two looks at an in-flight resume.
    public var pollInterval: Double = 2
    /// Describe calls per second the tracker may spend, out of EC2's
    /// non-mutating bucket (20 per second refill): half of it, the rest is
    /// left to the fleet engine and to other tools of the account.
    public var describeRate: Double = 10

    /// The bounds of `pollInterval` in the file: finer than 100 ms spends
    /// describe calls for nothing, coarser than a minute makes every
    /// measurement's error bound useless.
    public static let pollIntervalRange: ClosedRange<Double> = 0.1...60
    /// The bounds of `describeRate`: EC2 refills its non-mutating bucket at
    /// 20 a second, an account's own limit may be raised to a few times that.
    public static let describeRateRange: ClosedRange<Double> = 0.1...100

    public init() {}

    /// The first policy whose targets match; the fallback when none does (a
    /// catch-all policy named `default` replaces the fallback).
    public func policy(tags: [String: String], instanceType: String) -> ResumePolicy {
        policies.first { $0.targets.matches(tags: tags, instanceType: instanceType) } ?? ResumePolicy.fallback
    }

    /// A policy by name, the fallback included.
    public func policy(named name: String) -> ResumePolicy? {
        policies.first { $0.name == name } ?? (name == ResumePolicy.fallback.name ? ResumePolicy.fallback : nil)
    }

    /// Policies that can both match one instance (the first wins), and
    /// policies that can never match because an earlier one covers all
    /// their instances.
    public func overlaps(file: String) -> (warnings: [YAMLFileError], errors: [YAMLFileError]) {
        var warnings: [YAMLFileError] = []
        var errors: [YAMLFileError] = []
        for (j, later) in policies.enumerated() {
            for earlier in policies[..<j] where earlier.targets.overlaps(later.targets) {
                if earlier.targets.covers(later.targets) {
                    errors.append(YAMLFileError(file: file, line: later.line, message:
                        "resume policy '\(later.name)' can never match: every instance it targets (\(later.targets.description)) matches '\(earlier.name)' first"))
                    break
                }
                // An earlier catch-all is the usual "everything else"
                // ordering mistake; report it like any overlap.
                var example = Dictionary(earlier.targets.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
                for tag in later.targets.tags { example[tag.key] = tag.value }
                let tags = example.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
                warnings.append(YAMLFileError(file: file, line: later.line, message:
                    "resume policies '\(earlier.name)' and '\(later.name)' are ambiguous: an instance "
                    + (tags.isEmpty ? "of any tags" : "tagged \(tags)") + " matches both; '\(earlier.name)' wins (first match)"))
            }
        }
        return (warnings, errors)
    }

    // MARK: Reading

    static func read(_ node: Node, reader: YAMLReader) -> (ResumeSettings, [YAMLFileError]) {
        var settings = ResumeSettings()
        var problems: [YAMLFileError] = []
        func attempt(_ body: () throws -> Void) {
            do { try body() } catch let error as YAMLFileError { problems.append(error) } catch {
                problems.append(YAMLFileError(file: reader.file, line: node.mark?.line, message: "\(error)"))
            }
        }
        let fields: [String: Node]
        do {
            let (known, unknown) = try reader.lenientMapping(node, "resume", allowed: ["policies", "pollInterval", "describeRate"])
            fields = known
            problems += unknown
        } catch { return (settings, [error]) }
        attempt {
            if let n = fields["pollInterval"] {
                let range = Self.pollIntervalRange
                settings.pollInterval = try reader.duration(n, "resume.pollInterval", max: range.upperBound)
                guard settings.pollInterval >= range.lowerBound else {
                    throw reader.fail(n, "resume.pollInterval must be at least \(YAMLReader.describeDuration(range.lowerBound))")
                }
            }
        }
        attempt { if let n = fields["describeRate"] { settings.describeRate = try reader.double(n, "resume.describeRate", range: Self.describeRateRange) } }
        if let list = fields["policies"] {
            do {
                var names: [String: Int?] = [:]
                for (index, item) in try reader.sequence(list, "resume.policies").enumerated() {
                    let (policy, itemProblems) = readPolicy(item, index: index, reader: reader)
                    problems += itemProblems
                    guard let policy else { continue }
                    if let line = names[policy.name] {
                        problems.append(reader.fail(item, "resume policy name '\(policy.name)' is used twice (first on line \(line.map(String.init) ?? "?"))"))
                        continue
                    }
                    names[policy.name] = policy.line
                    settings.policies.append(policy)
                }
            } catch { problems.append(error) }
        }
        return (settings, problems)
    }

    static func readPolicy(_ node: Node, index: Int, reader: YAMLReader) -> (ResumePolicy?, [YAMLFileError]) {
        var problems: [YAMLFileError] = []
        let context = "resume.policies[\(index)]"
        let fields: [String: Node]
        do {
            let (known, unknown) = try reader.lenientMapping(node, context, allowed: ["name", "targets", "readiness", "objectives", "window", "deadline"])
            fields = known
            problems += unknown
        } catch { return (nil, [error]) }
        guard let nameNode = fields["name"] else { return (nil, [reader.fail(node, "\(context) needs a name")]) }
        let name: String
        do {
            name = try reader.string(nameNode, "\(context).name")
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                throw reader.fail(nameNode, "\(context).name must be letters, digits, '-', '_' or '.', not '\(name)'")
            }
        } catch { return (nil, [error as? YAMLFileError ?? reader.fail(nameNode, "\(error)")]) }
        var policy = ResumePolicy(name: name)
        policy.line = node.mark?.line
        let where_ = "resume policy '\(name)'"
        func attempt(_ body: () throws -> Void) {
            do { try body() } catch let error as YAMLFileError { problems.append(error) } catch {
                problems.append(reader.fail(node, "\(error)"))
            }
        }
        // A policy whose targets are missing or wrong is left out: kept with
        // no targets it would match everything, and every later policy would
        // be reported as never matching too.
        let problemsBeforeTargets = problems.count
        attempt {
            guard let n = fields["targets"] else { throw reader.fail(node, "\(where_) needs targets (e.g. targets: { tags: { Tier: web } }; {} for every instance)") }
            let (targetFields, unknown) = try reader.lenientMapping(n, "\(where_) targets", allowed: ["tags", "instanceTypes"])
            problems += unknown
            if let tagsNode = targetFields["tags"] {
                guard case .mapping(let mapping) = tagsNode else { throw reader.fail(tagsNode, "\(where_) targets.tags must be a mapping of tag key to value") }
                for (keyNode, valueNode) in mapping {
                    let key = try reader.string(keyNode, "\(where_) tag key")
                    let value = try reader.string(valueNode, "\(where_) tag '\(key)'")
                    policy.targets.tags.append(PolicyTag(key: key, value: value))
                }
            }
            if let typesNode = targetFields["instanceTypes"] {
                policy.targets.instanceTypes = try reader.sequence(typesNode, "\(where_) targets.instanceTypes")
                    .map { try reader.string($0, "\(where_) instance type") }
            }
        }
        let targetsValid = problems.count == problemsBeforeTargets
        attempt { if let n = fields["readiness"] { policy.readiness = try readReadiness(n, where_, reader: reader) } }
        let longest = ResumePolicy.longestDuration
        attempt {
            if let n = fields["objectives"] {
                let (objectiveFields, unknown) = try reader.lenientMapping(n, "\(where_) objectives", allowed: ["p50", "p95", "max"])
                problems += unknown
                if let v = objectiveFields["p50"] { policy.objectives.p50 = try reader.duration(v, "\(where_) objectives.p50", max: longest) }
                if let v = objectiveFields["p95"] { policy.objectives.p95 = try reader.duration(v, "\(where_) objectives.p95", max: longest) }
                if let v = objectiveFields["max"] { policy.objectives.max = try reader.duration(v, "\(where_) objectives.max", max: longest) }
                let o = policy.objectives
                if let p50 = o.p50, let p95 = o.p95, p50 > p95 { throw reader.fail(n, "\(where_): objectives.p50 (\(Self.shown(p50)) s) is above p95 (\(Self.shown(p95)) s)") }
                if let p95 = o.p95 ?? o.p50, let max = o.max, p95 > max { throw reader.fail(n, "\(where_): objectives.max (\(Self.shown(max)) s) is below a percentile objective") }
            }
        }
        attempt {
            if let n = fields["window"] {
                policy.window = try reader.duration(n, "\(where_) window", max: longest)
                guard policy.window >= 60 else { throw reader.fail(n, "\(where_): window must be at least 1m") }
            }
        }
        attempt {
            if let n = fields["deadline"] {
                policy.deadline = try reader.duration(n, "\(where_) deadline", max: longest)
                guard policy.deadline >= 1 else { throw reader.fail(n, "\(where_): deadline must be at least 1s") }
            }
        }
        if let max = policy.objectives.max, max > policy.deadline, let n = fields["objectives"] {
            problems.append(reader.fail(n, "\(where_): objectives.max (\(Self.shown(max)) s) is beyond the deadline (\(Self.shown(policy.deadline)) s); raise deadline"))
        }
        return (targetsValid ? policy : nil, problems)
    }

    /// Seconds for a message, without a conversion that could trap: `120`,
    /// `2.5`.
    static func shown(_ seconds: Double) -> String {
        seconds.isFinite && seconds == seconds.rounded() && abs(seconds) < 1e15 ? String(format: "%.0f", seconds) : "\(seconds)"
    }

    static func readReadiness(_ node: Node, _ context: String, reader: YAMLReader) throws -> Readiness {
        if case .scalar(let scalar) = node {
            switch scalar.string {
            case "running": return .running
            case "status-ok": return .statusOK
            default: throw reader.fail(node, "\(context) readiness must be running, status-ok, { tcp: PORT } or { http: URL }, not '\(scalar.string)'")
            }
        }
        let (fields, unknown) = try reader.lenientMapping(node, "\(context) readiness", allowed: ["tcp", "http", "status"])
        if let first = unknown.first { throw first }
        switch (fields["tcp"], fields["http"]) {
        case (let port?, nil):
            if let extra = fields["status"] { throw reader.fail(extra, "\(context) readiness: status goes with http, not tcp") }
            return .tcp(port: try reader.int(port, "\(context) readiness.tcp", range: 1...65535))
        case (nil, let urlNode?):
            let url = try reader.string(urlNode, "\(context) readiness.http")
            guard url.hasPrefix("http://") || url.hasPrefix("https://"), url.contains("{ip}") || URL(string: url)?.host != nil else {
                throw reader.fail(urlNode, "\(context) readiness.http must be an http:// or https:// URL, usually with {ip} for the private address, not '\(url)'")
            }
            guard URL(string: Readiness.expand(url, ip: "10.0.0.1")) != nil else { throw reader.fail(urlNode, "\(context) readiness.http is not a valid URL: '\(url)'") }
            let status = try fields["status"].map { try reader.int($0, "\(context) readiness.status", range: 100...599) } ?? 200
            return .http(url: url, status: status)
        case (nil, nil):
            throw reader.fail(node, "\(context) readiness needs tcp: PORT or http: URL")
        default:
            throw reader.fail(node, "\(context) readiness takes one of tcp or http, not both")
        }
    }
}
