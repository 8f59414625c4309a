import Foundation
import TorporAWS

/// An EC2 Query call as the simulator received it.
public struct EC2Call: Sendable {
    public let action: String
    /// The request's parameters; EC2's names are unique, so the last value wins.
    public let parameters: [String: String]
    public let requestID: String

    public init(action: String, parameters: [String: String], requestID: String) {
        self.action = action
        self.parameters = parameters
        self.requestID = requestID
    }

    func list(_ prefix: String) -> [String] {
        var values: [(Int, String)] = []
        for (name, value) in parameters where name.hasPrefix(prefix + ".") {
            if let number = Int(name.dropFirst(prefix.count + 1)) { values.append((number, value)) }
        }
        return values.sorted { $0.0 < $1.0 }.map(\.1)
    }

    func flag(_ name: String) -> Bool { parameters[name]?.lowercased() == "true" }

    /// `Filter.N.Name` / `Filter.N.Value.M`.
    var filters: [(name: String, values: [String])] {
        var byNumber: [Int: (name: String, values: [(Int, String)])] = [:]
        for (key, value) in parameters where key.hasPrefix("Filter.") {
            let parts = key.split(separator: ".")
            guard parts.count >= 3, let number = Int(parts[1]) else { continue }
            if parts[2] == "Name" {
                byNumber[number, default: ("", [])].name = value
            } else if parts[2] == "Value", parts.count == 4, let valueNumber = Int(parts[3]) {
                byNumber[number, default: ("", [])].values.append((valueNumber, value))
            }
        }
        return byNumber.sorted { $0.key < $1.key }.map { ($0.value.name, $0.value.values.sorted { $0.0 < $1.0 }.map(\.1)) }
    }
}

/// An answer: status and XML body.
public struct EC2Reply: Sendable {
    public let status: Int
    public let body: String
    /// The error code, for statistics.
    public let errorCode: String?

    static func error(_ error: SimAPIError, requestID: String) -> EC2Reply {
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>"
        XMLWriter.appendEscaped(error.code, to: &xml)
        xml += "</Code><Message>"
        XMLWriter.appendEscaped(error.message, to: &xml)
        xml += "</Message></Error></Errors><RequestID>\(requestID)</RequestID></Response>"
        return EC2Reply(status: error.status, body: xml, errorCode: error.code)
    }
}

/// Known instance types: memory and whether hibernation is supported.
enum InstanceTypeCatalog {
    static let known: [String: (memoryMiB: Int, vcpus: Int, hibernation: Bool)] = [
        "t3.micro": (1024, 2, true), "t3.small": (2048, 2, true), "t3.medium": (4096, 2, true), "t3.large": (8192, 2, true),
        "m5.large": (8192, 2, true), "m5.xlarge": (16_384, 4, true), "m5.2xlarge": (32_768, 8, true),
        "c5.large": (4096, 2, true), "c5.xlarge": (8192, 4, true), "r5.large": (16_384, 2, true), "r5.xlarge": (32_768, 4, true),
        "m6i.large": (8192, 2, true), "c6g.large": (4096, 2, true), "i3.large": (15_616, 2, true),
        "p3.2xlarge": (62_464, 8, false), "x1.16xlarge": (999_424, 64, false),
    ]
}

extension FleetState {
    /// Carries out one call. Throttling and faults are the engine's; this is
    /// EC2's own behaviour.
    mutating func handle(_ call: EC2Call) -> EC2Reply {
        do throws(SimAPIError) {
            let body: String
            switch call.action {
            case "DescribeInstances": body = try describeInstances(call)
            case "DescribeInstanceStatus": body = try describeInstanceStatus(call)
            case "StopInstances":
                let changes = try stop(ids: call.list("InstanceId"), hibernate: call.flag("Hibernate"), force: call.flag("Force"),
                                       dryRun: call.flag("DryRun"), requestID: call.requestID)
                body = stateChangeXML("StopInstancesResponse", changes, requestID: call.requestID)
            case "StartInstances":
                let changes = try start(ids: call.list("InstanceId"), dryRun: call.flag("DryRun"), requestID: call.requestID)
                body = stateChangeXML("StartInstancesResponse", changes, requestID: call.requestID)
            case "CreateTags":
                body = try createTagsCall(call)
            case "DescribeSpotPriceHistory": body = try describeSpotPriceHistory(call)
            case "DescribeInstanceTypes": body = try describeInstanceTypes(call)
            case "DescribeSpotInstanceRequests": body = try describeSpotInstanceRequests(call)
            default:
                throw SimAPIError("InvalidAction", "The action \(call.action) is not valid for this web service.")
            }
            return EC2Reply(status: 200, body: body, errorCode: nil)
        } catch {
            return .error(error, requestID: call.requestID)
        }
    }

