import Foundation
import Synchronization
import Testing
import TorporSigV4
@testable import TorporAWS
@testable import TorporEC2

// MARK: Fakes shared by the TorporAWS tests

/// A transport that answers from a script and records every request.
final class FakeTransport: HTTPTransport {
    struct State {
        var script: [Result<HTTPResponse, TransportError>] = []
        var requests: [HTTPRequest] = []
    }
    let state = Mutex(State())

    init(_ script: [Result<HTTPResponse, TransportError>] = []) {
        state.withLock { $0.script = script }
    }

    var requests: [HTTPRequest] { state.withLock { $0.requests } }

    func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        let next: Result<HTTPResponse, TransportError>? = state.withLock { state in
            state.requests.append(request)
            return state.script.isEmpty ? nil : state.script.removeFirst()
        }
        guard let next else {
            Issue.record("unscripted request \(request.method) \(request.url)")
            throw TransportError(kind: .other, message: "no scripted response", mayHaveBeenSent: false, url: request.url.description)
        }
        return try next.get()
    }
}

/// A clock whose time is set by the test; sleeping records the duration and
/// returns at once (and moves the time on).
final class FakeClock: AWSClock {
    struct State {
        var now: Double
        var sleeps: [Duration] = []
    }
    let state: Mutex<State>

    init(now: Double) { state = Mutex(State(now: now)) }

    var sleeps: [Duration] { state.withLock { $0.sleeps } }
    func set(_ now: Double) { state.withLock { $0.now = now } }

    func now() -> Double { state.withLock { $0.now } }

