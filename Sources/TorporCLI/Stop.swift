import ArgumentParser
import TorporEC2

struct Stop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop instances, with hibernation if asked.",
        discussion: """
        Refuses to run without a selector. Without --yes it shows the instances and asks on a \
        terminal, and refuses when there is no terminal to ask on. Instances already stopped or \
        stopping need no action; terminated ones are skipped. Examples:
          torpor stop --tag Env=dev --hibernate --yes
          torpor stop --id i-0123456789abcdef0 --dry-run
        """
    )

    @OptionGroup var selectors: SelectorOptions
    @Flag(help: "Hibernate: keep memory on the EBS root volume so the next start resumes in seconds.")
    var hibernate = false
    @Flag(help: "Force the stop (no clean shutdown; the instance's file caches are lost).")
    var force = false
    @OptionGroup var mutation: MutationOptions
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if selectors.isEmpty {
            throw ValidationError("stop needs a selector (--id, --tag, --filter or --state); to act on everything, say so with a filter")
        }
        if hibernate && force {
            throw ValidationError("--hibernate and --force cannot be combined: EC2 does not force a hibernation")
        }
    }

    func run() async throws {
        try await StateChangeRun(
            action: .stop, selectors: selectors, connection: connection,
            options: BatchStateChange.Options(hibernate: hibernate, force: force, dryRun: mutation.dryRun),
            assumeYes: mutation.yes, output: mutation.output
        ).run()
    }
}
