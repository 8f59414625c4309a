/// A URL as it goes on the wire, split into the parts SigV4 needs.
///
/// Foundation's URL refuses a raw space or UTF-8 in a path; a signer must
/// accept them (the spec's test suite has both) and encode them itself. The
/// path and query are kept exactly as given, percent-escapes included.
public struct RequestURL: Sendable, Equatable, CustomStringConvertible {
    public var scheme: String
    public var host: String
    public var port: Int?
    /// The path as written, `/` when the URL has none.
    public var path: String
    /// The query as written, without `?`; nil when the URL has no `?`.
    public var query: String?

    public init(scheme: String, host: String, port: Int? = nil, path: String = "/", query: String? = nil) {
        self.scheme = scheme.lowercased()
        self.host = host
        self.port = port
        self.path = path.isEmpty ? "/" : path
        self.query = query
    }

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let url: String
        public let reason: String
        public var description: String { "invalid URL '\(url)': \(reason)" }
    }

    public init(parsing text: String) throws(ParseError) {
        guard let schemeEnd = text.firstRange(of: "://") else {
            throw ParseError(url: text, reason: "expected scheme://host[:port]/path")
        }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else {
            throw ParseError(url: text, reason: "scheme must be http or https, not '\(scheme)'")
        }
        var rest = text[schemeEnd.upperBound...]
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var host = Substring(authority)
        var port: Int?
        if authority.hasPrefix("[") {
            // IPv6 literal: [::1]:8080
            guard let close = authority.firstIndex(of: "]") else {
                throw ParseError(url: text, reason: "unterminated IPv6 address")
            }
            host = authority[...close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                port = try Self.port(after.dropFirst(), in: text)
            } else if !after.isEmpty {
                throw ParseError(url: text, reason: "unexpected text after IPv6 address")
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            port = try Self.port(authority[authority.index(after: colon)...], in: text)
        }
        guard !host.isEmpty else { throw ParseError(url: text, reason: "no host") }
        let pathAndQuery = rest[authorityEnd...]
        var path = pathAndQuery
        var query: String?
        if let question = pathAndQuery.firstIndex(of: "?") {
            path = pathAndQuery[..<question]
            query = String(pathAndQuery[pathAndQuery.index(after: question)...])
        }
        self.init(scheme: scheme, host: host.lowercased(), port: port, path: String(path), query: query)
    }

    private static func port(_ text: Substring, in url: String) throws(ParseError) -> Int {
        guard text.allSatisfy(\.isASCII), let value = Int(text), (1...65535).contains(value) else {
            throw ParseError(url: url, reason: "bad port '\(text)'")
        }
        return value
    }

    /// The Host header value: the port is written only when it is not the
    /// scheme's default, as HTTP clients send it.
    public var hostHeader: String {
        guard let port, port != defaultPort else { return host }
        return "\(host):\(port)"
    }

    public var defaultPort: Int { scheme == "https" ? 443 : 80 }

    public var description: String {
        var text = "\(scheme)://\(hostHeader)\(path)"
        if let query { text += "?\(query)" }
        return text
    }
}
