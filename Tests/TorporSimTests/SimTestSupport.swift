import Foundation
import Testing
import TorporAWS
@testable import TorporSim
import TorporTestSupport

/// The simulated time every unit test starts at (ManualClock's default).
let t0: Double = 1_795_000_000

/// A fleet from this module's seed, with FleetSpec's own (no) credentials;
/// groups come from `makeGroup` (Tests/TorporTestSupport).
func makeSpec(seed: UInt64 = 7, _ groups: [GroupSpec], _ configure: (inout FleetSpec) -> Void = { _ in }) -> FleetSpec {
    fleetSpec(seed: seed, credentials: nil, groups, configure)
}

/// An EC2 answer, parsed.
struct Reply {
    let status: Int
    let body: String
    let root: XMLNode

    var errorCode: String? { root["Errors", "Error"]?.string("Code") }
    var errorMessage: String { root["Errors", "Error"]?.string("Message") ?? "" }
    var requestID: String? { root.string("requestId") ?? root.string("RequestID") }

    init(status: Int, body: String) throws {
        self.status = status
        self.body = body
        root = try XMLDocumentParser.parse(Array(body.utf8))
    }

    /// Instance items of a DescribeInstances answer.
    var instances: [XMLNode] {
        root.items("reservationSet").flatMap { $0.items("instancesSet") }
    }

    var instanceIDs: [String] { instances.compactMap { $0.string("instanceId") } }

    var nextToken: String? {
        guard let token = root.string("nextToken"), !token.isEmpty else { return nil }
        return token
    }

    /// `(id, previous, current)` of a StopInstances/StartInstances answer.
    var changes: [(id: String, previous: String, current: String)] {
        root.items("instancesSet").map {
            ($0.string("instanceId") ?? "", $0["previousState", "name"]?.text ?? "", $0["currentState", "name"]?.text ?? "")
        }
    }
}

/// Query parameters: `InstanceId.N` lists and `Filter.N.Name/Value.M`.
func list(_ name: String, _ values: [String]) -> [String: String] {
    var result: [String: String] = [:]
    for (index, value) in values.enumerated() { result["\(name).\(index + 1)"] = value }
    return result
}

func filters(_ pairs: [(String, [String])]) -> [String: String] {
    var result: [String: String] = [:]
    for (index, pair) in pairs.enumerated() {
        result["Filter.\(index + 1).Name"] = pair.0
        for (valueIndex, value) in pair.1.enumerated() { result["Filter.\(index + 1).Value.\(valueIndex + 1)"] = value }
    }
    return result
}

extension Dictionary where Key == String, Value == String {
    static func + (lhs: Self, rhs: Self) -> Self { lhs.merging(rhs) { _, new in new } }
}

/// A `FleetState` driven with explicit times, the way the engine drives it.
final class Harness {
    var state: FleetState
    private var requests = 0

    init(_ spec: FleetSpec, now: Double = t0) {
        state = FleetState(spec: spec, now: now)
    }

    var now: Double { state.now }

    @discardableResult
    func call(_ action: String, _ parameters: [String: String] = [:]) throws -> Reply {
        requests += 1
        let id = "req-\(requests)"
        let reply = state.handle(EC2Call(action: action, parameters: parameters, requestID: id))
        return try Reply(status: reply.status, body: reply.body)
    }

    func advance(by seconds: Double) { state.advance(to: state.now + seconds) }
    func advance(to time: Double) { state.advance(to: time) }

    func ids(group: String) -> [String] {
        guard let groupIndex = state.spec.groups.firstIndex(where: { $0.name == group }) else { return [] }
        return state.instances.filter { $0.group == groupIndex }.map(\.id)
    }

    func instance(_ id: String) -> SimInstance { state.instances[state.indexByID[id]!] }

    func stateEvents(_ id: String) -> [SimEvent] { state.events.filter { $0.instanceID == id && $0.kind == .state } }

    /// The time of the first event of `id` that entered `to`, at or after `after`.
    func time(of id: String, enteringState to: String, after: Double = -.infinity) -> Double? {
        state.events.first { $0.instanceID == id && $0.kind == .state && $0.to == to && $0.time >= after }?.time
    }

    /// Everything a failing call must leave alone.
    var snapshot: [String] {
        state.instances.map { "\($0.id) \($0.state.rawValue) \($0.hibernated) \($0.launchTime) \($0.tags.map { "\($0.key)=\($0.value)" })" }
            + ["events \(state.events.count)"]
    }
}

/// An engine on a manual clock, answering as parsed XML.
func engineCall(_ engine: SimEngine, _ action: String, _ parameters: [String: String] = [:]) throws -> Reply {
    let all = ["Action": action, "Version": "2016-11-15"] + parameters
    switch engine.handle(action: action, parameters: all) {
    case .reply(let reply): return try Reply(status: reply.status, body: reply.body)
    case .reset: throw SimAPIError("Reset", "the engine reset the connection")
    }
}

func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(max(values.count, 1)) }

/// "YYYY-MM-DD HH:MM:SS" of a time, in UTC, computed independently of the simulator.
func utcStamp(_ seconds: Double) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    return formatter.string(from: Date(timeIntervalSince1970: seconds))
}
