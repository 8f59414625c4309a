public import TorporSigV4

/// An HTTP request as the transport sends it: every header is one the caller
/// set (and, for AWS calls, signed).
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: RequestURL
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Overrides the transport's total timeout for this request.
    public var timeout: Duration?

    public init(method: String, url: RequestURL, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [], timeout: Duration? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// Throws `HTTPStatusError` unless the status is 2xx.
    public func checkedStatus() throws(HTTPStatusError) -> HTTPResponse {
        guard (200..<300).contains(status) else { throw HTTPStatusError(status: status, body: body) }
        return self
    }
}

/// Sends HTTP requests. Implementations never block the calling task's
/// thread, and abort the transfer when the calling task is cancelled.
public protocol HTTPTransport: Sendable {
    /// Returns the response for any status; throws `TransportError` when no
    /// response arrived, or `CancellationError`.
    func send(_ request: HTTPRequest) async throws -> HTTPResponse
}

/// A failure to get any response at all.
public struct TransportError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The host could not be resolved or connected to: nothing was sent.
        case connectionFailed
        /// No complete answer in time.
        case timeout
        /// The TLS handshake or certificate check failed.
        case tls
        /// The connection broke while the request or response was under way.
        case connectionReset
        /// The response was larger than the transport accepts.
        case responseTooLarge
        /// Anything else libcurl reports.
        case other
    }

    public let kind: Kind
    public let message: String
    /// True when the server may have received and acted on the request, so
    /// that retrying a non-idempotent request could repeat it.
    public let mayHaveBeenSent: Bool
    public let url: String

    public init(kind: Kind, message: String, mayHaveBeenSent: Bool, url: String) {
        self.kind = kind
        self.message = message
        self.mayHaveBeenSent = mayHaveBeenSent
        self.url = url
    }

    public var description: String {
        let what: String
        switch kind {
        case .connectionFailed: what = "could not connect"
        case .timeout: what = "timed out"
        case .tls: what = "TLS failure"
        case .connectionReset: what = "connection broken"
        case .responseTooLarge: what = "response too large"
        case .other: what = "transport error"
        }
        return "\(what) (\(url)): \(message)"
    }
}

/// A response whose status is not 2xx, with its body kept.
public struct HTTPStatusError: Error, Sendable, CustomStringConvertible {
    public let status: Int
    public let body: [UInt8]

    public var description: String {
        let text = String(decoding: body.prefix(512), as: UTF8.self)
        return "HTTP \(status)" + (text.isEmpty ? "" : ": \(text)")
    }
}