    // MARK: DescribeInstances

    func describeInstances(_ call: EC2Call) throws(SimAPIError) -> String {
        let ids = call.list("InstanceId")
        let maxResults = try pageSize(call, range: 5...1000, allowedWithIDs: false, ids: ids)
        let filters = try compile(call.filters, allowed: Self.instanceFilters)
        let candidates = ids.isEmpty ? Array(instances.indices) : try resolve(ids)
        let matching = candidates.filter { index in filters.allSatisfy { $0(instances[index]) } }
        let (page, next) = try paginate(matching, token: call.parameters["NextToken"], size: maxResults)

        var xml = XMLWriter(root: "DescribeInstancesResponse")
        xml.element("requestId", call.requestID)
        xml.open("reservationSet")
        for index in page {
            let instance = instances[index]
            xml.open("item")
            xml.element("reservationId", "r-" + instance.id.dropFirst(2))
            xml.element("ownerId", "123456789012")
            xml.element("groupSet", "")
            xml.open("instancesSet")
            instanceXML(instance, into: &xml)
            xml.close("instancesSet")
            xml.close("item")
        }
        xml.close("reservationSet")
        if let next { xml.element("nextToken", next) }
        return xml.finish("DescribeInstancesResponse")
    }

    private func instanceXML(_ instance: SimInstance, into xml: inout XMLWriter) {
        xml.open("item")
        xml.element("instanceId", instance.id)
        xml.element("imageId", "ami-0abcdef1234567890")
        xml.element("instanceState") { x in
            x.element("code", instance.state.code)
            x.element("name", instance.state.rawValue)
        }
        xml.element("privateDnsName", instance.privateDNSName)
        xml.element("dnsName", "")
        xml.element("reason", instance.transitionReason)
        xml.element("amiLaunchIndex", 0)
        xml.element("productCodes", "")
        xml.element("instanceType", instance.instanceType)
        xml.element("launchTime", ec2Timestamp(instance.launchTime))
        xml.element("placement") { x in
            x.element("availabilityZone", instance.zone)
            x.element("groupName", "")
            x.element("tenancy", "default")
        }
        xml.element("monitoring") { x in x.element("state", "disabled") }
        xml.element("privateIpAddress", instance.privateIP)
        if let reason = instance.stateReason {
            xml.element("stateReason") { x in
                x.element("code", reason.code)
                x.element("message", reason.message)
            }
        }
        xml.element("architecture", "x86_64")
        xml.element("rootDeviceType", instance.rootDeviceType)
        xml.element("rootDeviceName", "/dev/xvda")
        if let lifecycle = instance.lifecycle { xml.element("instanceLifecycle", lifecycle) }
        if let request = instance.spotRequestID { xml.element("spotInstanceRequestId", request) }
        xml.element("virtualizationType", "hvm")
        xml.element("hypervisor", "xen")
        xml.open("tagSet")
        for tag in instance.tags {
            xml.element("item") { x in
                x.element("key", tag.key)
                x.element("value", tag.value)
            }
        }
        xml.close("tagSet")
        xml.element("hibernationOptions") { x in x.element("configured", instance.hibernationConfigured) }
        xml.close("item")
    }

    // MARK: DescribeInstanceStatus

