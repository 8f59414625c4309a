public import TorporSigV4

/// Static keys of a named profile in the shared files.
public struct ProfileCredentialProvider: CredentialProvider {
    public let profile: String
    public let files: SharedConfigFiles
    /// True when the profile was asked for explicitly (`--profile`,
    /// `AWS_PROFILE`): then a missing profile is an error, not a reason to
    /// try the next source.
    public let explicit: Bool

    public init(profile: String, files: SharedConfigFiles, explicit: Bool) {
        self.profile = profile
        self.files = files
        self.explicit = explicit
    }

    public var sourceDescription: String { "shared files (profile \(profile))" }

    public func credentials() async throws(CredentialError) -> AWSCredentials {
        guard let settings = files.profile(profile) else {
            let message = "profile '\(profile)' is not in \(files.credentialsPath) or \(files.configPath)"
            throw CredentialError(explicit ? .unusable : .notFound, message)
        }
        let key = settings["aws_access_key_id"].flatMap { $0.isEmpty ? nil : $0 }
        let secret = settings["aws_secret_access_key"].flatMap { $0.isEmpty ? nil : $0 }
        switch (key, secret) {
        case let (key?, secret?):
            return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: settings["aws_session_token"])
        case (.some, nil):
            throw CredentialError(.unusable, "profile '\(profile)' has aws_access_key_id but no aws_secret_access_key")
        case (nil, .some):
            throw CredentialError(.unusable, "profile '\(profile)' has aws_secret_access_key but no aws_access_key_id")
        case (nil, nil):
            let unsupported = ["role_arn", "sso_session", "sso_start_url", "credential_process", "web_identity_token_file"]
                .filter { settings[$0] != nil }
            if let first = unsupported.first {
                throw CredentialError(.unusable, "profile '\(profile)' uses \(first), which Torpor does not support; "
                                      + "export keys with `aws configure export-credentials --profile \(profile) --format env`")
            }
            throw CredentialError(explicit ? .unusable : .notFound, "profile '\(profile)' has no aws_access_key_id")
        }
    }
}
