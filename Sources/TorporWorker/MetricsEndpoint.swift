import Foundation
public import Hummingbird
public import Logging
import NIOCore
public import Prometheus

/// `/metrics` (Prometheus text format) and `/healthz`, served by
/// Hummingbird on the configured address (loopback by default). A
/// `Service` in the worker's ServiceGroup.
public enum MetricsEndpoint {
    public static func application(registry: PrometheusCollectorRegistry, host: String, port: Int, logger: Logger,
                                   health: @escaping @Sendable () async -> Bool,
                                   onReady: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router()
        router.get("metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get("healthz") { _, _ -> Response in
            let healthy = await health()
            return Response(status: healthy ? .ok : .serviceUnavailable,
                            body: .init(byteBuffer: ByteBuffer(string: healthy ? "ok\n" : "unhealthy\n")))
        }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: nil),
                           onServerRunning: { channel in await onReady(channel.localAddress?.port ?? port) }, logger: logger)
    }
}
