import Testing
import TorporEC2
import TorporFleet
import TorporSigV4
import TorporSim
import TorporTestSupport

// MARK: Plans as values

/// An instance as DescribeInstances would give it, with test-friendly defaults.
func makeInstance(_ id: String, state: InstanceState = .running, tags: [EC2Tag] = [], configured: Bool = true,
                  lifecycle: String? = nil, spotRequest: String? = nil, root: String? = "ebs",
                  type: String = "m5.large") -> EC2Instance {
    EC2Instance(instanceID: id, instanceType: type, state: state, tags: tags + [EC2Tag(key: "Name", value: "n-\(id)")],
                hibernationConfigured: configured, instanceLifecycle: lifecycle, rootDeviceType: root,
                spotInstanceRequestID: spotRequest)
}

/// A well-formed instance id (17 hex digits) for a small number.
func fakeID(_ number: Int) -> String {
    let hex = String(number, radix: 16)
    return "i-0" + String(repeating: "0", count: 16 - hex.count) + hex
}

func rules(_ configure: (inout PlanRules) -> Void = { _ in }) -> PlanRules {
    var rules = PlanRules()
    configure(&rules)
    return rules
}

// MARK: The simulator in this process (see Tests/TorporTestSupport)

let testCredentials = AWSCredentials(accessKeyID: "AKIDFLEETTESTS", secretAccessKey: "fleet-tests-secret")

/// A fleet from this module's seed, its simulator accepting `testCredentials`.
func makeSpec(seed: UInt64 = 11, _ groups: [GroupSpec], _ configure: (inout FleetSpec) -> Void = { _ in }) -> FleetSpec {
    fleetSpec(seed: seed, credentials: [testCredentials], groups, configure)
}

/// Results by id, failing the test if an id has two.
func resultsByID(_ report: FleetReport) -> [String: InstanceResult] {
    var byID: [String: InstanceResult] = [:]
    for result in report.results {
        #expect(byID[result.instanceID] == nil, "two results for \(result.instanceID)")
        byID[result.instanceID] = result
    }
    return byID
}

/// Whether an outcome matches what the simulator says happened (as the
/// benchmark judges it, written out independently).
func agreesWithTruth(_ result: InstanceResult, _ truth: SimEngine.InstanceTruth?, before: SimEngine.InstanceTruth?,
                     action: FleetAction) -> Bool {
    guard let truth, let before else { return false }
    switch result.outcome {
    case .hibernated: return truth.state == .stopped && truth.stateReasonCode == "Client.UserInitiatedHibernate"
    case .stopped: return truth.state == .stopped && truth.stateReasonCode == "Client.UserInitiatedShutdown"
    case .started: return truth.state == .running
    case .noActionNeeded:
        return action == .start ? [.running, .pending].contains(truth.state) : [.stopped, .stopping].contains(truth.state)
    case .skipped: return truth.state == before.state
    case .failed: return action == .start ? truth.state != .running : truth.state != .stopped
    case .accepted: return action == .start ? [.pending, .running].contains(truth.state) : [.stopping, .stopped].contains(truth.state)
    }
}
