import TorporAWS

/// Stops or starts many instances in batches so that one bad instance never
/// hides the outcome of the others: ids that an error names are taken out
/// and the rest resent; any other batch error splits the batch in halves
/// down to the instance that causes it.
///
/// This is the plain batching of the first command line; the fleet engine
/// adds plans, pacing and waits on top.
public struct BatchStateChange: Sendable {
    public enum Action: String, Sendable, Codable {
        case stop, start
    }

    public struct Options: Sendable {
        public var hibernate = false
        public var force = false
        public var dryRun = false
        /// Ids per call.
        public var batchSize = 100

        public init(hibernate: Bool = false, force: Bool = false, dryRun: Bool = false, batchSize: Int = 100) {
            self.hibernate = hibernate
            self.force = force
            self.dryRun = dryRun
            self.batchSize = max(1, batchSize)
        }
    }

    /// What happened to one instance.
    public enum Result: Sendable, Equatable {
        case changed(InstanceStateChange)
        /// A dry run that EC2 said would have been allowed.
        case dryRunPermitted
        case failed(code: String, message: String)
    }

    public let ec2: EC2Client
    public let action: Action
    public let options: Options

    public init(ec2: EC2Client, action: Action, options: Options) {
        self.ec2 = ec2
        self.action = action
        self.options = options
    }

    /// Every id in `ids` gets exactly one result.
    public func run(_ ids: [String]) async throws -> [String: Result] {
        var results: [String: Result] = [:]
        var start = 0
        while start < ids.count {
            let batch = Array(ids[start..<min(ids.count, start + options.batchSize)])
            try await send(batch, into: &results)
            start += options.batchSize
        }
        return results
    }

    private func call(_ ids: [String]) async throws -> StateChangeResult {
        switch action {
        case .stop:
            return try await ec2.stopInstances(ids: ids, hibernate: options.hibernate, force: options.force, dryRun: options.dryRun)
        case .start:
            return try await ec2.startInstances(ids: ids, dryRun: options.dryRun)
        }
    }

    private func send(_ ids: [String], into results: inout [String: Result]) async throws {
        guard !ids.isEmpty else { return }
        do {
            let answer = try await call(ids)
            if answer.dryRunPermitted {
                for id in ids { results[id] = .dryRunPermitted }
                return
            }
            for change in answer.changes { results[change.instanceID] = .changed(change) }
            for id in ids where results[id] == nil {
                results[id] = .failed(code: "MissingFromResponse", message: "EC2 accepted the call but did not report this instance")
            }
        } catch let error as AWSServiceError {
            if Self.callWideCodes.contains(error.code) {
                // Not about any one instance: splitting would only repeat it.
                for id in ids { results[id] = .failed(code: error.code, message: error.message) }
                return
            }
            let named = Set(EC2ErrorCode.instanceIDs(in: error.message)).intersection(ids)
            if error.code.hasPrefix("InvalidInstanceID"), !named.isEmpty {
                for id in named { results[id] = .failed(code: error.code, message: error.message) }
                try await send(ids.filter { !named.contains($0) }, into: &results)
            } else if ids.count > 1 {
                let middle = ids.count / 2
                try await send(Array(ids[..<middle]), into: &results)
                try await send(Array(ids[middle...]), into: &results)
            } else {
                results[ids[0]] = .failed(code: error.code, message: error.message)
            }
        }
    }

    /// Errors about the caller or the account, never about one instance.
    static let callWideCodes: Set<String> = [
        "AuthFailure", "UnauthorizedOperation", "SignatureDoesNotMatch", "InvalidClientTokenId",
        "RequestExpired", "OptInRequired", "Blocked", "RequestLimitExceeded",
    ]
}
