import Foundation
import NIOCore
import NIOPosix
public import TorporAWS
import TorporPolicies
import TorporSigV4

/// Asks whether an instance is ready by its readiness probe.
public protocol ReadinessProber: Sendable {
    /// True when the probe succeeds now; false when it fails (refused,
    /// timed out, wrong status). Never throws for the instance's sake.
    func probe(_ spec: ProbeSpec, ip: String) async -> ProbeResult
}

public enum ProbeResult: Sendable, Equatable {
    case ready
    /// Why not, for the last state seen: `refused`, `timeout`, `status 503`.
    case notReady(String)
}

/// TCP connects through SwiftNIO (non-blocking, on NIO's event loops, so
/// thousands can be in flight without a thread each); HTTP GETs through the
/// libcurl transport.
public struct NetworkProber: ReadinessProber {
    let transport: any HTTPTransport
    let timeout: Double

    public init(transport: any HTTPTransport, timeout: Double = 2) {
        self.transport = transport
        self.timeout = timeout
    }

    public func probe(_ spec: ProbeSpec, ip: String) async -> ProbeResult {
        switch spec {
        case .tcp(let port): return await connect(ip: ip, port: port)
        case .http(let url, let status): return await get(Readiness.expand(url, ip: ip), expecting: status)
        }
    }

    func connect(ip: String, port: Int) async -> ProbeResult {
        // An address, not a host name: no resolver, and the socket's own error.
        guard let address = try? SocketAddress(ipAddress: ip, port: port) else { return .notReady("bad address \(ip)") }
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.milliseconds(Int64(timeout * 1000)))
            .channelInitializer { channel in channel.eventLoop.makeSucceededVoidFuture() }
        do {
            let channel = try await bootstrap.connect(to: address).get()
            try? await channel.close()
            return .ready
        } catch {
            return .notReady(Self.reason(error))
        }
    }

    /// A connect failure in a word or two, for the last state seen.
    static func reason(_ error: any Error) -> String {
        switch error {
        case ChannelError.connectTimeout: return "timeout"
        case let error as IOError where error.errnoCode == ECONNREFUSED: return "refused"
        case let error as IOError where error.errnoCode == EHOSTUNREACH || error.errnoCode == ENETUNREACH: return "unreachable"
        case let error as NIOConnectionError:
            return error.connectionErrors.first.map { reason($0.error) } ?? short(error)
        default: return short(error)
        }
    }

    func get(_ text: String, expecting status: Int) async -> ProbeResult {
        guard let url = try? RequestURL(parsing: text) else { return .notReady("bad url") }
        do {
            let response = try await transport.send(HTTPRequest(method: "GET", url: url, timeout: .milliseconds(Int64(timeout * 1000))))
            return response.status == status ? .ready : .notReady("status \(response.status)")
        } catch let error as TransportError {
            switch error.kind {
            case .timeout: return .notReady("timeout")
            case .connectionFailed: return .notReady("refused")
            default: return .notReady(Self.short(error))
            }
        } catch {
            return .notReady(Self.short(error))
        }
    }

    static func short(_ error: any Error) -> String {
        let text = "\(error)"
        return text.count > 60 ? String(text.prefix(60)) + "…" : text
    }
}
