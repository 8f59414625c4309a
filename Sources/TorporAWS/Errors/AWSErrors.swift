/// An error the service answered with: EC2's `<Response><Errors><Error>`.
public struct AWSServiceError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: String
    public let message: String
    public let requestID: String?
    public let httpStatus: Int

    public init(code: String, message: String, requestID: String?, httpStatus: Int) {
        self.code = code
        self.message = message
        self.requestID = requestID
        self.httpStatus = httpStatus
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let requestID { text += " (request id \(requestID))" }
        return text
    }
}

/// A response that could not be understood: not XML, truncated, or not the
/// shape the operation expects. Keeps the body so the cause can be seen.
public struct AWSResponseError: Error, Sendable, CustomStringConvertible {
    public let action: String
    public let httpStatus: Int
    public let reason: String
    public let body: [UInt8]

    public init(action: String, httpStatus: Int, reason: String, body: [UInt8]) {
        self.action = action
        self.httpStatus = httpStatus
        self.reason = reason
        self.body = body
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }

    public var description: String {
        let preview = String(decoding: body.prefix(300), as: UTF8.self)
        return "\(action): unreadable response (HTTP \(httpStatus)): \(reason)" + (preview.isEmpty ? "" : "; body: \(preview)")
    }
}

/// Configuration that cannot be used: no region, a bad endpoint URL.
public struct AWSConfigurationError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
