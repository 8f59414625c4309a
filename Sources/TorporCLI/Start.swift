import ArgumentParser
import TorporEC2

struct Start: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start stopped (or hibernated) instances.",
        discussion: """
        Refuses to run without a selector. Without --yes it shows the instances and asks on a \
        terminal. Instances already running or pending need no action. Examples:
          torpor start --tag Env=dev --yes
          torpor start --id i-0123456789abcdef0 --dry-run --output json
        """
    )

    @OptionGroup var selectors: SelectorOptions
    @OptionGroup var mutation: MutationOptions
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        if selectors.isEmpty {
            throw ValidationError("start needs a selector (--id, --tag, --filter or --state)")
        }
    }

    func run() async throws {
        try await StateChangeRun(
            action: .start, selectors: selectors, connection: connection,
            options: BatchStateChange.Options(dryRun: mutation.dryRun), assumeYes: mutation.yes, output: mutation.output
        ).run()
    }
}
