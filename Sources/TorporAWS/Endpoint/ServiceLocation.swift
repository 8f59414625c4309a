public import TorporSigV4

/// Where requests for one service go: the region and the endpoint URL,
/// resolved by the AWS CLI's rules.
public struct ServiceLocation: Sendable, Equatable {
    public let region: String
    public let endpoint: RequestURL
    /// Where the endpoint came from, for `--log-level debug` and errors.
    public let endpointSource: String

    public init(region: String, endpoint: RequestURL, endpointSource: String) {
        self.region = region
        self.endpoint = endpoint
        self.endpointSource = endpointSource
    }

    /// - Parameters:
    ///   - serviceEnvironmentName: the service's suffix in
    ///     `AWS_ENDPOINT_URL_<NAME>` (`EC2`).
    ///   - endpointPrefix: the host prefix of the default endpoint (`ec2`).
    ///   - region: `--region`, which outranks everything.
    ///   - endpointURL: `--endpoint-url`, which outranks everything.
    ///   - profile: the profile whose settings apply (`--profile`, else
    ///     `AWS_PROFILE`, else `default`).
    public static func resolve(serviceEnvironmentName: String, endpointPrefix: String,
                               region explicitRegion: String?, endpointURL explicitEndpoint: String?,
                               profile: String, environment: [String: String],
                               files: SharedConfigFiles) throws(AWSConfigurationError) -> ServiceLocation {
        let settings = files.profile(profile) ?? [:]
        func nonEmpty(_ value: String?) -> String? { value.flatMap { $0.isEmpty ? nil : $0 } }

        let regionCandidates: [(String?, String)] = [
            (explicitRegion, "--region"),
            (environment["AWS_REGION"], "AWS_REGION"),
            (environment["AWS_DEFAULT_REGION"], "AWS_DEFAULT_REGION"),
            (settings["region"], "region in profile '\(profile)' of \(files.configPath)"),
        ]
        guard let (region, regionSource) = regionCandidates.lazy.compactMap({ value, source in nonEmpty(value).map { ($0, source) } }).first else {
            throw AWSConfigurationError(
                "no AWS region: pass --region, set AWS_REGION or AWS_DEFAULT_REGION, or set region in profile '\(profile)' of \(files.configPath)")
        }
        guard region.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }),
              !region.hasPrefix("-"), !region.hasSuffix("-")
        else {
            throw AWSConfigurationError("invalid region '\(region)' (from \(regionSource)): expected a name like us-east-1")
        }

        let ignoreConfigured = environment["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"]?.lowercased() == "true"
        var endpointCandidates: [(String?, String)] = [(explicitEndpoint, "--endpoint-url")]
        if !ignoreConfigured {
            endpointCandidates += [
                (environment["AWS_ENDPOINT_URL_\(serviceEnvironmentName)"], "AWS_ENDPOINT_URL_\(serviceEnvironmentName)"),
                (environment["AWS_ENDPOINT_URL"], "AWS_ENDPOINT_URL"),
                (settings["endpoint_url"], "endpoint_url in profile '\(profile)'"),
            ]
        }
        if let (text, source) = endpointCandidates.lazy.compactMap({ value, source in nonEmpty(value).map { ($0, source) } }).first {
            do {
                let url = try RequestURL(parsing: text)
                return ServiceLocation(region: region, endpoint: url, endpointSource: source)
            } catch {
                throw AWSConfigurationError("\(source): \(error)")
            }
        }
        let suffix = region.hasPrefix("cn-") ? "amazonaws.com.cn" : "amazonaws.com"
        let url = RequestURL(scheme: "https", host: "\(endpointPrefix).\(region).\(suffix)")
        return ServiceLocation(region: region, endpoint: url, endpointSource: "default for \(region)")
    }
}
