import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// TCP listeners on instances' private addresses, opened when an instance is
/// reachable and closed when it stops. A TCP probe only needs the connect to
/// succeed; anything sent on the connection (an HTTP probe's GET) is
/// answered `200 OK` and the connection closed.
///
/// Binds are asynchronous (never blocking the caller); each address keeps
/// the state it should be in, so a close that arrives while a bind is under
/// way closes the listener as soon as it exists.
final class ProbeListeners: Sendable {
    private struct Entry {
        var wanted = false
        var binding = false
        var channel: (any Channel)?
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let group = MultiThreadedEventLoopGroup.singleton
    /// When each listener last started accepting, on the simulator's clock:
    /// a port opens on the next tick and after a bind, a little after its
    /// recorded moment (more on a loaded machine).
    private let opened = Mutex<[String: Double]>([:])
    private let now: @Sendable () -> Double

    init(now: @escaping @Sendable () -> Double) {
        self.now = now
        Self.raiseOpenFileLimit()
    }

    /// When `address:port` last started accepting connections.
    func openedAt(address: String, port: Int) -> Double? {
        opened.withLock { $0["\(address):\(port)"] }
    }

    /// Thousands of listeners need thousands of descriptors: take the hard
    /// limit as the soft one.
    static func raiseOpenFileLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    func apply(_ changes: [ProbeChange]) {
        for change in changes {
            let key = "\(change.address):\(change.port)"
            let action = entries.withLock { entries -> (bind: Bool, close: (any Channel)?) in
                var entry = entries[key] ?? Entry()
                entry.wanted = change.open
                var result: (bind: Bool, close: (any Channel)?) = (false, nil)
                if change.open, entry.channel == nil, !entry.binding {
                    entry.binding = true
                    result.bind = true
                } else if !change.open, let channel = entry.channel {
                    entry.channel = nil
                    result.close = channel
                }
                entries[key] = entry
                return result
            }
            action.close?.close(promise: nil)
            if action.bind { bind(key: key, address: change.address, port: change.port) }
        }
    }

    private func bind(key: String, address: String, port: Int) {
        ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ProbeResponder()) }
            }
            .bind(host: address, port: port)
            .whenComplete { [self] result in
                let extra = entries.withLock { entries -> (any Channel)? in
                    var entry = entries[key] ?? Entry()
                    entry.binding = false
                    defer { entries[key] = entry }
                    guard case .success(let channel) = result else { return nil }
                    if entry.wanted {
                        entry.channel = channel
                        let time = now()
                        opened.withLock { $0[key] = time }
                        return nil
                    }
                    return channel
                }
                extra?.close(promise: nil)
                // A close then an open while binding: the bind above already
                // satisfied the open; nothing else to do.
            }
    }

    func closeAll() {
        let channels = entries.withLock { entries -> [any Channel] in
            defer { entries = [:] }
            return entries.values.compactMap(\.channel)
        }
        for channel in channels { channel.close(promise: nil) }
    }
}

/// Answers the first bytes of a connection with a minimal HTTP 200 and
/// closes it.
final class ProbeResponder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var answered = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        answered = true
        let body = "ok\n"
        let response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
        let buffer = context.channel.allocator.buffer(string: response)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }
}
