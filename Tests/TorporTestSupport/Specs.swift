public import TorporEC2
public import TorporSigV4
public import TorporSim

/// EC2's `Tag`, under a name that no test module's own types hide.
public typealias EC2Tag = TorporEC2.Tag

// MARK: Fleets for the simulator

/// A group with the simulator's defaults, tagged `tags`; `configure` changes
/// what a test needs (after the tags are set).
public func makeGroup(_ name: String, _ count: Int, tags: [(key: String, value: String)] = [],
                      _ configure: (inout GroupSpec) -> Void = { _ in }) -> GroupSpec {
    var group = GroupSpec(name: name, count: count)
    group.tags = tags
    configure(&group)
    return group
}

/// A fleet of `groups` from `seed`, its simulator accepting `credentials`
/// (nil: FleetSpec's own, none); `configure` changes the rest. Each test
/// module's `makeSpec` gives it its own seed and credentials.
public func fleetSpec(seed: UInt64, credentials: [AWSCredentials]?, _ groups: [GroupSpec],
                      _ configure: (inout FleetSpec) -> Void = { _ in }) -> FleetSpec {
    var spec = FleetSpec()
    spec.seed = seed
    if let credentials {
        spec.credentials = credentials
    }
    spec.groups = groups
    configure(&spec)
    return spec
}
