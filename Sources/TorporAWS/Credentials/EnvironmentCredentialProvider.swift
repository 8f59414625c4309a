public import TorporSigV4

/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
public struct EnvironmentCredentialProvider: CredentialProvider {
    public let environment: [String: String]

    public init(environment: [String: String]) {
        self.environment = environment
    }

    public var sourceDescription: String { "environment" }

    public func credentials() async throws(CredentialError) -> AWSCredentials {
        let key = environment["AWS_ACCESS_KEY_ID"].flatMap { $0.isEmpty ? nil : $0 }
        let secret = environment["AWS_SECRET_ACCESS_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        switch (key, secret) {
        case (nil, nil):
            throw CredentialError(.notFound, "AWS_ACCESS_KEY_ID is not set")
        case (.some, nil):
            throw CredentialError(.unusable, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
        case (nil, .some):
            throw CredentialError(.unusable, "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not")
        case let (key?, secret?):
            return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"])
        }
    }
}