    func sleep(for duration: Duration) async throws {
        state.withLock {
            $0.sleeps.append(duration)
            $0.now += Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        }
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func xmlResponse(_ status: Int, _ body: String, headers: HTTPHeaders = HTTPHeaders()) -> Result<HTTPResponse, TransportError> {
    .success(HTTPResponse(status: status, headers: headers, body: Array(body.utf8)))
}

func ec2Error(_ code: String, _ message: String = "message", requestID: String = "req-1") -> String {
    "<Response><Errors><Error><Code>\(code)</Code><Message>\(message)</Message></Error></Errors><RequestID>\(requestID)</RequestID></Response>"
}

/// Stored results of the observer.
final class EventLog: Sendable {
    let events = Mutex<[AWSCallEvent]>([])
    var all: [AWSCallEvent] { events.withLock { $0 } }
    func record(_ event: AWSCallEvent) { events.withLock { $0.append(event) } }
}

// MARK: Tests

@Suite("AWSQueryClient")
struct AWSQueryClientTests {
    /// 2026-11-26T17:53:19Z
    static let now: Double = 1_795_715_599
    static let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    static let okBody = "<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>ok-1</requestId><reservationSet/></DescribeInstancesResponse>"

    static func client(_ transport: FakeTransport, clock: FakeClock, random: Double = 0.5, quota: RetryQuota = RetryQuota(),
                       observer: (@Sendable (AWSCallEvent) -> Void)? = nil) throws -> AWSQueryClient {
        let location = ServiceLocation(region: "us-east-1", endpoint: try RequestURL(parsing: "https://ec2.us-east-1.amazonaws.com"),
                                       endpointSource: "test")
        return AWSQueryClient(
            service: "ec2", apiVersion: "2016-11-15", location: location, credentials: StaticCredentialProvider(credentials),
            transport: transport, retryPolicy: RetryPolicy(quota: quota, random: { random }), clock: clock, observer: observer)
    }

    static func describe() -> QueryParameters {
        var parameters = QueryParameters(action: "DescribeInstances", version: "2016-11-15")
        parameters.setList("InstanceId", ["i-1", "i 2"])
        return parameters
    }

    @Test("the request is a signed form POST")
    func requestShape() async throws {
        let transport = FakeTransport([xmlResponse(200, Self.okBody)])
        let clock = FakeClock(now: Self.now + 0.75)
        let client = try Self.client(transport, clock: clock)
        let answer = try await client.send(Self.describe(), idempotent: true)
        #expect(answer.requestID == "ok-1")
        #expect(answer.root.name == "DescribeInstancesResponse")

        let request = try #require(transport.requests.first)
        #expect(transport.requests.count == 1)
        #expect(request.method == "POST")
        #expect(request.url.description == "https://ec2.us-east-1.amazonaws.com/")
        #expect(request.headers["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8")
        #expect(request.headers["X-Amz-Date"] == "20261126T175319Z")
        #expect(String(decoding: request.body, as: UTF8.self)
                == "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-1&InstanceId.2=i%202")
        let authorization = try #require(request.headers["Authorization"])
        #expect(authorization.hasPrefix(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/us-east-1/ec2/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="))

        // The signature is the one the signer gives for exactly this request.
        let expected = SigV4Signer(region: "us-east-1", service: "ec2").sign(
            SigV4Request(method: "POST", url: request.url,
                         headers: ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"],
                         payload: .bytes(request.body)),
            credentials: Self.credentials, date: SigningDate(amzDate: "20261126T175319Z")!)
        #expect(authorization == expected.authorization)
        #expect(clock.sleeps.isEmpty)
    }

    @Test("a session token goes into the signed headers")
    func sessionToken() async throws {
        let transport = FakeTransport([xmlResponse(200, Self.okBody)])
        let location = ServiceLocation(region: "eu-west-1", endpoint: try RequestURL(parsing: "http://127.0.0.1:4566/"), endpointSource: "test")
        let client = AWSQueryClient(
            service: "ec2", apiVersion: "2016-11-15", location: location,
            credentials: StaticCredentialProvider(AWSCredentials(accessKeyID: "AK", secretAccessKey: "S", sessionToken: "TOK")),
            transport: transport, clock: FakeClock(now: Self.now))
        _ = try await client.send(Self.describe(), idempotent: true)
        let request = try #require(transport.requests.first)
        #expect(request.headers["X-Amz-Security-Token"] == "TOK")
        #expect(request.headers["Host"] == "127.0.0.1:4566")
        #expect(request.headers["Authorization"]?.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,") == true)
    }

    @Test("503 RequestLimitExceeded is retried after a backoff, then succeeds")
    func retryAfterThrottling() async throws {
        let transport = FakeTransport([xmlResponse(503, ec2Error("RequestLimitExceeded", "Request limit exceeded.")), xmlResponse(200, Self.okBody)])
        let clock = FakeClock(now: Self.now)
        let quota = RetryQuota()
        let client = try Self.client(transport, clock: clock, quota: quota)
        let answer = try await client.send(Self.describe(), idempotent: true)
        #expect(answer.requestID == "ok-1")
        #expect(transport.requests.count == 2)
        #expect(clock.sleeps == [.milliseconds(500)])
        // The retry's cost is refunded by the success.
        #expect(quota.available == RetryQuota.initialTokens)
        // Each attempt is signed afresh: the second after the sleep.
        #expect(transport.requests.map { $0.headers["X-Amz-Date"] } == ["20261126T175319Z", "20261126T175319Z"])
    }

    @Test("gives up after three attempts with the last service error")
    func givesUp() async throws {
        let transport = FakeTransport([
            xmlResponse(500, ec2Error("InternalError", "first", requestID: "r1")),
            xmlResponse(503, ec2Error("Unavailable", "second", requestID: "r2")),
            xmlResponse(503, ec2Error("RequestLimitExceeded", "third", requestID: "r3")),
        ])
        let clock = FakeClock(now: Self.now)
        let client = try Self.client(transport, clock: clock)
        let error = await #expect(throws: AWSServiceError.self) { try await client.send(Self.describe(), idempotent: true) }
        #expect(error == AWSServiceError(code: "RequestLimitExceeded", message: "third", requestID: "r3", httpStatus: 503))
        #expect(transport.requests.count == 3)
        #expect(clock.sleeps == [.milliseconds(500), .seconds(1)])
    }

    @Test("a 4xx error that is not about the clock is not retried")
    func clientErrorNotRetried() async throws {
        let transport = FakeTransport([xmlResponse(400, ec2Error("InvalidParameterValue", "bad value"))])
        let clock = FakeClock(now: Self.now)
        let client = try Self.client(transport, clock: clock)
        let error = await #expect(throws: AWSServiceError.self) { try await client.send(Self.describe(), idempotent: true) }
        #expect(error?.code == "InvalidParameterValue")
        #expect(error?.httpStatus == 400)
        #expect(transport.requests.count == 1)
        #expect(clock.sleeps.isEmpty)
    }

    @Test("RequestExpired with a Date an hour ahead: re-signed an hour ahead, without sleeping")
    func clockSkewCorrected() async throws {
        let transport = FakeTransport([
            xmlResponse(400, ec2Error("RequestExpired", "Request has expired."), headers: ["Date": "Thu, 26 Nov 2026 18:53:19 GMT"]),
            xmlResponse(200, Self.okBody),
            xmlResponse(200, Self.okBody),
        ])
        let clock = FakeClock(now: Self.now)
        let client = try Self.client(transport, clock: clock)
        _ = try await client.send(Self.describe(), idempotent: true)
        #expect(transport.requests.count == 2)
        #expect(transport.requests.map { $0.headers["X-Amz-Date"] } == ["20261126T175319Z", "20261126T185319Z"])
        #expect(client.currentClockOffset == 3600)
        #expect(clock.sleeps.isEmpty)
        // The offset stays for later calls.
        _ = try await client.send(Self.describe(), idempotent: true)
        #expect(transport.requests.last?.headers["X-Amz-Date"] == "20261126T185319Z")
    }

    @Test("a second skew error in one call is not corrected again")
    func skewCorrectedOnce() async throws {
        let skewed = xmlResponse(400, ec2Error("RequestExpired"), headers: ["Date": "Thu, 26 Nov 2026 18:53:19 GMT"])
        let transport = FakeTransport([skewed, skewed])
        let client = try Self.client(transport, clock: FakeClock(now: Self.now))
        let error = await #expect(throws: AWSServiceError.self) { try await client.send(Self.describe(), idempotent: true) }
        #expect(error?.code == "RequestExpired")
        #expect(transport.requests.count == 2)
    }

    @Test("AuthFailure without skew is not retried")
    func authFailureWithoutSkew() async throws {
        let transport = FakeTransport([
            xmlResponse(401, ec2Error("AuthFailure", "AWS was not able to validate the provided access credentials"),
                        headers: ["Date": "Thu, 26 Nov 2026 17:53:30 GMT"]),
        ])
        let clock = FakeClock(now: Self.now)
        let client = try Self.client(transport, clock: clock)
        let error = await #expect(throws: AWSServiceError.self) { try await client.send(Self.describe(), idempotent: true) }
        #expect(error?.code == "AuthFailure")
        #expect(transport.requests.count == 1)
        #expect(client.currentClockOffset == 0)
        #expect(clock.sleeps.isEmpty)
    }

    @Test("AuthFailure with a Date far off is corrected and retried")
    func authFailureWithSkew() async throws {
        let transport = FakeTransport([
            xmlResponse(401, ec2Error("AuthFailure"), headers: ["Date": "Thu, 26 Nov 2026 17:43:19 GMT"]),
            xmlResponse(200, Self.okBody),
        ])
        let client = try Self.client(transport, clock: FakeClock(now: Self.now))
        _ = try await client.send(Self.describe(), idempotent: true)
        #expect(client.currentClockOffset == -600)
        #expect(transport.requests.last?.headers["X-Amz-Date"] == "20261126T174319Z")
    }

    @Test("an unreadable 200 body is an AWSResponseError that keeps the body")
    func unreadableSuccess() async throws {
        let body = "<DescribeInstancesResponse><requestId>x</requestId><reservationSet>"
        let transport = FakeTransport([xmlResponse(200, body)])
        let client = try Self.client(transport, clock: FakeClock(now: Self.now))
        let error = await #expect(throws: AWSResponseError.self) { try await client.send(Self.describe(), idempotent: true) }
        #expect(error?.body == Array(body.utf8))
        #expect(error?.bodyText == body)
        #expect(error?.action == "DescribeInstances")
        #expect(error?.httpStatus == 200)
        #expect(error?.description.contains("<reservationSet>") == true)
        #expect(transport.requests.count == 1)
    }

    @Test("an HTML 503 is retried as a transient status; an HTML 403 is not")
    func htmlErrors() async throws {
        let html = "<html><body><h1>503 Service Unavailable</h1></body></html>"
        let transport = FakeTransport([xmlResponse(503, html), xmlResponse(200, Self.okBody)])
        let clock = FakeClock(now: Self.now)
        _ = try await Self.client(transport, clock: clock).send(Self.describe(), idempotent: true)
        #expect(transport.requests.count == 2)
        #expect(clock.sleeps.count == 1)

        let forbidden = FakeTransport([xmlResponse(403, "<!DOCTYPE html><html>Forbidden</html>")])
        let error = await #expect(throws: AWSResponseError.self) {
            try await Self.client(forbidden, clock: FakeClock(now: Self.now)).send(Self.describe(), idempotent: true)
        }
        #expect(error?.httpStatus == 403)
        #expect(error?.bodyText.contains("Forbidden") == true)
        #expect(forbidden.requests.count == 1)
    }

