import Foundation
import Synchronization
import Testing
import TorporSigV4
@testable import TorporAWS

/// A provider that counts its calls and answers from a script.
final class CountingProvider: CredentialProvider {
    struct State {
        var calls = 0
        var answers: [Result<AWSCredentials, CredentialError>]
    }
    let state: Mutex<State>
    /// Callers that have started asking, counted by the test.
    let waitForCallers: Int
    let entered = Atomic<Int>(0)
    let sourceDescription = "counting"

    init(_ answers: [Result<AWSCredentials, CredentialError>], waitForCallers: Int = 0) {
        state = Mutex(State(answers: answers))
        self.waitForCallers = waitForCallers
    }

    var calls: Int { state.withLock { $0.calls } }

    func credentials() async throws(CredentialError) -> AWSCredentials {
        let answer = state.withLock { state in
            state.calls += 1
            return state.answers.count > 1 ? state.answers.removeFirst() : state.answers[0]
        }
        // Hold the answer until every caller has at least started asking,
        // then let them all reach the provider (no sleeping: yield only).
        while entered.load(ordering: .acquiring) < waitForCallers { await Task.yield() }
        for _ in 0..<200 { await Task.yield() }
        return try answer.get()
    }
}

func makeTempDirectory() throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("torpor-creds-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}

@Suite("Credentials")
struct CredentialsTests {
    // MARK: Environment

    @Test("environment: both keys set, with and without a session token")
    func environmentBoth() async throws {
        let plain = try await EnvironmentCredentialProvider(environment: [
            "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET",
        ]).credentials()
        #expect(plain == AWSCredentials(accessKeyID: "AKID", secretAccessKey: "SECRET"))
        #expect(plain.sessionToken == nil)

        let temporary = try await EnvironmentCredentialProvider(environment: [
            "AWS_ACCESS_KEY_ID": "ASIA", "AWS_SECRET_ACCESS_KEY": "SECRET", "AWS_SESSION_TOKEN": "TOKEN",
        ]).credentials()
        #expect(temporary.sessionToken == "TOKEN")

        let emptyToken = try await EnvironmentCredentialProvider(environment: [
            "AWS_ACCESS_KEY_ID": "ASIA", "AWS_SECRET_ACCESS_KEY": "SECRET", "AWS_SESSION_TOKEN": "",
        ]).credentials()
        #expect(emptyToken.sessionToken == nil)
    }

    @Test("environment: nothing set is notFound", arguments: [
        [String: String](), ["AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""], ["AWS_SESSION_TOKEN": "t"],
    ])
    func environmentNone(environment: [String: String]) async {
        let error = await #expect(throws: CredentialError.self) {
            try await EnvironmentCredentialProvider(environment: environment).credentials()
        }
        #expect(error?.kind == .notFound)
    }

    @Test("environment: half set is unusable and names the missing variable", arguments: [
        (["AWS_ACCESS_KEY_ID": "AKID"], "AWS_SECRET_ACCESS_KEY is not"),
        (["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": ""], "AWS_SECRET_ACCESS_KEY is not"),
        (["AWS_SECRET_ACCESS_KEY": "S"], "AWS_ACCESS_KEY_ID is not"),
    ])
    func environmentHalf(environment: [String: String], mention: String) async {
        let error = await #expect(throws: CredentialError.self) {
            try await EnvironmentCredentialProvider(environment: environment).credentials()
        }
        #expect(error?.kind == .unusable)
        #expect(error?.message.contains(mention) == true)
    }

    // MARK: Shared files

    @Test("parse: comments, sections, keys lower-cased, values with =")
    func parseBasics() throws {
        let text = """
            # a comment
            ; another comment
            [default]
            aws_access_key_id = AKID
            AWS_Secret_Access_Key=SECRET
              # an indented comment
            region = us-east-1
            token = abc==

            [profile dev]
            region=eu-west-1
            [  profile   spaced  ]
            region = ap-south-1
            """
        let config = try SharedConfigFiles.parse(text, path: "config", isConfig: true)
        #expect(config["default"] == ["aws_access_key_id": "AKID", "aws_secret_access_key": "SECRET", "region": "us-east-1", "token": "abc=="])
        #expect(config["dev"] == ["region": "eu-west-1"])
        #expect(config["spaced"] == ["region": "ap-south-1"])
        #expect(config["profile dev"] == nil)
    }

    @Test("parse: [profile x] names profile x in config, but 'profile x' in credentials")
    func profilePrefix() throws {
        let text = "[profile x]\nregion = r\n[x]\nregion = plain\n"
        let config = try SharedConfigFiles.parse(text, path: "config", isConfig: true)
        // In the config both headers name x; the later value wins.
        #expect(config["x"]?["region"] == "plain")
        let credentials = try SharedConfigFiles.parse(text, path: "credentials", isConfig: false)
        #expect(credentials["profile x"]?["region"] == "r")
        #expect(credentials["x"]?["region"] == "plain")
    }

    @Test("parse: CRLF line endings")
    func crlf() throws {
        let sections = try SharedConfigFiles.parse("[default]\r\naws_access_key_id = AKID\r\nregion = us-west-2\r\n", path: "c", isConfig: false)
        #expect(sections["default"] == ["aws_access_key_id": "AKID", "region": "us-west-2"])
        let error = #expect(throws: SharedConfigFiles.ParseError.self) {
            try SharedConfigFiles.parse("[default]\r\nok = 1\r\n\r\n= value\r\n", path: "/tmp/file", isConfig: true)
        }
        #expect(error?.line == 4)
        #expect(error?.reason.contains("empty key") == true)
    }

    @Test("parse: indented lines continue the previous setting")
    func nested() throws {
        let text = """
            [profile dev]
            s3 =
              max_concurrent_requests = 10
              addressing_style = path
            region = eu-west-1
            """
        let sections = try SharedConfigFiles.parse(text, path: "config", isConfig: true)
        #expect(sections["dev"]?["s3"] == "\nmax_concurrent_requests = 10\naddressing_style = path")
        #expect(sections["dev"]?["region"] == "eu-west-1")
        #expect(sections["dev"]?["max_concurrent_requests"] == nil)
    }

    @Test("parse errors carry the right line", arguments: [
        ("[default]\nregion = us-east-1\njunk line\n", 3, "expected 'key = value'"),
        ("# comment\n\nregion = us-east-1\n[default]\n", 3, "outside any [section]"),
        ("[default\nregion = x\n", 1, "no closing ']'"),
        ("[default]\nok = 1\n\n= value\n", 4, "empty key"),
        ("[default]\nok = 1\n[broken\n", 3, "no closing ']'"),
    ])
    func parseErrors(text: String, line: Int, reason: String) {
        let error = #expect(throws: SharedConfigFiles.ParseError.self) {
            try SharedConfigFiles.parse(text, path: "/tmp/file", isConfig: true)
        }
        #expect(error?.line == line)
        #expect(error?.reason.contains(reason) == true)
        #expect(error?.description.hasPrefix("/tmp/file:\(line): ") == true)
    }

    @Test("profile(): both files merge, the credentials file winning")
    func merging() {
        let files = SharedConfigFiles(
            credentialsPath: "c", configPath: "f",
            credentialsSections: ["dev": ["aws_access_key_id": "FROM-CREDENTIALS", "aws_secret_access_key": "S"]],
            configSections: ["dev": ["aws_access_key_id": "FROM-CONFIG", "region": "eu-west-1"], "other": ["region": "x"]])
        #expect(files.profile("dev") == ["aws_access_key_id": "FROM-CREDENTIALS", "aws_secret_access_key": "S", "region": "eu-west-1"])
        #expect(files.profile("other") == ["region": "x"])
        #expect(files.profile("missing") == nil)
    }

    @Test("load: reads both files from the environment's paths; missing files are empty; ~ expands")
    func load() throws {
        let directory = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try "[dev]\naws_access_key_id = AK\naws_secret_access_key = SK\n".write(to: directory.appendingPathComponent("credentials"), atomically: true, encoding: .utf8)
        try "[profile dev]\nregion = eu-north-1\n".write(to: directory.appendingPathComponent("config"), atomically: true, encoding: .utf8)
        let files = try SharedConfigFiles.load(environment: [
            "HOME": directory.path, "AWS_SHARED_CREDENTIALS_FILE": "~/credentials",
            "AWS_CONFIG_FILE": directory.appendingPathComponent("config").path,
        ])
        #expect(files.credentialsPath == directory.path + "/credentials")
        #expect(files.profile("dev") == ["aws_access_key_id": "AK", "aws_secret_access_key": "SK", "region": "eu-north-1"])

        let none = try SharedConfigFiles.load(environment: ["HOME": directory.appendingPathComponent("nowhere").path])
        #expect(none.credentialsSections.isEmpty && none.configSections.isEmpty)
        #expect(none.configPath == directory.appendingPathComponent("nowhere").path + "/.aws/config")

        try "[dev]\nbroken\n".write(to: directory.appendingPathComponent("credentials"), atomically: true, encoding: .utf8)
        let error = #expect(throws: SharedConfigFiles.ParseError.self) {
            try SharedConfigFiles.load(environment: ["HOME": directory.path, "AWS_SHARED_CREDENTIALS_FILE": "~/credentials"])
        }
        #expect(error?.path == directory.path + "/credentials")
        #expect(error?.line == 2)
    }

    // MARK: Profile provider

    static let files = SharedConfigFiles(
        credentialsPath: "/home/u/.aws/credentials", configPath: "/home/u/.aws/config",
        credentialsSections: [
            "default": ["aws_access_key_id": "AKDEFAULT", "aws_secret_access_key": "SKDEFAULT"],
            "temp": ["aws_access_key_id": "ASIA", "aws_secret_access_key": "SK", "aws_session_token": "TOK"],
            "halfkey": ["aws_access_key_id": "AK"],
            "halfsecret": ["aws_secret_access_key": "SK"],
        ],
        configSections: [
            "role": ["role_arn": "arn:aws:iam::123456789012:role/x", "source_profile": "default"],
            "sso": ["sso_session": "corp"],
            "regiononly": ["region": "eu-west-1"],
        ])

    @Test("profile provider: keys, with a token")
    func profileKeys() async throws {
        let credentials = try await ProfileCredentialProvider(profile: "temp", files: Self.files, explicit: true).credentials()
        #expect(credentials == AWSCredentials(accessKeyID: "ASIA", secretAccessKey: "SK", sessionToken: "TOK"))
    }

    @Test("profile provider: a missing profile is unusable when asked for, notFound otherwise")
    func profileMissing() async {
        let explicit = await #expect(throws: CredentialError.self) {
            try await ProfileCredentialProvider(profile: "nope", files: Self.files, explicit: true).credentials()
        }
        #expect(explicit?.kind == .unusable)
        #expect(explicit?.message.contains("'nope'") == true)
        #expect(explicit?.message.contains("/home/u/.aws/credentials") == true)
        let implicit = await #expect(throws: CredentialError.self) {
            try await ProfileCredentialProvider(profile: "nope", files: Self.files, explicit: false).credentials()
        }
        #expect(implicit?.kind == .notFound)
    }

    @Test("profile provider: a role_arn profile is unusable and says role_arn", arguments: [true, false])
    func profileRole(explicit: Bool) async {
        let error = await #expect(throws: CredentialError.self) {
            try await ProfileCredentialProvider(profile: "role", files: Self.files, explicit: explicit).credentials()
        }
        #expect(error?.kind == .unusable)
        #expect(error?.message.contains("role_arn") == true)
        let sso = await #expect(throws: CredentialError.self) {
            try await ProfileCredentialProvider(profile: "sso", files: Self.files, explicit: explicit).credentials()
        }
        #expect(sso?.message.contains("sso_session") == true)
    }

    @Test("profile provider: half a key pair is unusable", arguments: ["halfkey", "halfsecret"])
    func profileHalf(profile: String) async {
        let error = await #expect(throws: CredentialError.self) {
            try await ProfileCredentialProvider(profile: profile, files: Self.files, explicit: false).credentials()
        }
        #expect(error?.kind == .unusable)
    }

    @Test("profile provider: a profile with no keys is notFound unless asked for")
    func profileNoKeys() async {
        let implicit = await #expect(throws: CredentialError.self) {
            try await ProfileCredentialProvider(profile: "regiononly", files: Self.files, explicit: false).credentials()
        }
        #expect(implicit?.kind == .notFound)
        let explicit = await #expect(throws: CredentialError.self) {
            try await ProfileCredentialProvider(profile: "regiononly", files: Self.files, explicit: true).credentials()
        }
        #expect(explicit?.kind == .unusable)
    }

    // MARK: Chain

    @Test("the chain returns the first source's credentials, in order")
    func chainOrder() async throws {
        let first = CountingProvider([.failure(CredentialError(.notFound, "none here"))])
        let second = CountingProvider([.success(AWSCredentials(accessKeyID: "SECOND", secretAccessKey: "s"))])
        let third = CountingProvider([.success(AWSCredentials(accessKeyID: "THIRD", secretAccessKey: "s"))])
        let credentials = try await CredentialProviderChain([first, second, third]).credentials()
        #expect(credentials.accessKeyID == "SECOND")
        let calls: [Int] = [first.calls, second.calls, third.calls]
        #expect(calls == [1, 1, 0])
    }

    @Test("an unusable source stops the chain")
    func chainStopsOnUnusable() async {
        let broken = CountingProvider([.failure(CredentialError(.unusable, "half set"))])
        let later = CountingProvider([.success(AWSCredentials(accessKeyID: "LATER", secretAccessKey: "s"))])
        let error = await #expect(throws: CredentialError.self) { try await CredentialProviderChain([broken, later]).credentials() }
        #expect(error?.kind == .unusable)
        #expect(error?.message == "half set")
        #expect(later.calls == 0)
    }

    @Test("when no source has credentials the error lists every source tried")
    func chainNoneFound() async {
        let chain = CredentialProviderChain([
            EnvironmentCredentialProvider(environment: [:]),
            ProfileCredentialProvider(profile: "default", files: SharedConfigFiles(credentialsPath: "c", configPath: "f", credentialsSections: [:], configSections: [:]), explicit: false),
            CountingProvider([.failure(CredentialError(.notFound, "no role"))]),
        ])
        let error = await #expect(throws: CredentialError.self) { try await chain.credentials() }
        #expect(error?.kind == .noneFound)
        let message = error?.message ?? ""
        #expect(message.hasPrefix("no AWS credentials found; tried "))
        #expect(message.contains("environment: AWS_ACCESS_KEY_ID is not set"))
        #expect(message.contains("shared files (profile default): profile 'default' is not in c or f"))
        #expect(message.contains("counting: no role"))
        #expect(chain.sourceDescription == "environment, shared files (profile default), counting")
    }

    // MARK: Default chain

    struct DefaultChainFixture {
        let directory: URL
        var environment: [String: String]
        let transport = FakeTransport()

        init() throws {
            directory = try makeTempDirectory()
            try """
                [default]
                aws_access_key_id = AKFILEDEFAULT
                aws_secret_access_key = SKFILEDEFAULT
                [dev]
                aws_access_key_id = AKFILEDEV
                aws_secret_access_key = SKFILEDEV
                """.write(to: directory.appendingPathComponent("credentials"), atomically: true, encoding: .utf8)
            try "[profile dev]\nregion = eu-west-1\n[profile roleonly]\nrole_arn = arn:aws:iam::1:role/r\n"
                .write(to: directory.appendingPathComponent("config"), atomically: true, encoding: .utf8)
            environment = [
                "HOME": directory.path,
                "AWS_SHARED_CREDENTIALS_FILE": directory.appendingPathComponent("credentials").path,
                "AWS_CONFIG_FILE": directory.appendingPathComponent("config").path,
                "AWS_EC2_METADATA_DISABLED": "true",
            ]
        }

        func credentials(profile: String? = nil, extra: [String: String] = [:]) async throws -> AWSCredentials {
            let environment = self.environment.merging(extra) { _, new in new }
            let files = try SharedConfigFiles.load(environment: environment)
            return try await DefaultCredentialChain.make(profile: profile, environment: environment, files: files, transport: transport).credentials()
        }

        func cleanUp() { try? FileManager.default.removeItem(at: directory) }
    }

    static let environmentKeys = ["AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "SKENV"]

    @Test("default chain: environment keys come before the default profile")
    func defaultChainEnvironmentFirst() async throws {
        let fixture = try DefaultChainFixture()
        defer { fixture.cleanUp() }
        #expect(try await fixture.credentials(extra: Self.environmentKeys).accessKeyID == "AKENV")
        #expect(try await fixture.credentials().accessKeyID == "AKFILEDEFAULT")
        #expect(fixture.transport.requests.isEmpty)
    }

    @Test("default chain: an explicit --profile outranks the environment's keys")
    func defaultChainExplicitProfile() async throws {
        let fixture = try DefaultChainFixture()
        defer { fixture.cleanUp() }
        #expect(try await fixture.credentials(profile: "dev", extra: Self.environmentKeys).accessKeyID == "AKFILEDEV")
    }

    @Test("default chain: AWS_PROFILE selects the profile; the environment's keys still come first")
    func defaultChainAWSProfile() async throws {
        let fixture = try DefaultChainFixture()
        defer { fixture.cleanUp() }
        #expect(try await fixture.credentials(extra: ["AWS_PROFILE": "dev"]).accessKeyID == "AKFILEDEV")
        #expect(try await fixture.credentials(extra: Self.environmentKeys.merging(["AWS_PROFILE": "dev"]) { a, _ in a }).accessKeyID == "AKENV")
    }

    @Test("default chain: a missing or unusable profile asked for is an error, not a fallback")
    func defaultChainMissingProfile() async throws {
        let fixture = try DefaultChainFixture()
        defer { fixture.cleanUp() }
        let missing = await #expect(throws: CredentialError.self) { try await fixture.credentials(profile: "ghost") }
        #expect(missing?.kind == .unusable)
        #expect(missing?.message.contains("ghost") == true)
        let viaEnvironment = await #expect(throws: CredentialError.self) { try await fixture.credentials(extra: ["AWS_PROFILE": "ghost"]) }
        #expect(viaEnvironment?.kind == .unusable)
        let role = await #expect(throws: CredentialError.self) { try await fixture.credentials(profile: "roleonly") }
        #expect(role?.message.contains("role_arn") == true)
        #expect(fixture.transport.requests.isEmpty)
    }

    @Test("default chain: nothing anywhere lists the sources and never asks instance metadata when disabled")
    func defaultChainNothing() async throws {
        let fixture = try DefaultChainFixture()
        defer { fixture.cleanUp() }
        let environment = fixture.environment.merging(["AWS_SHARED_CREDENTIALS_FILE": fixture.directory.appendingPathComponent("none").path]) { _, new in new }
        let files = try SharedConfigFiles.load(environment: environment)
        let chain = DefaultCredentialChain.make(profile: nil, environment: environment, files: files, transport: fixture.transport)
        #expect(!chain.sourceDescription.contains("instance metadata"))
        let error = await #expect(throws: CredentialError.self) { try await chain.credentials() }
        #expect(error?.kind == .noneFound)
        #expect(error?.message.contains("environment") == true)
        #expect(error?.message.contains("shared files (profile default)") == true)
        #expect(fixture.transport.requests.isEmpty)
    }

    @Test("default chain: instance metadata is the last source when enabled")
    func defaultChainIncludesIMDS() throws {
        let fixture = try DefaultChainFixture()
        defer { fixture.cleanUp() }
        var environment = fixture.environment
        environment["AWS_EC2_METADATA_DISABLED"] = "false"
        environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:1338/"
        let files = try SharedConfigFiles.load(environment: environment)
        let chain = DefaultCredentialChain.make(profile: nil, environment: environment, files: files, transport: fixture.transport)
        #expect(chain.sourceDescription == "environment, shared files (profile default), instance metadata (http://127.0.0.1:1338)")
        // No IMDS with an explicit profile.
        let explicit = DefaultCredentialChain.make(profile: "dev", environment: environment, files: files, transport: fixture.transport)
        #expect(explicit.sourceDescription == "shared files (profile dev)")
    }

    // MARK: Refreshing

    @Test("20 concurrent callers cause one base call")
    func refreshCoalesces() async throws {
        let base = CountingProvider([.success(AWSCredentials(accessKeyID: "AK", secretAccessKey: "S", expiration: 10_000))], waitForCallers: 20)
        let provider = RefreshingCredentialProvider(base: base, refreshMargin: 300, now: { 1_000 })
        let keys = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    base.entered.add(1, ordering: .releasing)
                    return try await provider.credentials().accessKeyID
                }
            }
            var keys: [String] = []
            for try await key in group { keys.append(key) }
            return keys
        }
        #expect(keys == Array(repeating: "AK", count: 20))
        #expect(base.calls == 1)
        // Still valid: cached.
        _ = try await provider.credentials()
        #expect(base.calls == 1)
    }

    @Test("credentials are refreshed within the margin of their expiry")
    func refreshNearExpiry() async throws {
        let clock = Mutex<Int64>(1_000)
        let base = CountingProvider([
            .success(AWSCredentials(accessKeyID: "FIRST", secretAccessKey: "S", expiration: 2_000)),
            .success(AWSCredentials(accessKeyID: "SECOND", secretAccessKey: "S", expiration: 9_000)),
        ])
        let provider = RefreshingCredentialProvider(base: base, refreshMargin: 300, now: { clock.withLock { $0 } })
        #expect(try await provider.credentials().accessKeyID == "FIRST")
        clock.withLock { $0 = 1_699 }
        #expect(try await provider.credentials().accessKeyID == "FIRST")
        #expect(base.calls == 1)
        clock.withLock { $0 = 1_700 }
        #expect(try await provider.credentials().accessKeyID == "SECOND")
        #expect(base.calls == 2)
        clock.withLock { $0 = 8_000 }
        #expect(try await provider.credentials().accessKeyID == "SECOND")
        #expect(base.calls == 2)
    }

    @Test("credentials without expiry are never refreshed")
    func noExpiry() async throws {
        let base = CountingProvider([.success(AWSCredentials(accessKeyID: "AK", secretAccessKey: "S"))])
        let provider = RefreshingCredentialProvider(base: base, now: { Int64.max })
        for _ in 0..<5 { _ = try await provider.credentials() }
        #expect(base.calls == 1)
    }

    @Test("errors propagate and a later call retries")
    func refreshErrors() async throws {
        let base = CountingProvider([
            .failure(CredentialError(.unusable, "IMDS said no")),
            .success(AWSCredentials(accessKeyID: "AK", secretAccessKey: "S", expiration: 5_000)),
        ])
        let provider = RefreshingCredentialProvider(base: base, now: { 1_000 })
        let error = await #expect(throws: CredentialError.self) { try await provider.credentials() }
        #expect(error?.kind == .unusable)
        #expect(error?.message == "IMDS said no")
        #expect(try await provider.credentials().accessKeyID == "AK")
        #expect(base.calls == 2)
    }

    // MARK: Instance metadata

    static let imdsDocument = """
        {
          "Code" : "Success",
          "LastUpdated" : "2026-11-26T11:49:54Z",
          "Type" : "AWS-HMAC",
          "AccessKeyId" : "ASIAIOSFODNN7EXAMPLE",
          "SecretAccessKey" : "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
          "Token" : "IQoJb3JpZ2luX2VjEXAMPLETOKEN",
          "Expiration" : "2026-11-26T18:00:00Z"
        }
        """

    @Test("the IMDS credentials document")
    func imdsDecode() throws {
        let credentials = try InstanceMetadataCredentialProvider.decode(Self.imdsDocument, role: "web")
        #expect(credentials == AWSCredentials(accessKeyID: "ASIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                              sessionToken: "IQoJb3JpZ2luX2VjEXAMPLETOKEN", expiration: 1_795_716_000))
    }

    @Test("broken IMDS documents are unusable and name the role", arguments: [
        ("not json", "not a JSON object"),
        ("[1, 2]", "not a JSON object"),
        ("", "not a JSON object"),
        ("{\"Code\": \"AssumeRoleUnauthorizedAccess\"}", "AssumeRoleUnauthorizedAccess"),
        ("{\"Code\": \"Success\", \"AccessKeyId\": \"A\"}", "lack AccessKeyId or SecretAccessKey"),
        ("{\"AccessKeyId\": 1, \"SecretAccessKey\": \"S\"}", "lack AccessKeyId or SecretAccessKey"),
        ("{\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"S\", \"Expiration\": \"tomorrow\"}", "unreadable Expiration 'tomorrow'"),
        ("{\"AccessKeyId\": \"A\", \"SecretAccessKey\": \"S\", \"Token\": \"T\", \"Expiration\": \"2026-11-26T18:00", "not a JSON object"),
    ])
    func imdsBroken(document: String, mention: String) {
        let error = #expect(throws: CredentialError.self) { try InstanceMetadataCredentialProvider.decode(document, role: "web") }
        #expect(error?.kind == .unusable)
        #expect(error?.message.contains(mention) == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("'web'") == true)
    }

    @Test("the IMDSv2 exchange, through a fake transport on 127.0.0.1")
    func imdsExchange() async throws {
        let transport = FakeTransport([
            .success(HTTPResponse(status: 200, body: Array("SESSION-TOKEN".utf8))),
            .success(HTTPResponse(status: 200, body: Array("web-role\nother\n".utf8))),
            .success(HTTPResponse(status: 200, body: Array(Self.imdsDocument.utf8))),
        ])
        let provider = InstanceMetadataCredentialProvider(endpoint: "http://127.0.0.1:1338/", transport: transport)
        let credentials = try await provider.credentials()
        #expect(credentials.accessKeyID == "ASIAIOSFODNN7EXAMPLE")
        let requests = transport.requests
        try #require(requests.count == 3)
        #expect(requests.map(\.method) == ["PUT", "GET", "GET"])
        #expect(requests.map(\.url.description) == [
            "http://127.0.0.1:1338/latest/api/token",
            "http://127.0.0.1:1338/latest/meta-data/iam/security-credentials/",
            "http://127.0.0.1:1338/latest/meta-data/iam/security-credentials/web-role",
        ])
        #expect(requests[0].headers["X-aws-ec2-metadata-token-ttl-seconds"] == "21600")
        #expect(requests[1].headers["X-aws-ec2-metadata-token"] == "SESSION-TOKEN")
        #expect(requests[2].headers["X-aws-ec2-metadata-token"] == "SESSION-TOKEN")
        #expect(requests.allSatisfy { $0.timeout == .seconds(1) })
    }

    @Test("IMDS: no answer or no role is notFound; a failing document is unusable")
    func imdsFailures() async {
        let refused = FakeTransport([.failure(TransportError(kind: .connectionFailed, message: "refused", mayHaveBeenSent: false, url: "u"))])
        let noAnswer = await #expect(throws: CredentialError.self) {
            try await InstanceMetadataCredentialProvider(endpoint: "http://127.0.0.1:1338", transport: refused).credentials()
        }
        #expect(noAnswer?.kind == .notFound)

        let noRole = FakeTransport([
            .success(HTTPResponse(status: 200, body: Array("T".utf8))),
            .success(HTTPResponse(status: 404)),
        ])
        let roleError = await #expect(throws: CredentialError.self) {
            try await InstanceMetadataCredentialProvider(endpoint: "http://127.0.0.1:1338", transport: noRole).credentials()
        }
        #expect(roleError?.kind == .notFound)

        let failing = FakeTransport([
            .success(HTTPResponse(status: 200, body: Array("T".utf8))),
            .success(HTTPResponse(status: 200, body: Array("web".utf8))),
            .success(HTTPResponse(status: 500)),
        ])
        let documentError = await #expect(throws: CredentialError.self) {
            try await InstanceMetadataCredentialProvider(endpoint: "http://127.0.0.1:1338", transport: failing).credentials()
        }
        #expect(documentError?.kind == .unusable)
        #expect(documentError?.message.contains("HTTP 500") == true)
    }

    @Test("IMDS is disabled by AWS_EC2_METADATA_DISABLED=true, any case")
    func imdsDisabled() {
        #expect(InstanceMetadataCredentialProvider(environment: ["AWS_EC2_METADATA_DISABLED": "true"], transport: FakeTransport()) == nil)
        #expect(InstanceMetadataCredentialProvider(environment: ["AWS_EC2_METADATA_DISABLED": "TRUE"], transport: FakeTransport()) == nil)
        let enabled = InstanceMetadataCredentialProvider(environment: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:9/"], transport: FakeTransport())
        #expect(enabled?.endpoint == "http://127.0.0.1:9")
        #expect(InstanceMetadataCredentialProvider(environment: [:], transport: FakeTransport())?.endpoint == "http://169.254.169.254")
    }
}
