import Foundation
import TorporYAML
public import Hummingbird
public import Logging
public import NIOCore
import Synchronization
import TorporSigV4
import ServiceLifecycle
import UnixSignals

/// The request context: Hummingbird's, plus the connection, which the
/// simulator needs to refuse non-loopback control calls and to inject
/// connection resets.
public struct SimRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// Serves a `SimEngine` over HTTP: the EC2 Query API on `/`, and ground
/// truth and control as JSON under `/_sim/`.
public enum SimServer {
    /// Runs until the task is cancelled or the process gets SIGTERM/SIGINT.
    /// `onReady` receives the port actually bound (useful with port 0).
    public static func run(engine: SimEngine, host: String, port: Int, logger: Logger,
                           handleSignals: Bool, shutdown: SimShutdown? = nil,
                           onReady: @escaping @Sendable (Int) async -> Void) async throws {
        let router = Router(context: SimRequestContext.self)
        let auth = SimAuth(region: engine.region, secret: engine.secret(for:), wallNow: { Date().timeIntervalSince1970 })
        router.post("/") { request, context in try await ec2(request, context, engine, auth) }
        router.get("/") { request, context in try await ec2(request, context, engine, auth) }
        addControlRoutes(router, engine)

        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in await onReady(channel.localAddress?.port ?? port) },
            logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            let services = ServiceGroup(configuration: .init(
                services: [app], gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [], logger: logger))
            await shutdown?.attach(services)
            group.addTask { try await services.run() }
            group.addTask { await tickLoop(engine) }
            // When the server stops, so does the timer.
            _ = try await group.next()
            group.cancelAll()
        }
        engine.shutdown()
    }

    /// Fires due transitions between requests, so that probe ports open and
    /// close close to their simulated times.
    static func tickLoop(_ engine: SimEngine) async {
        while !Task.isCancelled {
            engine.tick()
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    // MARK: EC2

    static func ec2(_ request: Request, _ context: SimRequestContext, _ engine: SimEngine, _ auth: SimAuth) async throws -> Response {
        let buffer = try await request.body.collect(upTo: 16 << 20)
        let body = Array(buffer: buffer)
        var parameters = FormDecoding.decode(request.uri.query ?? "")
        if request.method == .post {
            parameters.merge(FormDecoding.decode(String(decoding: body, as: UTF8.self))) { _, form in form }
        }
        let action = parameters["Action"] ?? ""

        if engine.authenticate {
            var headers = HTTPHeaders()
            if let authority = request.head.authority { headers.add(name: "Host", value: authority) }
            for field in request.headers { headers.add(name: field.name.rawName, value: field.value) }
            let url = RequestURL(scheme: "http", host: request.head.authority ?? "localhost", path: request.uri.path,
                                 query: request.uri.query)
            if let error = auth.verify(method: request.method.rawValue, url: url, headers: headers, body: body) {
                engine.recordRejected(action: action.isEmpty ? "(none)" : action, code: error.code)
                return xml(.error(error, requestID: engine.nextRequestID()))
            }
        }
        guard !action.isEmpty else {
            return xml(.error(SimAPIError("MissingAction", "The request must contain the parameter Action"), requestID: engine.nextRequestID()))
        }
        let latency = engine.faults.latencyMilliseconds
        if latency > 0 { try await Task.sleep(for: .milliseconds(Int64(latency))) }
        switch engine.handle(action: action, parameters: parameters) {
        case .reply(let reply):
            return xml(reply)
        case .reset:
            context.channel.close(mode: .all, promise: nil)
            return Response(status: .internalServerError)
        }
    }

    static func xml(_ reply: EC2Reply) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/xml;charset=UTF-8"
        headers[.date] = httpDate(Date())
        return Response(status: .init(code: reply.status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: reply.body)))
    }

    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }

    // MARK: Control

    static func isLoopback(_ context: SimRequestContext) -> Bool {
        guard let address = context.channel.remoteAddress?.ipAddress else { return false }
        return address.hasPrefix("127.") || address == "::1" || address.hasPrefix("::ffff:127.")
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    struct Problem: Encodable { let error: String }

    static func addControlRoutes(_ router: Router<SimRequestContext>, _ engine: SimEngine) {
        let sim = router.group("_sim")
        sim.get("events") { request, context in
            guard isLoopback(context) else { return try json(Problem(error: "the control API answers only on loopback"), status: .forbidden) }
            let since = request.uri.queryParameters.get("since").flatMap { Int($0) } ?? 0
            let instance = request.uri.queryParameters.get("instance").map { String($0) }
            return try json(engine.events(since: since, instanceID: instance))
        }
        sim.get("stats") { _, context in
            guard isLoopback(context) else { return try json(Problem(error: "the control API answers only on loopback"), status: .forbidden) }
            return try json(engine.stats())
        }
        sim.post("spot") { request, context in
            guard isLoopback(context) else { return try json(Problem(error: "the control API answers only on loopback"), status: .forbidden) }
            struct Change: Decodable { let instanceType: String; let zone: String; let product: String?; let price: Double }
            let change: Change
            do { change = try JSONDecoder().decode(Change.self, from: Data(Array(buffer: try await request.body.collect(upTo: 1 << 20)))) }
            catch { return try json(Problem(error: "expected {\"instanceType\", \"zone\", \"product\"?, \"price\"}: \(error)"), status: .badRequest) }
            guard change.price >= 0, change.price.isFinite else { return try json(Problem(error: "price must be a number from 0"), status: .badRequest) }
            engine.setSpotPrice(instanceType: change.instanceType, zone: change.zone, product: change.product ?? "Linux/UNIX", price: change.price)
            return try json(["ok": true])
        }
        sim.post("faults") { request, context in
            guard isLoopback(context) else { return try json(Problem(error: "the control API answers only on loopback"), status: .forbidden) }
            let text = String(buffer: try await request.body.collect(upTo: 1 << 20))
            do {
                // JSON is YAML: the fleet file's own reader checks it, with
                // the same messages.
                let reader = YAMLReader(file: "POST /_sim/faults")
                let faults = try FleetSpec.parseFaults(try reader.load(text), reader: reader, context: "faults")
                engine.setFaults(faults)
                return try json(["ok": true])
            } catch {
                return try json(Problem(error: "\(error)"), status: .badRequest)
            }
        }
        sim.post("fleet") { request, context in
            guard isLoopback(context) else { return try json(Problem(error: "the control API answers only on loopback"), status: .forbidden) }
            let text = String(buffer: try await request.body.collect(upTo: 16 << 20))
            do {
                let reader = YAMLReader(file: "POST /_sim/fleet")
                let fields = try reader.mapping(try reader.load(text), "the request", allowed: ["groups", "interrupt"])
                var result: [String: [String]] = [:]
                if let groupsNode = fields["groups"] {
                    var groups: [GroupSpec] = []
                    for (index, node) in try reader.sequence(groupsNode, "groups").enumerated() {
                        groups.append(try FleetSpec.parseGroup(node, reader: reader, index: index))
                    }
                    result["added"] = engine.addGroups(groups)
                }
                if let node = fields["interrupt"] {
                    let parts = try reader.mapping(node, "interrupt", allowed: ["instanceIds", "behavior"])
                    guard let idsNode = parts["instanceIds"] else { throw reader.fail(node, "interrupt needs instanceIds") }
                    let ids = try reader.sequence(idsNode, "interrupt.instanceIds").map { (n) throws(FleetFileError) in try reader.string(n, "instanceIds") }
                    let behavior = try parts["behavior"].map { (n) throws(FleetFileError) in try reader.string(n, "interrupt.behavior") } ?? "terminate"
                    guard ["stop", "hibernate", "terminate"].contains(behavior) else {
                        throw reader.fail(parts["behavior"], "interrupt.behavior must be stop, hibernate or terminate")
                    }
                    try engine.interrupt(ids, behavior: behavior)
                    result["interrupted"] = ids
                }
                return try json(result)
            } catch let error as FleetFileError {
                return try json(Problem(error: error.description), status: .badRequest)
            } catch let error as SimAPIError {
                return try json(Problem(error: "\(error.code): \(error.message)"), status: .badRequest)
            }
        }
    }
}