    @Test("an unreadable error answer names the action")
    func unreadableErrorNamesAction() async throws {
        let transport = FakeTransport([xmlResponse(403, "<!DOCTYPE html><html>Forbidden</html>")])
        let error = await #expect(throws: AWSResponseError.self) {
            try await Self.client(transport, clock: FakeClock(now: Self.now)).send(Self.describe(), idempotent: true)
        }
        #expect(error?.action == "DescribeInstances")
        #expect(error?.description.hasPrefix("DescribeInstances: unreadable response (HTTP 403)") == true)
    }

    @Test("transport failures: a refused connection is retried, an ambiguous timeout of a non-idempotent call is not")
    func transportFailures() async throws {
        let refused = TransportError(kind: .connectionFailed, message: "refused", mayHaveBeenSent: false, url: "u")
        let transport = FakeTransport([.failure(refused), xmlResponse(200, Self.okBody)])
        let quota = RetryQuota()
        _ = try await Self.client(transport, clock: FakeClock(now: Self.now), quota: quota).send(Self.describe(), idempotent: false)
        #expect(transport.requests.count == 2)
        #expect(quota.available == RetryQuota.initialTokens)

        let timeout = TransportError(kind: .timeout, message: "timed out", mayHaveBeenSent: true, url: "u")
        let second = FakeTransport([.failure(timeout)])
        let error = await #expect(throws: TransportError.self) {
            try await Self.client(second, clock: FakeClock(now: Self.now)).send(Self.describe(), idempotent: false)
        }
        #expect(error?.kind == .timeout)
        #expect(second.requests.count == 1)
    }

    @Test("the observer sees every attempt, throttling flagged")
    func observerEvents() async throws {
        let log = EventLog()
        let transport = FakeTransport([
            xmlResponse(503, ec2Error("RequestLimitExceeded", requestID: "t-1")),
            xmlResponse(500, ec2Error("InternalError", requestID: "t-2")),
            xmlResponse(200, Self.okBody),
        ])
        let client = try Self.client(transport, clock: FakeClock(now: Self.now), observer: { log.record($0) })
        _ = try await client.send(Self.describe(), idempotent: true)
        let events = log.all
        try #require(events.count == 3)
        #expect(events.map(\.action) == ["DescribeInstances", "DescribeInstances", "DescribeInstances"])
        #expect(events.map(\.attempt) == [1, 2, 3])
        #expect(events.map(\.outcome) == [.serviceError(code: "RequestLimitExceeded"), .serviceError(code: "InternalError"), .success])
        #expect(events.map(\.throttled) == [true, false, false])
        #expect(events.map(\.requestID) == ["t-1", "t-2", "ok-1"])
    }

    // MARK: Through EC2Client

    @Test("EC2 StopInstances through the client, and a dry run")
    func ec2StopInstances() async throws {
        let transport = FakeTransport([
            xmlResponse(200, XMLDecodingTests.stopInstances),
            xmlResponse(412, ec2Error("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", requestID: "dry")),
        ])
        let ec2 = EC2Client(aws: try Self.client(transport, clock: FakeClock(now: Self.now)))
        let result = try await ec2.stopInstances(ids: ["i-1234567890abcdef0"], hibernate: true)
        #expect(result.changes.map(\.instanceID) == ["i-1234567890abcdef0"])
        #expect(result.changes.first?.currentState == .stopping)
        #expect(result.requestID == "59dbff89-35bd-4eac-99ed-be587EXAMPLE")
        #expect(String(decoding: transport.requests[0].body, as: UTF8.self)
                == "Action=StopInstances&Version=2016-11-15&InstanceId.1=i-1234567890abcdef0&Hibernate=true")

        let dry = try await ec2.stopInstances(ids: ["i-1"], dryRun: true)
        #expect(dry.dryRunPermitted)
        #expect(dry.changes.isEmpty)
        #expect(dry.requestID == "dry")
    }

    @Test("a DescribeInstances answer without an instanceId is an error naming the action and the field")
    func ec2MissingInstanceID() async throws {
        let transport = FakeTransport([xmlResponse(200, XMLDecodingTests.missingInstanceID)])
        let ec2 = EC2Client(aws: try Self.client(transport, clock: FakeClock(now: Self.now)))
        let error = await #expect(throws: AWSResponseError.self) { try await ec2.describeInstances().all() }
        #expect(error?.action == "DescribeInstances")
        #expect(error?.reason.contains("instanceId") == true)
        #expect(error?.reason.contains("reservation 1, instance 1") == true)
    }

    @Test("DescribeInstances pages follow nextToken")
    func ec2Pagination() async throws {
        let transport = FakeTransport([
            xmlResponse(200, XMLDecodingTests.describeInstances),
            xmlResponse(200, Self.okBody),
        ])
        let ec2 = EC2Client(aws: try Self.client(transport, clock: FakeClock(now: Self.now)))
        let instances = try await ec2.describeInstances(filters: [EC2Filter(name: "instance-state-name", values: ["running", "stopped"])],
                                                        maxResults: 2).all()
        #expect(instances.count == 3)
        #expect(transport.requests.count == 2)
        let second = String(decoding: transport.requests[1].body, as: UTF8.self)
        #expect(second == "Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=instance-state-name&Filter.1.Value.1=running&Filter.1.Value.2=stopped&MaxResults=5&NextToken=eyJ2IjoiMiIsImMiOiJ")
    }
}
