public import TorporAWS

/// EC2's Query API, version 2016-11-15: the operations Torpor uses.
public struct EC2Client: Sendable {
    public static let apiVersion = "2016-11-15"
    /// DescribeInstanceStatus accepts at most this many ids per call.
    public static let maxStatusIDs = 100

    public let aws: AWSQueryClient

    public init(aws: AWSQueryClient) {
        self.aws = aws
    }

    func parameters(_ action: String) -> QueryParameters {
        QueryParameters(action: action, version: Self.apiVersion)
    }

    /// Sends and decodes; a decoding failure keeps the action's name.
    func call<T>(_ parameters: QueryParameters, idempotent: Bool = true,
                 decode: (XMLNode) throws(EC2Decoding.Missing) -> T) async throws -> (T, AWSQueryClient.Answer) {
        let answer = try await aws.send(parameters, idempotent: idempotent)
        do {
            return (try decode(answer.root), answer)
        } catch {
            throw AWSResponseError(action: parameters["Action"] ?? "?", httpStatus: 200, reason: error.what, body: [])
        }
    }

    // MARK: DescribeInstances

    /// Pages of instances. EC2 does not allow MaxResults together with
    /// instance ids, so `maxResults` applies only when `ids` is empty.
    public func describeInstances(ids: [String] = [], filters: [EC2Filter] = [], maxResults: Int? = nil) -> Paginator<EC2Instance> {
        Paginator { token in
            var parameters = parameters("DescribeInstances")
            parameters.setList("InstanceId", ids)
            parameters.setFilters(filters.map { ($0.name, $0.values) })
            if ids.isEmpty, let maxResults { parameters.set("MaxResults", min(1000, max(5, maxResults))) }
            if let token { parameters.set("NextToken", token) }
            let (items, answer) = try await call(parameters, decode: EC2Decoding.instances)
            return Page(items: items, nextToken: EC2Decoding.nextToken(answer.root), requestID: answer.requestID)
        }
    }

    // MARK: DescribeInstanceStatus

    /// Pages of status; `ids` is limited to 100 per call by EC2, so larger
    /// sets must be split by the caller (see `maxStatusIDs`).
    public func describeInstanceStatus(ids: [String] = [], filters: [EC2Filter] = [], includeAllInstances: Bool = true,
                                       maxResults: Int? = nil) throws -> Paginator<InstanceStatus> {
        guard ids.count <= Self.maxStatusIDs else {
            throw EC2UsageError("DescribeInstanceStatus takes at most \(Self.maxStatusIDs) instance ids, not \(ids.count)")
        }
        return Paginator { token in
            var parameters = parameters("DescribeInstanceStatus")
            parameters.setList("InstanceId", ids)
            parameters.setFilters(filters.map { ($0.name, $0.values) })
            parameters.set("IncludeAllInstances", includeAllInstances)
            if ids.isEmpty, let maxResults { parameters.set("MaxResults", min(1000, max(5, maxResults))) }
            if let token { parameters.set("NextToken", token) }
            let (items, answer) = try await call(parameters, decode: EC2Decoding.statuses)
            return Page(items: items, nextToken: EC2Decoding.nextToken(answer.root), requestID: answer.requestID)
        }
    }

    // MARK: StopInstances / StartInstances

    /// Stopping is idempotent in effect (a second stop of a stopping
    /// instance changes nothing), so ambiguous failures may be retried.
    public func stopInstances(ids: [String], hibernate: Bool = false, force: Bool = false, dryRun: Bool = false) async throws -> StateChangeResult {
        var parameters = parameters("StopInstances")
        parameters.setList("InstanceId", ids)
        if hibernate { parameters.set("Hibernate", true) }
        if force { parameters.set("Force", true) }
        if dryRun { parameters.set("DryRun", true) }
        return try await stateChange(parameters, dryRun: dryRun)
    }

    public func startInstances(ids: [String], dryRun: Bool = false) async throws -> StateChangeResult {
        var parameters = parameters("StartInstances")
        parameters.setList("InstanceId", ids)
        if dryRun { parameters.set("DryRun", true) }
        return try await stateChange(parameters, dryRun: dryRun)
    }

    private func stateChange(_ parameters: QueryParameters, dryRun: Bool) async throws -> StateChangeResult {
        do {
            let (changes, answer) = try await call(parameters, decode: EC2Decoding.stateChanges)
            return StateChangeResult(changes: changes, requestID: answer.requestID, dryRunPermitted: false)
        } catch let error as AWSServiceError where dryRun && error.code == EC2ErrorCode.dryRunOperation {
            return StateChangeResult(changes: [], requestID: error.requestID, dryRunPermitted: true)
        }
    }

    // MARK: CreateTags

    public func createTags(resourceIDs: [String], tags: [Tag]) async throws {
        var parameters = parameters("CreateTags")
        parameters.setList("ResourceId", resourceIDs)
        for (index, tag) in tags.enumerated() {
            parameters.set("Tag.\(index + 1).Key", tag.key)
            parameters.set("Tag.\(index + 1).Value", tag.value)
        }
        _ = try await call(parameters) { _ throws(EC2Decoding.Missing) in () }
    }

