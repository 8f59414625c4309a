/// The AWS CLI's order: environment, shared files, instance metadata.
public enum DefaultCredentialChain {
    /// - Parameters:
    ///   - profile: `--profile`; else `AWS_PROFILE`; else `default`.
    public static func make(profile: String?, environment: [String: String], files: SharedConfigFiles,
                            transport: any HTTPTransport) -> any CredentialProvider {
        let explicitProfile = profile ?? environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 }
        var providers: [any CredentialProvider] = []
        // An explicit --profile outranks the environment's keys, as in the
        // AWS CLI.
        if profile == nil {
            providers.append(EnvironmentCredentialProvider(environment: environment))
        }
        providers.append(ProfileCredentialProvider(
            profile: explicitProfile ?? "default", files: files, explicit: explicitProfile != nil))
        if explicitProfile == nil, let imds = InstanceMetadataCredentialProvider(environment: environment, transport: transport) {
            providers.append(imds)
        }
        return RefreshingCredentialProvider(base: CredentialProviderChain(providers))
    }
}
