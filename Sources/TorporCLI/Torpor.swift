public import ArgumentParser
import Foundation

/// The `torpor` command: a thin shell over the EC2 client.
public struct Torpor: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "torpor",
        abstract: "Put EC2 fleets to sleep with hibernation and wake them fast.",
        discussion: """
        Credentials, region and endpoint follow the AWS CLI's conventions: AWS_ACCESS_KEY_ID, \
        AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN; ~/.aws/credentials and ~/.aws/config with \
        AWS_PROFILE or --profile; then the instance's role through IMDSv2. Region from --region, \
        AWS_REGION, AWS_DEFAULT_REGION or the profile; endpoint from --endpoint-url, \
        AWS_ENDPOINT_URL_EC2, AWS_ENDPOINT_URL, else https://ec2.REGION.amazonaws.com.

        Exit status: 0 when everything succeeded, 1 when some instance or call failed, \
        2 for bad usage or configuration.
        """,
        version: TorporVersion.current,
        subcommands: [Demo.self, Describe.self, Stop.self, Start.self, Enqueue.self, Jobs.self, WorkerCommand.self, ReportCommand.self, ConfigCommand.self, Sign.self, Sim.self]
    )

    public init() {}
}

public enum TorporVersion {
    public static let current = "0.1.0"
}

/// A failure the command has already explained, with the exit status to use.
struct CommandFailure: Error, CustomStringConvertible {
    let message: String
    let exitCode: Int32
    var description: String { message }

    static func usage(_ message: String) -> CommandFailure { CommandFailure(message: message, exitCode: ExitStatus.usage) }
    static func failed(_ message: String) -> CommandFailure { CommandFailure(message: message, exitCode: ExitStatus.failed) }
}

enum ExitStatus {
    static let success: Int32 = 0
    static let failed: Int32 = 1
    static let usage: Int32 = 2
}

/// The process entry point: parses, runs, and maps every error to the
/// documented exit status (ArgumentParser's own usage status is 64; ours is 2).
public enum TorporMain {
    public static func run(arguments: [String] = Array(CommandLine.arguments.dropFirst())) async -> Int32 {
        let command: any ParsableCommand
        do {
            command = try Torpor.parseAsRoot(arguments)
        } catch {
            return report(parseError: error)
        }
        do {
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                var command = command
                try command.run()
            }
            return ExitStatus.success
        } catch let failure as CommandFailure {
            if !failure.message.isEmpty { printError("torpor: \(failure.message)") }
            return failure.exitCode
        } catch let exit as ExitCode {
            return exit.rawValue
        } catch {
            // ArgumentParser may still raise its own errors (a help request,
            // a validation failure) from here.
            switch Torpor.exitCode(for: error) {
            case .success:
                print(Torpor.fullMessage(for: error))
                return ExitStatus.success
            case .validationFailure:
                printError(Torpor.fullMessage(for: error))
                return ExitStatus.usage
            default:
                let (message, code) = ErrorReport.describe(error)
                printError("torpor: \(message)")
                return code
            }
        }
    }

    private static func report(parseError error: any Error) -> Int32 {
        let code = Torpor.exitCode(for: error)
        let message = Torpor.fullMessage(for: error)
        if code == .success {
            print(message)
            return ExitStatus.success
        }
        printError(message)
        return ExitStatus.usage
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
