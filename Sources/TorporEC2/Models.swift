/// An instance's state, as EC2 reports it. The code's high byte is internal
/// to EC2 and masked off, as the API reference asks.
public struct InstanceState: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public let code: Int
    public let name: String

    public init(code: Int, name: String) {
        self.code = code & 0xFF
        self.name = name
    }

    public static let pending = InstanceState(code: 0, name: "pending")
    public static let running = InstanceState(code: 16, name: "running")
    public static let shuttingDown = InstanceState(code: 32, name: "shutting-down")
    public static let terminated = InstanceState(code: 48, name: "terminated")
    public static let stopping = InstanceState(code: 64, name: "stopping")
    public static let stopped = InstanceState(code: 80, name: "stopped")

    public static let allNames = ["pending", "running", "shutting-down", "terminated", "stopping", "stopped"]

    public var description: String { name }
}

/// A key/value tag.
public struct Tag: Sendable, Equatable, Hashable, Codable {
    public let key: String
    public let value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// Why an instance last changed state (`Client.UserInitiatedHibernate`, ...).
public struct StateReason: Sendable, Equatable, Codable {
    public let code: String
    public let message: String
}

/// The fields of an instance that a fleet tool needs.
public struct EC2Instance: Sendable, Equatable, Codable {
    public var instanceID: String
    public var instanceType: String
    public var state: InstanceState
    public var stateReason: StateReason?
    public var stateTransitionReason: String?
    /// Seconds since 1970.
    public var launchTime: Int64?
    public var availabilityZone: String?
    public var privateIPAddress: String?
    public var tags: [Tag]
    /// `hibernationOptions.configured`.
    public var hibernationConfigured: Bool
    /// `spot`, `scheduled`, `capacity-block`; nil for on-demand.
    public var instanceLifecycle: String?
    /// `ebs` or `instance-store`.
    public var rootDeviceType: String?
    public var spotInstanceRequestID: String?

    public init(instanceID: String, instanceType: String, state: InstanceState, stateReason: StateReason? = nil,
                stateTransitionReason: String? = nil, launchTime: Int64? = nil, availabilityZone: String? = nil,
                privateIPAddress: String? = nil, tags: [Tag] = [], hibernationConfigured: Bool = false,
                instanceLifecycle: String? = nil, rootDeviceType: String? = nil, spotInstanceRequestID: String? = nil) {
        self.instanceID = instanceID
        self.instanceType = instanceType
        self.state = state
        self.stateReason = stateReason
        self.stateTransitionReason = stateTransitionReason
        self.launchTime = launchTime
        self.availabilityZone = availabilityZone
        self.privateIPAddress = privateIPAddress
        self.tags = tags
        self.hibernationConfigured = hibernationConfigured
        self.instanceLifecycle = instanceLifecycle
        self.rootDeviceType = rootDeviceType
        self.spotInstanceRequestID = spotInstanceRequestID
    }

    public func tag(_ key: String) -> String? { tags.first { $0.key == key }?.value }
    public var name: String? { tag("Name") }
}

/// One instance's move, from a StopInstances or StartInstances answer.
public struct InstanceStateChange: Sendable, Equatable, Codable {
    public let instanceID: String
    public let previousState: InstanceState
    public let currentState: InstanceState
}

/// The answer to StopInstances or StartInstances.
public struct StateChangeResult: Sendable, Equatable {
    public let changes: [InstanceStateChange]
    public let requestID: String?
    /// For a dry run: EC2 answered `DryRunOperation`, meaning the call would
    /// have been allowed. `changes` is then empty.
    public let dryRunPermitted: Bool

    public init(changes: [InstanceStateChange], requestID: String?, dryRunPermitted: Bool) {
        self.changes = changes
        self.requestID = requestID
        self.dryRunPermitted = dryRunPermitted
    }
}

public struct InstanceStatus: Sendable, Equatable, Codable {
    public let instanceID: String
    public let availabilityZone: String?
    public let state: InstanceState
    /// `ok`, `impaired`, `initializing`, `insufficient-data`, `not-applicable`.
    public let systemStatus: String?
    public let instanceStatus: String?
}

public struct SpotPrice: Sendable, Equatable, Codable {
    public let instanceType: String
    public let productDescription: String
    public let availabilityZone: String
    public let price: String
    /// Seconds since 1970.
    public let timestamp: Int64
}

public struct InstanceTypeInfo: Sendable, Equatable, Codable {
    public let instanceType: String
    public let hibernationSupported: Bool
    public let memoryMiB: Int?
}

/// A page of a paginated answer.
public struct Page<Item: Sendable>: Sendable {
    public let items: [Item]
    public let nextToken: String?
    public let requestID: String?
}

/// An EC2 filter: `Name` and its values (any value matches).
public struct EC2Filter: Sendable, Equatable, Codable {
    public let name: String
    public let values: [String]

    public init(name: String, values: [String]) {
        self.name = name
        self.values = values
    }
}

/// A spot request, for its type: EC2 cannot stop instances of one-time requests.
public struct SpotInstanceRequest: Sendable, Equatable, Codable {
    public let requestID: String
    /// `one-time` or `persistent`.
    public let type: String
    public let state: String?
    public let instanceID: String?
}
