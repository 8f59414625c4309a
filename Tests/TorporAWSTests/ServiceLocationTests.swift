import Testing
import TorporSigV4
@testable import TorporAWS

@Suite("ServiceLocation")
struct ServiceLocationTests {
    static let files = SharedConfigFiles(
        credentialsPath: "/home/u/.aws/credentials", configPath: "/home/u/.aws/config",
        credentialsSections: [:],
        configSections: [
            "dev": ["region": "eu-west-3", "endpoint_url": "http://127.0.0.1:4566"],
            "default": ["region": "us-west-2"],
            "bare": [:],
        ])
    static let empty = SharedConfigFiles(credentialsPath: "c", configPath: "/cfg", credentialsSections: [:], configSections: [:])

    static func resolve(region: String? = nil, endpoint: String? = nil, profile: String = "dev",
                        environment: [String: String] = [:], files: SharedConfigFiles = files) throws(AWSConfigurationError) -> ServiceLocation {
        try ServiceLocation.resolve(serviceEnvironmentName: "EC2", endpointPrefix: "ec2", region: region, endpointURL: endpoint,
                                    profile: profile, environment: environment, files: files)
    }

    // MARK: Region

    @Test("--region outranks AWS_REGION, which outranks AWS_DEFAULT_REGION, which outranks the profile")
    func regionPrecedence() throws {
        let environment = ["AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "sa-east-1"]
        #expect(try Self.resolve(region: "us-east-2", environment: environment).region == "us-east-2")
        #expect(try Self.resolve(environment: environment).region == "ap-south-1")
        #expect(try Self.resolve(environment: ["AWS_DEFAULT_REGION": "sa-east-1"]).region == "sa-east-1")
        #expect(try Self.resolve().region == "eu-west-3")
        #expect(try Self.resolve(profile: "default").region == "us-west-2")
    }

    @Test("empty values are skipped")
    func emptyRegionsSkipped() throws {
        let location = try Self.resolve(region: "", environment: ["AWS_REGION": "", "AWS_DEFAULT_REGION": "ca-central-1"])
        #expect(location.region == "ca-central-1")
    }

    @Test("no region anywhere is an error that mentions --region and the config file")
    func noRegion() {
        let error = #expect(throws: AWSConfigurationError.self) { try Self.resolve(profile: "bare") }
        #expect(error?.description.contains("--region") == true)
        #expect(error?.description.contains("AWS_REGION") == true)
        #expect(error?.description.contains("/home/u/.aws/config") == true)
        #expect(throws: AWSConfigurationError.self) { try Self.resolve(profile: "nope", files: Self.empty) }
    }

    @Test("invalid regions are rejected with their source", arguments: [
        ("US-EAST-1", "--region"), ("us east 1", "--region"), ("-us-east-1", "--region"), ("us-east-1-", "--region"),
        ("us_east_1", "--region"), ("us-east-1/../x", "--region"), ("ü-1", "--region"),
    ])
    func invalidRegion(region: String, source: String) {
        let error = #expect(throws: AWSConfigurationError.self) { try Self.resolve(region: region) }
        #expect(error?.description.contains("invalid region '\(region)'") == true)
        #expect(error?.description.contains(source) == true)
    }

    @Test("an invalid region from the environment names the variable")
    func invalidRegionFromEnvironment() {
        let error = #expect(throws: AWSConfigurationError.self) { try Self.resolve(environment: ["AWS_DEFAULT_REGION": "Bad Region"]) }
        #expect(error?.description.contains("AWS_DEFAULT_REGION") == true)
    }

    // MARK: Endpoint

    @Test("--endpoint-url > AWS_ENDPOINT_URL_EC2 > AWS_ENDPOINT_URL > the profile's endpoint_url")
    func endpointPrecedence() throws {
        let environment = ["AWS_ENDPOINT_URL_EC2": "http://127.0.0.1:1001", "AWS_ENDPOINT_URL": "http://127.0.0.1:1002"]
        let explicit = try Self.resolve(endpoint: "https://vpce.example:8443/base", environment: environment)
        #expect(explicit.endpoint.description == "https://vpce.example:8443/base")
        #expect(explicit.endpointSource == "--endpoint-url")

        let service = try Self.resolve(environment: environment)
        #expect(service.endpoint == RequestURL(scheme: "http", host: "127.0.0.1", port: 1001))
        #expect(service.endpointSource == "AWS_ENDPOINT_URL_EC2")

        let global = try Self.resolve(environment: ["AWS_ENDPOINT_URL": "http://127.0.0.1:1002"])
        #expect(global.endpoint.port == 1002)
        #expect(global.endpointSource == "AWS_ENDPOINT_URL")

        let profile = try Self.resolve()
        #expect(profile.endpoint.port == 4566)
        #expect(profile.endpointSource == "endpoint_url in profile 'dev'")
    }

    @Test("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ignores the environment and the profile, not --endpoint-url")
    func ignoreConfiguredEndpoints() throws {
        let environment = ["AWS_ENDPOINT_URL_EC2": "http://127.0.0.1:1001", "AWS_ENDPOINT_URL": "http://127.0.0.1:1002",
                           "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "True"]
        let location = try Self.resolve(environment: environment)
        #expect(location.endpoint.description == "https://ec2.eu-west-3.amazonaws.com/")
        #expect(location.endpointSource == "default for eu-west-3")
        #expect(try Self.resolve(endpoint: "http://127.0.0.1:9", environment: environment).endpoint.port == 9)
        // Anything but true leaves them in force.
        let notIgnored = try Self.resolve(environment: environment.merging(["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "false"]) { _, b in b })
        #expect(notIgnored.endpoint.port == 1001)
    }

    @Test("the default endpoint", arguments: [
        ("us-east-1", "https://ec2.us-east-1.amazonaws.com/"),
        ("eu-central-2", "https://ec2.eu-central-2.amazonaws.com/"),
        ("cn-north-1", "https://ec2.cn-north-1.amazonaws.com.cn/"),
        ("cn-northwest-1", "https://ec2.cn-northwest-1.amazonaws.com.cn/"),
    ])
    func defaultEndpoint(region: String, expected: String) throws {
        let location = try Self.resolve(region: region, profile: "none", files: Self.empty)
        #expect(location.endpoint.description == expected)
        #expect(location.endpoint.hostHeader == String(expected.dropFirst("https://".count).dropLast()))
        #expect(location.endpointSource == "default for \(region)")
    }

    @Test("an invalid endpoint URL names where it came from", arguments: [
        ("--endpoint-url", "ftp://127.0.0.1/"), ("AWS_ENDPOINT_URL_EC2", "localhost:4566"), ("AWS_ENDPOINT_URL", "http://h:99999"),
    ])
    func invalidEndpoint(source: String, url: String) {
        let error = #expect(throws: AWSConfigurationError.self) {
            if source == "--endpoint-url" {
                try Self.resolve(endpoint: url)
            } else {
                try Self.resolve(environment: [source: url])
            }
        }
        #expect(error?.description.hasPrefix(source + ": ") == true, "\(error?.description ?? "")")
    }
}