    func describeInstanceStatus(_ call: EC2Call) throws(SimAPIError) -> String {
        let ids = call.list("InstanceId")
        if ids.count > 100 {
            throw SimAPIError("InvalidParameterValue", "The maximum number of instance IDs that can be specified is 100; you specified \(ids.count).")
        }
        let maxResults = try pageSize(call, range: 5...1000, allowedWithIDs: false, ids: ids)
        let includeAll = call.flag("IncludeAllInstances")
        let filters = try compile(call.filters, allowed: Self.statusFilters)
        let candidates = ids.isEmpty ? Array(instances.indices) : try resolve(ids)
        let matching = candidates.filter { index in
            (includeAll || instances[index].state == .running) && filters.allSatisfy { $0(instances[index]) }
        }
        let (page, next) = try paginate(matching, token: call.parameters["NextToken"], size: maxResults)
        var xml = XMLWriter(root: "DescribeInstanceStatusResponse")
        xml.element("requestId", call.requestID)
        xml.open("instanceStatusSet")
        for index in page {
            let instance = instances[index]
            let status = instance.state == .running ? (instance.statusOk ? "ok" : "initializing") : "not-applicable"
            xml.element("item") { x in
                x.element("instanceId", instance.id)
                x.element("availabilityZone", instance.zone)
                x.element("instanceState") { s in
                    s.element("code", instance.state.code)
                    s.element("name", instance.state.rawValue)
                }
                for name in ["systemStatus", "instanceStatus"] {
                    x.element(name) { s in
                        s.element("status", status)
                        s.element("details") { d in
                            if status != "not-applicable" {
                                d.element("item") { i in
                                    i.element("name", "reachability")
                                    i.element("status", status == "ok" ? "passed" : "initializing")
                                }
                            }
                        }
                    }
                }
            }
        }
        xml.close("instanceStatusSet")
        if let next { xml.element("nextToken", next) }
        return xml.finish("DescribeInstanceStatusResponse")
    }

    // MARK: StopInstances / StartInstances / CreateTags

    func stateChangeXML(_ root: String, _ changes: [StateChangeItem], requestID: String) -> String {
        var xml = XMLWriter(root: root)
        xml.element("requestId", requestID)
        xml.open("instancesSet")
        for change in changes {
            xml.element("item") { x in
                x.element("instanceId", change.id)
                x.element("currentState") { s in
                    s.element("code", change.current.code)
                    s.element("name", change.current.rawValue)
                }
                x.element("previousState") { s in
                    s.element("code", change.previous.code)
                    s.element("name", change.previous.rawValue)
                }
            }
        }
        xml.close("instancesSet")
        return xml.finish(root)
    }

    mutating func createTagsCall(_ call: EC2Call) throws(SimAPIError) -> String {
        let ids = call.list("ResourceId")
        guard !ids.isEmpty else { throw SimAPIError("MissingParameter", "The request must contain the parameter ResourceId") }
        var tags: [(String, String)] = []
        var number = 1
        while let key = call.parameters["Tag.\(number).Key"] {
            tags.append((key, call.parameters["Tag.\(number).Value"] ?? ""))
            number += 1
        }
        if call.flag("DryRun") {
            _ = try resolve(ids)
            throw SimAPIError("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", status: 412)
        }
        try createTags(ids: ids, tags: tags)
        var xml = XMLWriter(root: "CreateTagsResponse")
        xml.element("requestId", call.requestID)
        xml.element("return", true)
        return xml.finish("CreateTagsResponse")
    }

    // MARK: DescribeSpotPriceHistory

    mutating func describeSpotPriceHistory(_ call: EC2Call) throws(SimAPIError) -> String {
        let maxResults = try pageSize(call, range: 1...1000, allowedWithIDs: true, ids: []) ?? 1000
        func time(_ name: String) throws(SimAPIError) -> Double? {
            guard let text = call.parameters[name] else { return nil }
            guard let seconds = ISO8601.parse(text) else {
                throw SimAPIError("InvalidParameterValue", "Value (\(text)) for parameter \(name) is invalid.")
            }
            return Double(seconds)
        }
        // Nothing after the simulated present exists yet.
        let end = min(try time("EndTime") ?? now, now)
        let start = min(try time("StartTime") ?? end, end)
        spotMarket.extend(to: now)
        let types = Set(call.list("InstanceType"))
        let products = Set(call.list("ProductDescription"))
        let zone = call.parameters["AvailabilityZone"]
        let filters = call.filters
        var rows: [(key: SpotMarket.Key, point: SpotMarket.Point)] = []
        for key in spotMarket.keys.sorted(by: { ($0.instanceType, $0.zone, $0.product) < ($1.instanceType, $1.zone, $1.product) }) {
            if !types.isEmpty && !types.contains(key.instanceType) { continue }
            if !products.isEmpty && !products.contains(key.product) { continue }
            if let zone, zone != key.zone { continue }
            var keep = true
            for filter in filters {
                switch filter.name {
                case "instance-type": keep = keep && filter.values.contains(key.instanceType)
                case "availability-zone": keep = keep && filter.values.contains(key.zone)
                case "product-description": keep = keep && filter.values.contains(key.product)
                default: throw SimAPIError("InvalidParameterValue", "The filter '\(filter.name)' is invalid")
                }
            }
            if !keep { continue }
            for point in spotMarket.history(key, from: start, to: end) { rows.append((key, point)) }
        }
        rows.sort { $0.point.time > $1.point.time }
        let (page, next) = try paginate(Array(rows.indices), token: call.parameters["NextToken"], size: maxResults)
        var xml = XMLWriter(root: "DescribeSpotPriceHistoryResponse")
        xml.element("requestId", call.requestID)
        xml.open("spotPriceHistorySet")
        for row in page.map({ rows[$0] }) {
            xml.element("item") { x in
                x.element("instanceType", row.key.instanceType)
                x.element("productDescription", row.key.product)
                x.element("spotPrice", String(format: "%.6f", row.point.price))
                x.element("timestamp", ec2Timestamp(row.point.time))
                x.element("availabilityZone", row.key.zone)
            }
        }
        xml.close("spotPriceHistorySet")
        xml.element("nextToken", next ?? "")
        return xml.finish("DescribeSpotPriceHistoryResponse")
    }

