import TorporAWS
public import TorporEC2

/// Which instances a command or job targets. Selectors of different kinds
/// must all match; values of one kind widen the match.
public struct FleetSelector: Codable, Sendable, Equatable {
    public var ids: [String] = []
    /// `(key, value)` tag matches.
    public var tags: [Tag] = []
    public var filters: [EC2Filter] = []
    public var states: [String] = []

    public init(ids: [String] = [], tags: [Tag] = [], filters: [EC2Filter] = [], states: [String] = []) {
        self.ids = ids
        self.tags = tags
        self.filters = filters
        self.states = states
    }

    public var isEmpty: Bool { ids.isEmpty && tags.isEmpty && filters.isEmpty && states.isEmpty }

    public var ec2Filters: [EC2Filter] {
        var result = tags.map { EC2Filter(name: "tag:\($0.key)", values: [$0.value]) }
        result += filters
        if !states.isEmpty { result.append(EC2Filter(name: "instance-state-name", values: states)) }
        return result
    }
}

/// The selected instances, described with paginated calls, and the ids that
/// EC2 does not know.
public struct FleetSelection: Sendable {
    public var instances: [EC2Instance]
    public var missing: [MissingInstance]
    /// Describe calls it took.
    public var calls: Int

    public static func resolve(_ ec2: EC2Client, _ selector: FleetSelector, pageSize: Int = 1000) async throws -> FleetSelection {
        var ids = selector.ids.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        var missing: [MissingInstance] = []
        var calls = 0
        while true {
            do {
                var instances: [EC2Instance] = []
                for try await page in ec2.describeInstances(ids: ids, filters: selector.ec2Filters, maxResults: pageSize) {
                    calls += 1
                    instances += page.items
                }
                return FleetSelection(instances: instances, missing: missing, calls: calls)
            } catch let error as AWSServiceError where error.code.hasPrefix("InvalidInstanceID") {
                calls += 1
                // EC2 fails the whole call for one unknown id; take out the
                // ids it names and describe the rest.
                let named = Set(EC2ErrorCode.instanceIDs(in: error.message)).intersection(ids)
                guard !named.isEmpty else { throw error }
                for id in ids where named.contains(id) {
                    missing.append(MissingInstance(instanceID: id, code: error.code, message: error.message))
                }
                ids.removeAll { named.contains($0) }
                if ids.isEmpty { return FleetSelection(instances: [], missing: missing, calls: calls) }
            }
        }
    }

    /// One-time or persistent, for the spot instances among `instances`:
    /// the plan needs it, because EC2 cannot stop one-time spot instances.
    /// Without permission to ask, returns what it has; the executor then
    /// learns from EC2's refusal.
    public static func spotRequestTypes(_ ec2: EC2Client, for instances: [EC2Instance]) async -> (types: [String: String], calls: Int) {
        let requests = instances.compactMap(\.spotInstanceRequestID)
        guard !requests.isEmpty else { return ([:], 0) }
        var types: [String: String] = [:]
        var calls = 0
        for chunk in requests.chunks(of: 1000) {
            calls += 1
            guard let found = try? await ec2.describeSpotInstanceRequests(ids: Array(chunk)).all() else { break }
            for request in found { types[request.requestID] = request.type }
        }
        return (types, calls)
    }
}
