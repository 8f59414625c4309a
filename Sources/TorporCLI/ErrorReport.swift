import TorporAWS
import TorporEC2
import TorporQueue
import TorporSim
import TorporYAML

/// One line for an error, and the exit status it deserves: configuration
/// and credential problems are 2 (nothing was attempted), anything that
/// happened while working is 1.
enum ErrorReport {
    /// Codes that mean the credentials or their permissions are wrong.
    static let credentialCodes: Set<String> = [
        "AuthFailure", "UnauthorizedOperation", "SignatureDoesNotMatch", "InvalidClientTokenId",
        "InvalidAccessKeyId", "MissingAuthenticationToken", "OptInRequired",
    ]

    static func describe(_ error: any Error) -> (String, Int32) {
        switch error {
        case let error as CredentialError:
            return (error.message, ExitStatus.usage)
        case let error as AWSConfigurationError:
            return (error.description, ExitStatus.usage)
        case let error as SharedConfigFiles.ParseError:
            return (error.description, ExitStatus.usage)
        case let error as YAMLFileError:
            return (error.description, ExitStatus.usage)
        case let error as QueueError:
            return (error.message, error.kind == .notFound || error.kind == .conflict ? ExitStatus.usage : ExitStatus.failed)
        case let error as AWSServiceError:
            let hint = credentialCodes.contains(error.code) ? " (check the credentials and their IAM permissions)" : ""
            return ("EC2 error \(error)\(hint)", credentialCodes.contains(error.code) ? ExitStatus.usage : ExitStatus.failed)
        case let error as TransportError:
            return (error.description, ExitStatus.failed)
        case let error as AWSResponseError:
            return (error.description, ExitStatus.failed)
        case is CancellationError:
            return ("interrupted", ExitStatus.failed)
        default:
            return ("\(error)", ExitStatus.failed)
        }
    }
}
