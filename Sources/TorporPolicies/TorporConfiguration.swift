import Foundation
public import TorporYAML
import Yams

/// Torpor's configuration file (`Config/torpor.yaml`). Every key is
/// optional; flags and environment override it (see `torpor worker --help`).
public struct TorporConfiguration: Sendable, Equatable {
    public struct AWS: Sendable, Equatable {
        public var region: String?
        public var profile: String?
        public var endpointURL: String?
    }

    public struct Queue: Sendable, Equatable {
        /// The SQLite file the command line and the worker share.
        public var path = TorporConfiguration.defaultQueuePath
    }

    public struct Worker: Sendable, Equatable {
        public var concurrency = 2
        public var lease: Double = 60
        public var gracePeriod: Double = 30
        public var pollInterval: Double = 1
        public var retryBase: Double = 30
        public var maxAttempts = 5
    }

    public struct Metrics: Sendable, Equatable {
        public var host = "127.0.0.1"
        public var port = 9464
        public var enabled = true
    }

    public struct Fleet: Sendable, Equatable {
        public var protectTag = "torpor:protect=true"
        public var maxInstances = 1000
        public var maxShare = 1.0
        public var firstPoll: Double = 45
        public var waitTimeout: Double = 1800
        public var tagInstances = false
    }

    public var aws = AWS()
    public var queue = Queue()
    public var worker = Worker()
    public var metrics = Metrics()
    public var fleet = Fleet()
    public var resume = ResumeSettings()
    public var logLevel = "info"
    /// Not errors, but worth a look: overlapping resume policies.
    public var warnings: [YAMLFileError] = []

    public init() {}

    /// `$TORPOR_QUEUE`, else `~/.local/state/torpor/queue.sqlite`.
    public static var defaultQueuePath: String {
        if let path = ProcessInfo.processInfo.environment["TORPOR_QUEUE"], !path.isEmpty { return path }
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        return home + "/.local/state/torpor/queue.sqlite"
    }

    /// Reads a configuration file, collecting every problem (each with its
    /// line) rather than stopping at the first.
    public static func validate(_ text: String, file: String) -> (TorporConfiguration, [YAMLFileError]) {
        var config = TorporConfiguration()
        var problems: [YAMLFileError] = []
        let reader = YAMLReader(file: file)
        func attempt(_ body: () throws -> Void) {
            do {
                try body()
            } catch let error as YAMLFileError {
                problems.append(error)
            } catch {
                problems.append(YAMLFileError(file: file, line: nil, message: "\(error)"))
            }
        }
        let root: Node
        do { root = try reader.load(text) } catch { return (config, [error]) }
        let top: [String: Node]
        do {
            let (fields, unknown) = try reader.lenientMapping(root, "the configuration", allowed: ["aws", "queue", "worker", "metrics", "fleet", "resume", "log"])
            top = fields
            problems += unknown
        } catch { return (config, [error]) }

        func section(_ name: String, _ allowed: [String], _ body: ([String: Node]) -> Void) {
            guard let node = top[name] else { return }
            do {
                let (fields, unknown) = try reader.lenientMapping(node, name, allowed: allowed)
                problems += unknown
                body(fields)
            } catch { problems.append(error) }
        }
        section("aws", ["region", "profile", "endpointUrl"]) { fields in
            attempt { if let n = fields["region"] { config.aws.region = try reader.string(n, "aws.region") } }
            attempt { if let n = fields["profile"] { config.aws.profile = try reader.string(n, "aws.profile") } }
            attempt {
                if let n = fields["endpointUrl"] {
                    let url = try reader.string(n, "aws.endpointUrl")
                    guard url.hasPrefix("http://") || url.hasPrefix("https://") else { throw reader.fail(n, "aws.endpointUrl must start with http:// or https://") }
                    config.aws.endpointURL = url
                }
            }
        }
        section("queue", ["path"]) { fields in
            attempt { if let n = fields["path"] { config.queue.path = try reader.string(n, "queue.path") } }
        }
        section("worker", ["concurrency", "lease", "gracePeriod", "pollInterval", "retryBase", "maxAttempts"]) { fields in
            attempt { if let n = fields["concurrency"] { config.worker.concurrency = try reader.int(n, "worker.concurrency", range: 1...64) } }
            attempt { if let n = fields["lease"] { config.worker.lease = try reader.duration(n, "worker.lease") } }
            attempt { if let n = fields["gracePeriod"] { config.worker.gracePeriod = try reader.duration(n, "worker.gracePeriod") } }
            attempt { if let n = fields["pollInterval"] { config.worker.pollInterval = try reader.duration(n, "worker.pollInterval") } }
            attempt { if let n = fields["retryBase"] { config.worker.retryBase = try reader.duration(n, "worker.retryBase") } }
            attempt { if let n = fields["maxAttempts"] { config.worker.maxAttempts = try reader.int(n, "worker.maxAttempts", range: 1...100) } }
            if let n = fields["lease"], config.worker.lease < 1 { problems.append(reader.fail(n, "worker.lease must be at least 1s")) }
        }
        section("metrics", ["address", "enabled"]) { fields in
            attempt { if let n = fields["enabled"] { config.metrics.enabled = try reader.bool(n, "metrics.enabled") } }
            attempt {
                if let n = fields["address"] {
                    let text = try reader.string(n, "metrics.address")
                    guard let (host, port) = parseAddress(text) else { throw reader.fail(n, "metrics.address must be HOST:PORT, not '\(text)'") }
                    config.metrics.host = host
                    config.metrics.port = port
                }
            }
        }
        section("fleet", ["protectTag", "maxInstances", "maxShare", "firstPoll", "waitTimeout", "tagInstances"]) { fields in
            attempt {
                if let n = fields["protectTag"] {
                    let text = try reader.string(n, "fleet.protectTag")
                    guard let equals = text.firstIndex(of: "="), equals != text.startIndex else { throw reader.fail(n, "fleet.protectTag must be KEY=VALUE") }
                    config.fleet.protectTag = text
                }
            }
            attempt { if let n = fields["maxInstances"] { config.fleet.maxInstances = try reader.int(n, "fleet.maxInstances", range: 0...1_000_000) } }
            attempt { if let n = fields["maxShare"] { config.fleet.maxShare = try reader.fraction(n, "fleet.maxShare") } }
            attempt { if let n = fields["firstPoll"] { config.fleet.firstPoll = try reader.duration(n, "fleet.firstPoll") } }
            attempt { if let n = fields["waitTimeout"] { config.fleet.waitTimeout = try reader.duration(n, "fleet.waitTimeout") } }
            attempt { if let n = fields["tagInstances"] { config.fleet.tagInstances = try reader.bool(n, "fleet.tagInstances") } }
        }
        section("log", ["level"]) { fields in
            attempt {
                if let n = fields["level"] {
                    let level = try reader.string(n, "log.level")
                    let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
                    guard levels.contains(level) else { throw reader.fail(n, "log.level must be one of \(levels.joined(separator: ", ")), not '\(level)'") }
                    config.logLevel = level
                }
            }
        }
        if let node = top["resume"] {
            let (settings, resumeProblems) = ResumeSettings.read(node, reader: reader)
            config.resume = settings
            problems += resumeProblems
            let (warnings, errors) = settings.overlaps(file: file)
            config.warnings = warnings
            problems += errors
        }
        return (config, problems.sorted { ($0.line ?? 0) < ($1.line ?? 0) })
    }

    /// `HOST:PORT` (or `[v6]:PORT`).
    public static func parseAddress(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        return (host, port)
    }
}
