import TorporAWS
import TorporEC2

/// The instances that selectors name, described with paginated calls.
struct Selection {
    var instances: [EC2Instance]
    /// Ids given with --id that EC2 does not know, with its error.
    var missing: [(id: String, code: String, message: String)]

    static func resolve(_ ec2: EC2Client, _ selectors: SelectorOptions) async throws -> Selection {
        var ids = selectors.ids.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        var missing: [(String, String, String)] = []
        while true {
            do {
                let instances = try await ec2.describeInstances(ids: ids, filters: selectors.ec2Filters, maxResults: 1000).all()
                return Selection(instances: instances, missing: missing)
            } catch let error as AWSServiceError where error.code.hasPrefix("InvalidInstanceID") {
                // EC2 fails the whole call for one unknown id; take out the
                // ids it names and describe the rest.
                let named = Set(EC2ErrorCode.instanceIDs(in: error.message)).intersection(ids)
                guard !named.isEmpty else { throw error }
                for id in ids where named.contains(id) { missing.append((id, error.code, error.message)) }
                ids.removeAll { named.contains($0) }
                if ids.isEmpty { return Selection(instances: [], missing: missing) }
            }
        }
    }
}