    // MARK: DescribeSpotInstanceRequests

    func describeSpotInstanceRequests(_ call: EC2Call) throws(SimAPIError) -> String {
        let asked = call.list("SpotInstanceRequestId")
        let spot = instances.filter { $0.spotRequestID != nil }
        var rows = spot
        if !asked.isEmpty {
            let known = Set(spot.compactMap(\.spotRequestID))
            let missing = asked.filter { !known.contains($0) }
            if !missing.isEmpty {
                throw SimAPIError("InvalidSpotInstanceRequestID.NotFound", "The spot instance request ID '\(missing.joined(separator: ", "))' does not exist")
            }
            let wanted = Set(asked)
            rows = spot.filter { wanted.contains($0.spotRequestID!) }
        }
        var xml = XMLWriter(root: "DescribeSpotInstanceRequestsResponse")
        xml.element("requestId", call.requestID)
        xml.open("spotInstanceRequestSet")
        for instance in rows {
            xml.element("item") { x in
                x.element("spotInstanceRequestId", instance.spotRequestID!)
                x.element("type", instance.oneTimeSpot ? "one-time" : "persistent")
                x.element("state", instance.state == .terminated ? "closed" : "active")
                x.element("instanceId", instance.id)
                x.element("launchedAvailabilityZone", instance.zone)
                x.element("productDescription", "Linux/UNIX")
            }
        }
        xml.close("spotInstanceRequestSet")
        return xml.finish("DescribeSpotInstanceRequestsResponse")
    }

    // MARK: DescribeInstanceTypes

    func describeInstanceTypes(_ call: EC2Call) throws(SimAPIError) -> String {
        let maxResults = try pageSize(call, range: 5...100, allowedWithIDs: true, ids: []) ?? 100
        var names = Set(InstanceTypeCatalog.known.keys).union(spec.groups.map(\.instanceType))
        let asked = call.list("InstanceType")
        if !asked.isEmpty {
            let unknown = asked.filter { !names.contains($0) }
            if !unknown.isEmpty {
                throw SimAPIError("InvalidInstanceType", "The following supplied instance types do not exist: [\(unknown.joined(separator: ", "))]")
            }
            names = Set(asked)
        }
        var rows = names.sorted()
        for filter in call.filters {
            switch filter.name {
            case "hibernation-supported":
                rows = rows.filter { filter.values.contains(String(InstanceTypeCatalog.known[$0]?.hibernation ?? true)) }
            case "instance-type":
                rows = rows.filter { filter.values.contains($0) }
            default:
                throw SimAPIError("InvalidParameterValue", "The filter '\(filter.name)' is invalid")
            }
        }
        let (page, next) = try paginate(Array(rows.indices), token: call.parameters["NextToken"], size: maxResults)
        var xml = XMLWriter(root: "DescribeInstanceTypesResponse")
        xml.element("requestId", call.requestID)
        xml.open("instanceTypeSet")
        for name in page.map({ rows[$0] }) {
            let info = InstanceTypeCatalog.known[name]
            let memory = info?.memoryMiB ?? Int((spec.groups.first { $0.instanceType == name }?.memoryGiB ?? 8) * 1024)
            xml.element("item") { x in
                x.element("instanceType", name)
                x.element("hibernationSupported", info?.hibernation ?? true)
                x.element("memoryInfo") { m in m.element("sizeInMiB", memory) }
                x.element("vCpuInfo") { v in v.element("defaultVCpus", info?.vcpus ?? 2) }
            }
        }
        xml.close("instanceTypeSet")
        if let next { xml.element("nextToken", next) }
        return xml.finish("DescribeInstanceTypesResponse")
    }

