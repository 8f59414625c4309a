import Foundation
import Testing
import TorporAWS
import TorporSigV4

/// The libcurl transport against a real HTTP server on loopback.
@Suite("CurlTransport against a local HTTP server")
struct TransportTests {
    static let server: Result<HelperServer, any Error> = Result { try HelperServer(script: "fake_http_server.py", arguments: ["--lifetime", "600"]) }

    func url(_ path: String) async throws -> RequestURL {
        let port = try await offPool { try Self.server.get().firstLine }
        return try RequestURL(parsing: "http://127.0.0.1:\(port)\(path)")
    }

    func echo(_ transport: CurlTransport, _ request: HTTPRequest) async throws -> [String: Any] {
        let response = try await transport.send(request)
        #expect(response.status == 200)
        return try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
    }

    @Test("only the headers we set go out: no Accept, Expect or User-Agent of libcurl's own")
    func onlyOurHeaders() async throws {
        let transport = CurlTransport()
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded; charset=utf-8")
        headers.add(name: "X-Amz-Date", value: "20261126T000000Z")
        let body = Array(String(repeating: "Action=DescribeInstances&", count: 100).utf8) // large enough for curl to want Expect
        let echoed = try await echo(transport, HTTPRequest(method: "POST", url: try await url("/echo"), headers: headers, body: body))
        let names = Set(((echoed["headers"] as? [[String]]) ?? []).map { $0[0].lowercased() })
        #expect(names == ["host", "content-type", "x-amz-date", "content-length"], "\(names)")
        #expect(echoed["body"] as? String == String(decoding: body, as: UTF8.self))
        #expect(echoed["method"] as? String == "POST")
    }

    @Test("connections are reused across requests to one endpoint")
    func keepAlive() async throws {
        let transport = CurlTransport()
        var ports: [Int] = []
        for _ in 0..<4 {
            let echoed = try await echo(transport, HTTPRequest(method: "GET", url: try await url("/echo")))
            ports.append(try #require(echoed["clientPort"] as? Int))
        }
        #expect(Set(ports).count == 1, "client ports \(ports)")
    }

    @Test("50 requests at once all complete")
    func concurrency() async throws {
        let transport = CurlTransport()
        let target = try await url("/echo")
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<50 {
                group.addTask { try await transport.send(HTTPRequest(method: "GET", url: target)).status }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.count == 50 && statuses.allSatisfy { $0 == 200 })
    }

    @Test("a slow answer past the timeout is a timeout error")
    func timeout() async throws {
        // 1.5 s, not less: the request must be on the wire before the timeout
        // for `mayHaveBeenSent`, and a loaded machine can be slow to connect.
        let transport = CurlTransport(configuration: .init(requestTimeout: .milliseconds(1500)))
        do {
            _ = try await transport.send(HTTPRequest(method: "GET", url: try await url("/slow?seconds=6")))
            Issue.record("no timeout")
        } catch let error as TransportError {
            #expect(error.kind == .timeout)
            #expect(error.mayHaveBeenSent)
        }
    }

    @Test("cancelling the task aborts the transfer promptly")
    func cancellation() async throws {
        let transport = CurlTransport()
        // The server answers after 20 s; the end must come long before. (The
        // bound is loose: the whole suite shares two cores.)
        let target = try await url("/slow?seconds=20")
        let task = Task { try await transport.send(HTTPRequest(method: "GET", url: target)) }
        try await Task.sleep(for: .milliseconds(300))
        let cancelled = ContinuousClock.now
        task.cancel()
        let result = await task.result
        #expect(ContinuousClock.now - cancelled < .seconds(10), "the server answers only after 20 s")
        #expect(throws: CancellationError.self) { try result.get() }
    }

    @Test("a refused connection is a connection failure that was never sent")
    func refused() async throws {
        let transport = CurlTransport(configuration: .init(connectTimeout: .seconds(2)))
        do {
            _ = try await transport.send(HTTPRequest(method: "GET", url: try RequestURL(parsing: "http://127.0.0.1:1/")))
            Issue.record("connected to port 1")
        } catch let error as TransportError {
            #expect(error.kind == .connectionFailed)
            #expect(!error.mayHaveBeenSent)
        }
    }

    @Test("a connection closed without an answer is a broken connection")
    func reset() async throws {
        let transport = CurlTransport()
        do {
            _ = try await transport.send(HTTPRequest(method: "GET", url: try await url("/reset")))
            Issue.record("got an answer from /reset")
        } catch let error as TransportError {
            #expect(error.kind == .connectionReset)
        }
    }

    @Test("statuses and large bodies come back whole; an oversized body is refused")
    func bodies() async throws {
        let transport = CurlTransport(configuration: .init(maximumResponseBytes: 1 << 20))
        let big = try await transport.send(HTTPRequest(method: "GET", url: try await url("/big?bytes=900000")))
        #expect(big.status == 200 && big.body.count == 900_000)
        let notFound = try await transport.send(HTTPRequest(method: "GET", url: try await url("/status?code=503")))
        #expect(notFound.status == 503 && notFound.bodyText == "status body")
        #expect(throws: HTTPStatusError.self) { try notFound.checkedStatus() }
        do {
            _ = try await transport.send(HTTPRequest(method: "GET", url: try await url("/big?bytes=2000000")))
            Issue.record("an oversized body was accepted")
        } catch let error as TransportError {
            #expect(error.kind == .responseTooLarge)
        }
    }
}

/// IMDSv2 credentials from a local fake metadata server.
@Suite("Instance metadata credentials (IMDSv2)")
struct InstanceMetadataTests {
    @Test("token, role, credentials: all three requests made with the token")
    func credentials() async throws {
        let server = try await offPool { try HelperServer(script: "fake_http_server.py", arguments: ["--lifetime", "60"]) }
        defer { server.stop() }
        let provider = InstanceMetadataCredentialProvider(endpoint: "http://127.0.0.1:\(server.firstLine)", transport: CurlTransport())
        let credentials = try await provider.credentials()
        #expect(credentials.accessKeyID == "ASIAIMDSEXAMPLE")
        #expect(credentials.secretAccessKey == "imds-secret-example")
        #expect(credentials.sessionToken == "imds-session-token")
        #expect(credentials.expiration == ISO8601.parse("2099-01-01T00:00:00Z"))
    }

    @Test("the default chain falls through to IMDS when nothing else is set")
    func chain() async throws {
        let server = try await offPool { try HelperServer(script: "fake_http_server.py", arguments: ["--lifetime", "60"]) }
        defer { server.stop() }
        let environment = ["HOME": "/nonexistent", "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:\(server.firstLine)"]
        let files = try SharedConfigFiles.load(environment: environment)
        let chain = DefaultCredentialChain.make(profile: nil, environment: environment, files: files, transport: CurlTransport())
        #expect(try await chain.credentials().accessKeyID == "ASIAIMDSEXAMPLE")
    }

    @Test("no metadata server: the chain's error names every source")
    func unreachable() async throws {
        let environment = ["HOME": "/nonexistent", "AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:1"]
        let files = try SharedConfigFiles.load(environment: environment)
        let chain = DefaultCredentialChain.make(profile: nil, environment: environment, files: files, transport: CurlTransport())
        do {
            _ = try await chain.credentials()
            Issue.record("found credentials with no source")
        } catch {
            #expect(error.kind == .noneFound)
            #expect(error.message.contains("environment") && error.message.contains("profile default") && error.message.contains("instance metadata"))
        }
    }
}
