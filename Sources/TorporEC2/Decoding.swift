import TorporAWS

/// Turns EC2's XML answers into typed values. A missing required field is an
/// `AWSResponseError` that names the action and the item; it never crashes.
enum EC2Decoding {
    struct Missing: Error { let what: String }

    static func required(_ node: XMLNode, _ name: String, in context: String) throws(Missing) -> String {
        guard let value = node.string(name), !value.isEmpty else { throw Missing(what: "\(context) has no \(name)") }
        return value
    }

    static func state(_ node: XMLNode?, in context: String) throws(Missing) -> InstanceState {
        guard let node, let codeText = node.string("code"), let code = Int(codeText), let name = node.string("name") else {
            throw Missing(what: "\(context) has no readable state")
        }
        return InstanceState(code: code, name: name)
    }

    static func instances(_ root: XMLNode) throws(Missing) -> [EC2Instance] {
        var result: [EC2Instance] = []
        for (reservationIndex, reservation) in root.items("reservationSet").enumerated() {
            for (index, item) in reservation.items("instancesSet").enumerated() {
                let context = "reservation \(reservationIndex + 1), instance \(index + 1)"
                let id = try required(item, "instanceId", in: context)
                let stateReason = item.child("stateReason").flatMap { node -> StateReason? in
                    guard let code = node.string("code") else { return nil }
                    return StateReason(code: code, message: node.string("message") ?? "")
                }
                let tags = item.items("tagSet").compactMap { tag -> Tag? in
                    guard let key = tag.string("key") else { return nil }
                    return Tag(key: key, value: tag.string("value") ?? "")
                }
                let transition = item.string("reason").flatMap { $0.isEmpty ? nil : $0 }
                result.append(EC2Instance(
                    instanceID: id,
                    instanceType: item.string("instanceType") ?? "",
                    state: try state(item.child("instanceState"), in: "instance \(id)"),
                    stateReason: stateReason,
                    stateTransitionReason: transition,
                    launchTime: item.string("launchTime").flatMap(ISO8601.parse),
                    availabilityZone: item["placement", "availabilityZone"]?.text,
                    privateIPAddress: item.string("privateIpAddress"),
                    tags: tags,
                    hibernationConfigured: item["hibernationOptions", "configured"]?.text == "true",
                    instanceLifecycle: item.string("instanceLifecycle"),
                    rootDeviceType: item.string("rootDeviceType"),
                    spotInstanceRequestID: item.string("spotInstanceRequestId")))
            }
        }
        return result
    }

    static func stateChanges(_ root: XMLNode) throws(Missing) -> [InstanceStateChange] {
        var result: [InstanceStateChange] = []
        for (index, item) in root.items("instancesSet").enumerated() {
            let id = try required(item, "instanceId", in: "item \(index + 1)")
            result.append(InstanceStateChange(
                instanceID: id,
                previousState: try state(item.child("previousState"), in: "instance \(id) previousState"),
                currentState: try state(item.child("currentState"), in: "instance \(id) currentState")))
        }
        return result
    }

    static func statuses(_ root: XMLNode) throws(Missing) -> [InstanceStatus] {
        var result: [InstanceStatus] = []
        for (index, item) in root.items("instanceStatusSet").enumerated() {
            let id = try required(item, "instanceId", in: "item \(index + 1)")
            result.append(InstanceStatus(
                instanceID: id,
                availabilityZone: item.string("availabilityZone"),
                state: try state(item.child("instanceState"), in: "instance \(id)"),
                systemStatus: item["systemStatus", "status"]?.text,
                instanceStatus: item["instanceStatus", "status"]?.text))
        }
        return result
    }

    static func spotPrices(_ root: XMLNode) throws(Missing) -> [SpotPrice] {
        var result: [SpotPrice] = []
        for (index, item) in root.items("spotPriceHistorySet").enumerated() {
            let context = "spot price \(index + 1)"
            let stamp = try required(item, "timestamp", in: context)
            guard let seconds = ISO8601.parse(stamp) else { throw Missing(what: "\(context) has an unreadable timestamp '\(stamp)'") }
            result.append(SpotPrice(
                instanceType: try required(item, "instanceType", in: context),
                productDescription: item.string("productDescription") ?? "",
                availabilityZone: item.string("availabilityZone") ?? "",
                price: try required(item, "spotPrice", in: context),
                timestamp: seconds))
        }
        return result
    }

    static func instanceTypes(_ root: XMLNode) throws(Missing) -> [InstanceTypeInfo] {
        var result: [InstanceTypeInfo] = []
        for (index, item) in root.items("instanceTypeSet").enumerated() {
            result.append(InstanceTypeInfo(
                instanceType: try required(item, "instanceType", in: "instance type \(index + 1)"),
                hibernationSupported: item.string("hibernationSupported") == "true",
                memoryMiB: item["memoryInfo", "sizeInMiB"].flatMap { Int($0.text) }))
        }
        return result
    }

    static func spotRequests(_ root: XMLNode) throws(Missing) -> [SpotInstanceRequest] {
        var result: [SpotInstanceRequest] = []
        for (index, item) in root.items("spotInstanceRequestSet").enumerated() {
            let context = "spot request \(index + 1)"
            result.append(SpotInstanceRequest(
                requestID: try required(item, "spotInstanceRequestId", in: context),
                type: try required(item, "type", in: context),
                state: item.string("state"),
                instanceID: item.string("instanceId")))
        }
        return result
    }

    static func nextToken(_ root: XMLNode) -> String? {
        guard let token = root.string("nextToken"), !token.isEmpty else { return nil }
        return token
    }
}
