import Foundation
public import TorporSigV4

/// The role credentials of the EC2 instance this runs on, through IMDSv2:
/// a session token from `PUT /latest/api/token`, then the role name and its
/// credentials under `/latest/meta-data/iam/security-credentials/`.
///
/// Wrap it in `RefreshingCredentialProvider` so that the credentials are
/// fetched once and renewed before they expire.
public struct InstanceMetadataCredentialProvider: CredentialProvider {
    public static let defaultEndpoint = "http://169.254.169.254"

    public let endpoint: String
    public let transport: any HTTPTransport
    /// IMDS answers in milliseconds on an instance; off one, this bounds how
    /// long the chain waits before reporting that it found nothing.
    public let timeout: Duration

    public init(endpoint: String = Self.defaultEndpoint, transport: any HTTPTransport, timeout: Duration = .seconds(1)) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.transport = transport
        self.timeout = timeout
    }

    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT` honoured; nil when
    /// `AWS_EC2_METADATA_DISABLED` is true.
    public init?(environment: [String: String], transport: any HTTPTransport) {
        if environment["AWS_EC2_METADATA_DISABLED"]?.lowercased() == "true" { return nil }
        self.init(endpoint: environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"] ?? Self.defaultEndpoint, transport: transport)
    }

    public var sourceDescription: String { "instance metadata (\(endpoint))" }

    public func credentials() async throws(CredentialError) -> AWSCredentials {
        let token = try await fetch("PUT", "/latest/api/token", headers: ["X-aws-ec2-metadata-token-ttl-seconds": "21600"],
                                    absentIsNotFound: true)
        let tokenHeader: HTTPHeaders = ["X-aws-ec2-metadata-token": token]
        let roles = try await fetch("GET", "/latest/meta-data/iam/security-credentials/", headers: tokenHeader,
                                    absentIsNotFound: true)
        guard let role = roles.split(whereSeparator: \.isNewline).first.map(String.init), !role.isEmpty else {
            throw CredentialError(.notFound, "this instance has no IAM role")
        }
        let document = try await fetch("GET", "/latest/meta-data/iam/security-credentials/\(role)", headers: tokenHeader,
                                       absentIsNotFound: false)
        return try Self.decode(document, role: role)
    }

    /// The JSON document IMDS serves for a role.
    static func decode(_ document: String, role: String) throws(CredentialError) -> AWSCredentials {
        guard let object = try? JSONSerialization.jsonObject(with: Data(document.utf8)) as? [String: Any] else {
            throw CredentialError(.unusable, "instance metadata credentials for role '\(role)' are not a JSON object")
        }
        if let code = object["Code"] as? String, code != "Success" {
            throw CredentialError(.unusable, "instance metadata credentials for role '\(role)': \(code)")
        }
        guard let key = object["AccessKeyId"] as? String, let secret = object["SecretAccessKey"] as? String else {
            throw CredentialError(.unusable, "instance metadata credentials for role '\(role)' lack AccessKeyId or SecretAccessKey")
        }
        var expiration: Int64?
        if let text = object["Expiration"] as? String {
            guard let seconds = ISO8601.parse(text) else {
                throw CredentialError(.unusable, "instance metadata credentials for role '\(role)' have an unreadable Expiration '\(text)'")
            }
            expiration = seconds
        }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: object["Token"] as? String,
                              expiration: expiration)
    }

    private func fetch(_ method: String, _ path: String, headers: HTTPHeaders, absentIsNotFound: Bool) async throws(CredentialError) -> String {
        let url: RequestURL
        do { url = try RequestURL(parsing: endpoint + path) } catch {
            throw CredentialError(.unusable, "AWS_EC2_METADATA_SERVICE_ENDPOINT: \(error)")
        }
        let response: HTTPResponse
        do {
            response = try await transport.send(HTTPRequest(method: method, url: url, headers: headers, timeout: timeout))
        } catch let error as TransportError {
            throw CredentialError(.notFound, "no answer from \(endpoint): \(error.message)")
        } catch {
            throw CredentialError(.notFound, "no answer from \(endpoint): \(error)")
        }
        switch response.status {
        case 200: return response.bodyText
        case 404 where absentIsNotFound: throw CredentialError(.notFound, "\(path) is not served (no IAM role)")
        default:
            throw CredentialError(.unusable, "\(method) \(endpoint)\(path) answered HTTP \(response.status)")
        }
    }
}

/// Keeps credentials from a provider and fetches new ones shortly before they
/// expire. Callers that ask during a refresh all wait for that one refresh
/// instead of starting their own.
public actor RefreshingCredentialProvider: CredentialProvider {
    public nonisolated let base: any CredentialProvider
    /// How long before expiry the credentials are renewed.
    public nonisolated let refreshMargin: Int64
    private let now: @Sendable () -> Int64
    private var cached: AWSCredentials?
    private var inFlight: Task<AWSCredentials, any Error>?

    public init(base: any CredentialProvider, refreshMargin: Int64 = 300,
                now: @escaping @Sendable () -> Int64 = RefreshingCredentialProvider.systemNow) {
        self.base = base
        self.refreshMargin = refreshMargin
        self.now = now
    }

    public nonisolated var sourceDescription: String { base.sourceDescription }

    public static let systemNow: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }

    public func credentials() async throws(CredentialError) -> AWSCredentials {
        if let cached, !needsRefresh(cached) { return cached }
        let task: Task<AWSCredentials, any Error>
        if let inFlight {
            task = inFlight
        } else {
            let base = self.base
            task = Task { try await base.credentials() }
            inFlight = task
        }
        do {
            let fresh = try await task.value
            if inFlight == task { inFlight = nil }
            cached = fresh
            return fresh
        } catch {
            if inFlight == task { inFlight = nil }
            if let error = error as? CredentialError { throw error }
            throw CredentialError(.unusable, "\(base.sourceDescription): \(error)")
        }
    }

    private func needsRefresh(_ credentials: AWSCredentials) -> Bool {
        guard let expiration = credentials.expiration else { return false }
        return now() >= expiration - refreshMargin
    }
}
