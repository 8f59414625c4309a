import Foundation
import Testing
import TorporAWS
import TorporPolicies
import TorporResume

/// Readiness probes against tiny servers on 127.0.0.1.
@Suite("Network prober", .timeLimit(.minutes(1)))
struct NetworkProberTests {
    let prober = NetworkProber(transport: CurlTransport(), timeout: 2)

    @Test("TCP to a closed port: not ready, refused")
    func tcpRefused() async throws {
        // Bound but not listening: the port is taken (no one else gets it)
        // and connections to it are refused.
        let closed = try LocalServer(listening: false)
        defer { closed.stop() }
        let result = await prober.probe(.tcp(port: closed.port), ip: "127.0.0.1")
        #expect(result == .notReady("refused"))
    }

    @Test("TCP to a closed port: not ready, and answered at once (not a timeout)")
    func tcpClosedNotReady() async throws {
        let closed = try LocalServer(listening: false)
        defer { closed.stop() }
        // A refusal, told apart from a timeout (which would mean a dropped
        // connect, as to a stopped instance's address).
        let result = await prober.probe(.tcp(port: closed.port), ip: "127.0.0.1")
        #expect(result != .ready)
        #expect(result != .notReady("timeout"))
    }

    @Test("TCP to a listening socket: ready")
    func tcpReady() async throws {
        let server = try LocalServer(listening: true)
        defer { server.stop() }
        #expect(await prober.probe(.tcp(port: server.port), ip: "127.0.0.1") == .ready)
    }

    @Test("HTTP expecting 200 from a server answering 503: not ready, status 503")
    func httpWrongStatus() async throws {
        let server = try LocalServer(listening: true, response: httpResponse(503, "Service Unavailable"))
        defer { server.stop() }
        let result = await prober.probe(.http(url: "http://{ip}:\(server.port)/healthz", status: 200), ip: "127.0.0.1")
        #expect(result == .notReady("status 503"))
    }

    @Test("HTTP expecting the status the server answers: ready (200, and a configured 503)")
    func httpExpectedStatus() async throws {
        let ok = try LocalServer(listening: true, response: httpResponse(200, "OK"))
        defer { ok.stop() }
        #expect(await prober.probe(.http(url: "http://{ip}:\(ok.port)/healthz", status: 200), ip: "127.0.0.1") == .ready)
        let down = try LocalServer(listening: true, response: httpResponse(503, "Service Unavailable"))
        defer { down.stop() }
        #expect(await prober.probe(.http(url: "http://{ip}:\(down.port)/", status: 503), ip: "127.0.0.1") == .ready)
    }

    @Test("HTTP to a closed port: not ready, refused")
    func httpRefused() async throws {
        let closed = try LocalServer(listening: false)
        defer { closed.stop() }
        let result = await prober.probe(.http(url: "http://{ip}:\(closed.port)/healthz", status: 200), ip: "127.0.0.1")
        #expect(result == .notReady("refused"))
    }

    @Test("the URL's {ip} is the instance's address")
    func expand() {
        #expect(Readiness.expand("http://{ip}:8080/healthz", ip: "10.1.2.3") == "http://10.1.2.3:8080/healthz")
        #expect(ProbeSpec(.tcp(port: 22)) == .tcp(port: 22))
        #expect(ProbeSpec(.http(url: "http://{ip}/", status: 204)) == .http(url: "http://{ip}/", status: 204))
        #expect(ProbeSpec(.running) == nil)
        #expect(ProbeSpec(.statusOK) == nil)
    }
}
