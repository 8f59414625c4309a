import ArgumentParser
import TorporAWS
import TorporEC2
import TorporFleet

struct Describe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List instances with their state, type, zone and hibernation settings.",
        discussion: """
        Without selectors, lists every instance in the region. Examples:
          torpor describe --tag Env=dev
          torpor describe --state stopped --output json
          torpor describe --filter instance-type=m5.large,m5.xlarge
        """
    )

    @OptionGroup var selectors: SelectorOptions
    @Option(help: "table or json.") var output: OutputFormat = .table
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let ec2 = try ClientFactory.ec2(connection)
        let selection = try await FleetSelection.resolve(ec2, selectors.fleetSelector)
        switch output {
        case .json:
            var document: [String: Any] = ["instances": selection.instances.map(JSONOutput.instance), "count": selection.instances.count]
            if !selection.missing.isEmpty {
                document["notFound"] = selection.missing.map { ["instanceId": $0.instanceID, "errorCode": $0.code, "errorMessage": $0.message] }
            }
            print(JSONOutput.render(document))
        case .table:
            var table = Table(["INSTANCE", "NAME", "TYPE", "STATE", "ZONE", "PRIVATE IP", "HIBERNATION", "LIFECYCLE"])
            for instance in selection.instances {
                table.add([
                    instance.instanceID, instance.name ?? "-", instance.instanceType, instance.state.name,
                    instance.availabilityZone ?? "-", instance.privateIPAddress ?? "-",
                    instance.hibernationConfigured ? "configured" : "no", instance.instanceLifecycle ?? "on-demand",
                ])
            }
            for missing in selection.missing {
                table.add([missing.instanceID, "-", "-", "not found", "-", "-", "-", "-"])
            }
            print(table.render())
            print("\(selection.instances.count) instance(s)")
        }
        if !selection.missing.isEmpty {
            throw CommandFailure.failed("\(selection.missing.count) instance id(s) not found: \(selection.missing.map(\.instanceID).joined(separator: ", "))")
        }
    }
}