    // MARK: DescribeSpotPriceHistory

    /// - Parameters:
    ///   - startTime, endTime: seconds since 1970.
    public func describeSpotPriceHistory(instanceTypes: [String] = [], productDescriptions: [String] = [],
                                         availabilityZone: String? = nil, startTime: Int64? = nil, endTime: Int64? = nil,
                                         filters: [EC2Filter] = [], maxResults: Int? = nil) -> Paginator<SpotPrice> {
        Paginator { token in
            var parameters = parameters("DescribeSpotPriceHistory")
            parameters.setList("InstanceType", instanceTypes)
            parameters.setList("ProductDescription", productDescriptions)
            if let availabilityZone { parameters.set("AvailabilityZone", availabilityZone) }
            if let startTime { parameters.set("StartTime", ISO8601.format(startTime)) }
            if let endTime { parameters.set("EndTime", ISO8601.format(endTime)) }
            parameters.setFilters(filters.map { ($0.name, $0.values) })
            if let maxResults { parameters.set("MaxResults", max(1, min(1000, maxResults))) }
            if let token { parameters.set("NextToken", token) }
            let (items, answer) = try await call(parameters, decode: EC2Decoding.spotPrices)
            return Page(items: items, nextToken: EC2Decoding.nextToken(answer.root), requestID: answer.requestID)
        }
    }

    // MARK: DescribeSpotInstanceRequests

    public func describeSpotInstanceRequests(ids: [String] = [], filters: [EC2Filter] = []) -> Paginator<SpotInstanceRequest> {
        Paginator { token in
            var parameters = parameters("DescribeSpotInstanceRequests")
            parameters.setList("SpotInstanceRequestId", ids)
            parameters.setFilters(filters.map { ($0.name, $0.values) })
            if let token { parameters.set("NextToken", token) }
            let (items, answer) = try await call(parameters, decode: EC2Decoding.spotRequests)
            return Page(items: items, nextToken: EC2Decoding.nextToken(answer.root), requestID: answer.requestID)
        }
    }

    // MARK: DescribeInstanceTypes

    /// `hibernationSupported: true` adds the `hibernation-supported` filter.
    public func describeInstanceTypes(instanceTypes: [String] = [], hibernationSupported: Bool? = nil,
                                      filters: [EC2Filter] = [], maxResults: Int? = nil) -> Paginator<InstanceTypeInfo> {
        let allFilters = filters + (hibernationSupported.map {
            [EC2Filter(name: "hibernation-supported", values: [$0 ? "true" : "false"])]
        } ?? [])
        return Paginator { token in
            var parameters = parameters("DescribeInstanceTypes")
            parameters.setList("InstanceType", instanceTypes)
            parameters.setFilters(allFilters.map { ($0.name, $0.values) })
            if let maxResults { parameters.set("MaxResults", max(5, min(100, maxResults))) }
            if let token { parameters.set("NextToken", token) }
            let (items, answer) = try await call(parameters, decode: EC2Decoding.instanceTypes)
            return Page(items: items, nextToken: EC2Decoding.nextToken(answer.root), requestID: answer.requestID)
        }
    }
}

public struct EC2UsageError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Error codes that Torpor reacts to.
public enum EC2ErrorCode {
    public static let dryRunOperation = "DryRunOperation"
    public static let unauthorizedOperation = "UnauthorizedOperation"
    public static let instanceNotFound = "InvalidInstanceID.NotFound"
    public static let instanceMalformed = "InvalidInstanceID.Malformed"
    public static let unsupportedHibernation = "UnsupportedHibernationConfiguration"
    public static let unsupportedOperation = "UnsupportedOperation"
    public static let incorrectInstanceState = "IncorrectInstanceState"
    public static let insufficientCapacity = "InsufficientInstanceCapacity"
    public static let authFailure = "AuthFailure"

    /// The instance ids an error message names (`'i-0abc, i-0def'`), so that a
    /// batch can drop exactly those and resend the rest.
    public static func instanceIDs(in message: String) -> [String] {
        var ids: [String] = []
        var seen = Set<String>()
        let bytes = Array(message.utf8)
        var index = 0
        while index + 2 < bytes.count {
            let startsWord = index == 0 || !isIDByte(bytes[index - 1])
            if startsWord, bytes[index] == UInt8(ascii: "i"), bytes[index + 1] == UInt8(ascii: "-") {
                var end = index + 2
                while end < bytes.count, isIDByte(bytes[end]) { end += 1 }
                if end > index + 2 {
                    let id = String(decoding: bytes[index..<end], as: UTF8.self)
                    if seen.insert(id).inserted { ids.append(id) }
                }
                index = end
            } else {
                index += 1
            }
        }
        return ids
    }

    private static func isIDByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A)
    }
}
