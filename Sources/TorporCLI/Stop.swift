public import ArgumentParser
import TorporFleet

struct Stop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop instances, with hibernation if asked, and wait until they are stopped.",
        discussion: """
        Plans first, then acts: protected instances (--protect-tag), instances in an Auto \
        Scaling group, one-time spot instances and instance-store roots are never stopped; \
        with --hibernate, instances not configured for hibernation follow --fallback. The plan \
        is refused past the blast-radius limits unless --override-blast-radius. Calls are paced \
        to EC2's rate limits; a failing instance never fails the others; every instance ends \
        with one outcome: hibernated, stopped, no-action-needed, skipped or failed.

        Refuses to run without a selector. Without --yes it shows the plan and asks on a \
        terminal, and refuses when there is no terminal to ask on. Examples:
          torpor stop --tag Env=dev --hibernate --plan
          torpor stop --tag Env=dev --hibernate --yes
          torpor stop --id i-0123456789abcdef0 --dry-run
        """
    )

    @OptionGroup var selectors: SelectorOptions
    @Flag(help: "Hibernate: keep memory on the EBS root volume so the next start resumes in seconds.")
    var hibernate = false
    @Option(help: "With --hibernate, for instances not configured for it: stop (a plain stop), skip, or fail.")
    var fallback: HibernationFallback = .stop
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
        try await FleetCommandRun(
            action: hibernate ? .hibernate : .stop, selector: selectors.fleetSelector, connection: connection,
            mutation: mutation, rules: mutation.rules(fallback: fallback, force: force)
        ).run()
    }
}

extension HibernationFallback: ExpressibleByArgument {}
