import Foundation
import Logging
import TorporAWS
import TorporEC2

/// Builds the EC2 client from the command line's options and the
/// environment, and sets up logging.
enum ClientFactory {
    static let bootstrapLogging: Void = {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .trace
            return handler
        }
    }()

    static func logger(_ level: Logger.Level) -> Logger {
        _ = bootstrapLogging
        var logger = Logger(label: "torpor")
        logger.logLevel = level
        return logger
    }

    /// - Parameter retryThrottling: off for the fleet engine, which paces
    ///   itself and must see every throttle.
    static func ec2(_ options: ConnectionOptions, retryThrottling: Bool = true,
                    observer: (@Sendable (AWSCallEvent) -> Void)? = nil,
                    environment: [String: String] = ProcessInfo.processInfo.environment) throws -> EC2Client {
        let logger = logger(options.logLevel.level)
        let files = try SharedConfigFiles.load(environment: environment)
        let profile = options.profile ?? environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        if options.profile != nil, files.profile(profile) == nil {
            throw CredentialError(.unusable, "profile '\(profile)' is not in \(files.credentialsPath) or \(files.configPath)")
        }
        let location = try ServiceLocation.resolve(
            serviceEnvironmentName: "EC2", endpointPrefix: "ec2", region: options.region, endpointURL: options.endpointURL,
            profile: profile, environment: environment, files: files)
        logger.debug("endpoint", metadata: ["url": "\(location.endpoint)", "source": "\(location.endpointSource)", "region": "\(location.region)"])
        let transport = CurlTransport()
        let credentials = DefaultCredentialChain.make(profile: options.profile, environment: environment, files: files, transport: transport)
        let aws = AWSQueryClient(service: "ec2", apiVersion: EC2Client.apiVersion, location: location, credentials: credentials,
                                 transport: transport, retryPolicy: RetryPolicy(retryThrottling: retryThrottling), logger: logger,
                                 observer: observer)
        return EC2Client(aws: aws)
    }
}
