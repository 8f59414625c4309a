import ArgumentParser
import TorporFleet

struct Start: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start stopped (or hibernated) instances and wait until they are running.",
        discussion: """
        Plans first, then acts: protected instances are never touched; instances already \
        running or pending need no action. Calls are paced to EC2's StartInstances limits; an \
        instance that EC2 accepted but that went back to stopped (a missing KMS grant does \
        this) is reported as failed with what was seen.

        Then follows every resume phase by phase (running, status checks, the readiness probe \
        of the instance's resume policy in --config) until each is ready or past its deadline, \
        prints the resume times, and keeps them in the queue's database for `torpor report \
        resume`. With --no-track, or on Ctrl-C while following, the resumes in flight are left \
        to `torpor worker`, which picks them up.

        Refuses to run without a selector. Without --yes it shows the plan and asks on a \
        terminal. Examples:
          torpor start --tag Env=dev --yes
          torpor start --id i-0123456789abcdef0 --dry-run --output json
        """
    )

    @OptionGroup var selectors: SelectorOptions
    @OptionGroup var mutation: MutationOptions
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var location: QueueLocation
    @Flag(name: .customLong("no-track"), help: "Do not follow the resumes after running; leave them to `torpor worker`.")
    var noTrack = false

    func validate() throws {
        if selectors.isEmpty {
            throw ValidationError("start needs a selector (--id, --tag, --filter or --state)")
        }
    }

    func run() async throws {
        try await FleetCommandRun(
            action: .start, selector: selectors.fleetSelector, connection: connection,
            mutation: mutation, rules: mutation.rules(), tracking: .init(location: location, follow: !noTrack)
        ).run()
    }
}
