import Foundation
import TorporAWS
import TorporEC2

/// Plain aligned columns for a terminal.
struct Table {
    let headers: [String]
    var rows: [[String]] = []

    init(_ headers: [String]) { self.headers = headers }

    mutating func add(_ row: [String]) { rows.append(row) }

    func render() -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }
}

enum JSONOutput {
    /// One JSON document, keys sorted, slashes unescaped.
    static func render(_ object: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) else {
            return "{}"
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func instance(_ instance: EC2Instance) -> [String: Any] {
        var object: [String: Any] = [
            "instanceId": instance.instanceID,
            "instanceType": instance.instanceType,
            "state": instance.state.name,
            "stateCode": instance.state.code,
            "tags": Dictionary(instance.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first }),
            "hibernationConfigured": instance.hibernationConfigured,
        ]
        object["stateReason"] = instance.stateReason.map { ["code": $0.code, "message": $0.message] }
        object["stateTransitionReason"] = instance.stateTransitionReason
        object["launchTime"] = instance.launchTime.map(ISO8601.format)
        object["availabilityZone"] = instance.availabilityZone
        object["privateIpAddress"] = instance.privateIPAddress
        object["instanceLifecycle"] = instance.instanceLifecycle
        object["rootDeviceType"] = instance.rootDeviceType
        return object
    }
}