/// Asks a running simulator to shut down gracefully (finish answering,
/// close listeners) instead of cancelling it mid-request.
public final class SimShutdown: Sendable {
    private let state = Mutex<(group: ServiceGroup?, requested: Bool)>((nil, false))

    public init() {}

    func attach(_ group: ServiceGroup) async {
        let requested = state.withLock { state -> Bool in
            state.group = group
            return state.requested
        }
        if requested { await group.triggerGracefulShutdown() }
    }

    public func trigger() async {
        let group = state.withLock { state -> ServiceGroup? in
            state.requested = true
            return state.group
        }
        await group?.triggerGracefulShutdown()
    }
}

/// A simulator running in this process, for tests and the demo.
public final class RunningSimulator: Sendable {
    public let engine: SimEngine
    public let port: Int
    private let task: Task<Void, any Error>
    private let shutdown: SimShutdown

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    init(engine: SimEngine, port: Int, task: Task<Void, any Error>, shutdown: SimShutdown) {
        self.engine = engine
        self.port = port
        self.task = task
        self.shutdown = shutdown
    }

    /// Starts a server on 127.0.0.1 (an ephemeral port unless given) and
    /// returns once it is listening.
    public static func start(engine: SimEngine, port: Int = 0, logger: Logger = Logger(label: "torpor.sim")) async throws -> RunningSimulator {
        let ready = AsyncStream<Int>.makeStream()
        let shutdown = SimShutdown()
        let task = Task {
            defer { ready.continuation.finish() }
            try await SimServer.run(engine: engine, host: "127.0.0.1", port: port, logger: logger, handleSignals: false,
                                    shutdown: shutdown) { port in
                ready.continuation.yield(port)
            }
        }
        for await bound in ready.stream {
            return RunningSimulator(engine: engine, port: bound, task: task, shutdown: shutdown)
        }
        // The server ended before it listened: report why.
        try await task.value
        throw SimAPIError("ServerDidNotStart", "the simulator stopped before it was listening")
    }

    public func stop() async {
        await shutdown.trigger()
        _ = await task.result
    }
}
