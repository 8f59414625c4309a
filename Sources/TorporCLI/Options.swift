import ArgumentParser
import Foundation
import Logging
import TorporAWS
import TorporEC2

/// Where to send requests and as whom: the AWS CLI's options.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "AWS region (else AWS_REGION, AWS_DEFAULT_REGION, or the profile's region).")
    var region: String?

    @Option(name: .customLong("endpoint-url"), help: "EC2 endpoint URL, e.g. http://127.0.0.1:4566 for a local simulator.")
    var endpointURL: String?

    @Option(help: "Profile in ~/.aws/credentials and ~/.aws/config (else AWS_PROFILE, else default).")
    var profile: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical. Logs go to standard error.")
    var logLevel: LogLevelArgument = .warning
}

struct LogLevelArgument: ExpressibleByArgument {
    let level: Logger.Level
    static let warning = LogLevelArgument(level: .warning)

    init(level: Logger.Level) { self.level = level }

    init?(argument: String) {
        guard let level = Logger.Level(rawValue: argument.lowercased()) else { return nil }
        self.level = level
    }

    static var allValueStrings: [String] { Logger.Level.allCases.map(\.rawValue) }
}

/// Which instances a command targets. Selectors of different kinds combine
/// (an instance must match all); values of one kind widen the match.
struct SelectorOptions: ParsableArguments {
    @Option(name: .customLong("id"), help: ArgumentHelp("Instance id; repeat for more.", valueName: "ID"))
    var ids: [String] = []

    @Option(name: .customLong("tag"), help: ArgumentHelp("Tag match; repeat for more (all must match).", valueName: "KEY=VALUE"))
    var tags: [String] = []

    @Option(name: .customLong("filter"), help: ArgumentHelp("Any EC2 DescribeInstances filter; repeat for more.", valueName: "NAME=V1,V2"))
    var filters: [String] = []

    @Option(name: .customLong("state"), help: ArgumentHelp("Instance state: \(InstanceState.allNames.joined(separator: ", ")); repeat for more.", valueName: "STATE"))
    var states: [String] = []

    var isEmpty: Bool { ids.isEmpty && tags.isEmpty && filters.isEmpty && states.isEmpty }

    func validate() throws {
        for id in ids where !Self.looksLikeInstanceID(id) {
            throw ValidationError("--id '\(id)' is not an instance id (expected i- followed by hexadecimal digits)")
        }
        for tag in tags {
            guard let equals = tag.firstIndex(of: "="), equals != tag.startIndex else {
                throw ValidationError("--tag '\(tag)' must be KEY=VALUE")
            }
        }
        for filter in filters {
            guard let equals = filter.firstIndex(of: "="), equals != filter.startIndex,
                  !filter[filter.index(after: equals)...].isEmpty else {
                throw ValidationError("--filter '\(filter)' must be NAME=V1[,V2...]")
            }
        }
        for state in states where !InstanceState.allNames.contains(state) {
            throw ValidationError("--state '\(state)' is not an instance state; use one of \(InstanceState.allNames.joined(separator: ", "))")
        }
    }

    static func looksLikeInstanceID(_ text: String) -> Bool {
        guard text.hasPrefix("i-"), text.count > 2 else { return false }
        return text.dropFirst(2).allSatisfy { $0.isHexDigit }
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}