    // MARK: Filters and pages

    typealias InstanceFilter = (SimInstance) -> Bool

    static let instanceFilters: Set<String> = [
        "instance-id", "instance-state-name", "instance-state-code", "instance-type", "availability-zone", "tag-key",
        "tag-value", "instance-lifecycle", "hibernation-options.configured", "private-ip-address", "spot-instance-request-id",
    ]
    static let statusFilters: Set<String> = ["instance-id", "instance-state-name", "instance-state-code", "availability-zone"]

    func compile(_ filters: [(name: String, values: [String])], allowed: Set<String>) throws(SimAPIError) -> [InstanceFilter] {
        var compiled: [InstanceFilter] = []
        for filter in filters {
            let values = filter.values
            func matches(_ candidate: String?) -> Bool {
                guard let candidate else { return false }
                return values.contains { Self.glob($0, candidate) }
            }
            if filter.name.hasPrefix("tag:") && allowed.contains("tag-key") {
                let key = String(filter.name.dropFirst(4))
                compiled.append { instance in matches(instance.tags.first { $0.key == key }?.value) }
                continue
            }
            guard allowed.contains(filter.name) else {
                throw SimAPIError("InvalidParameterValue", "The filter '\(filter.name)' is invalid")
            }
            switch filter.name {
            case "instance-id": compiled.append { matches($0.id) }
            case "instance-state-name": compiled.append { matches($0.state.rawValue) }
            case "instance-state-code": compiled.append { matches(String($0.state.code)) }
            case "instance-type": compiled.append { matches($0.instanceType) }
            case "availability-zone": compiled.append { matches($0.zone) }
            case "tag-key": compiled.append { instance in instance.tags.contains { matches($0.key) } }
            case "tag-value": compiled.append { instance in instance.tags.contains { matches($0.value) } }
            case "instance-lifecycle": compiled.append { matches($0.lifecycle) }
            case "hibernation-options.configured": compiled.append { matches($0.hibernationConfigured ? "true" : "false") }
            case "private-ip-address": compiled.append { matches($0.privateIP) }
            case "spot-instance-request-id": compiled.append { matches($0.spotRequestID) }
            default: break
            }
        }
        return compiled
    }

    /// EC2's filter wildcards: `*` any run, `?` any one character.
    static func glob(_ pattern: String, _ text: String) -> Bool {
        guard pattern.contains("*") || pattern.contains("?") else { return pattern == text }
        let p = Array(pattern), t = Array(text)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            // A `*` in the pattern is always a wildcard, even where the
            // text holds a literal `*`.
            if pi < p.count, p[pi] == "*" { star = pi; mark = ti; pi += 1 }
            else if pi < p.count, p[pi] == "?" || p[pi] == t[ti] { pi += 1; ti += 1 }
            else if star >= 0 { pi = star + 1; mark += 1; ti = mark }
            else { return false }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }

    func pageSize(_ call: EC2Call, range: ClosedRange<Int>, allowedWithIDs: Bool, ids: [String]) throws(SimAPIError) -> Int? {
        guard let text = call.parameters["MaxResults"] else { return nil }
        if !allowedWithIDs && !ids.isEmpty {
            throw SimAPIError("InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
        }
        guard let value = Int(text), range.contains(value) else {
            throw SimAPIError("InvalidParameterValue", "Value ( \(text) ) for parameter maxResults is invalid. Expecting a value between \(range.lowerBound) and \(range.upperBound).")
        }
        return value
    }

    /// Pages by position; the token carries the offset.
    func paginate<T>(_ items: [T], token: String?, size: Int?) throws(SimAPIError) -> ([T], String?) {
        var offset = 0
        if let token, !token.isEmpty {
            guard let data = Data(base64Encoded: token), let text = String(data: data, encoding: .utf8),
                  text.hasPrefix("torpor-sim:"), let value = Int(text.dropFirst("torpor-sim:".count)), value >= 0
            else { throw SimAPIError("InvalidParameterValue", "The token '\(token)' is invalid.") }
            offset = value
        }
        guard let size else { return (Array(items.dropFirst(offset)), nil) }
        let end = min(items.count, offset + size)
        let page = offset < items.count ? Array(items[offset..<end]) : []
        let next = end < items.count ? Data("torpor-sim:\(end)".utf8).base64EncodedString() : nil
        return (page, next)
    }
}
