public import TorporSigV4

/// A source of AWS credentials.
public protocol CredentialProvider: Sendable {
    /// A short name for error messages: "environment", "shared files (profile dev)".
    var sourceDescription: String { get }
    /// The credentials, or `CredentialError.notFound` when this source has
    /// none (so that a chain moves on), or another error when it has some
    /// but they cannot be used.
    func credentials() async throws(CredentialError) -> AWSCredentials
}

public struct CredentialError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// This source holds no credentials; the chain tries the next.
        case notFound
        /// This source holds credentials that cannot be used (a malformed
        /// file, a half-set environment, an expired or broken answer).
        case unusable
        /// No source in a chain had credentials.
        case noneFound
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// A fixed pair of keys.
public struct StaticCredentialProvider: CredentialProvider {
    public let value: AWSCredentials
    public let sourceDescription: String

    public init(_ value: AWSCredentials, sourceDescription: String = "static credentials") {
        self.value = value
        self.sourceDescription = sourceDescription
    }

    public func credentials() async throws(CredentialError) -> AWSCredentials { value }
}

/// Tries each provider in order and returns the first credentials found, as
/// the AWS CLI does. A source that has credentials but cannot use them stops
/// the chain with its error: silently falling through to another identity
/// would act on the wrong account.
public struct CredentialProviderChain: CredentialProvider {
    public let providers: [any CredentialProvider]

    public init(_ providers: [any CredentialProvider]) {
        self.providers = providers
    }

    public var sourceDescription: String { providers.map(\.sourceDescription).joined(separator: ", ") }

    public func credentials() async throws(CredentialError) -> AWSCredentials {
        var tried: [String] = []
        for provider in providers {
            do {
                return try await provider.credentials()
            } catch where error.kind == .notFound {
                tried.append("\(provider.sourceDescription): \(error.message)")
            }
        }
        throw CredentialError(.noneFound, "no AWS credentials found; tried " + tried.joined(separator: "; "))
    }
}
