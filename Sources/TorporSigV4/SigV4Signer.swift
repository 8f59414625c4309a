/// What a request carries as its body, for the payload hash.
public enum SigV4Payload: Sendable, Equatable {
    /// The body's bytes; the signer hashes them.
    case bytes([UInt8])
    /// A hash the caller already computed (lower-case hex SHA-256).
    case precomputedHash(String)
    /// `UNSIGNED-PAYLOAD`, as S3 allows.
    case unsigned

    public static let empty = SigV4Payload.bytes([])
    /// SHA-256 of the empty string.
    public static let emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
}

/// A request to sign: method, URL as sent on the wire, headers in order, and
/// the payload.
public struct SigV4Request: Sendable, Equatable {
    public var method: String
    public var url: RequestURL
    public var headers: HTTPHeaders
    public var payload: SigV4Payload

    public init(method: String, url: RequestURL, headers: HTTPHeaders = HTTPHeaders(), payload: SigV4Payload = .empty) {
        self.method = method
        self.url = url
        self.headers = headers
        self.payload = payload
    }
}

/// The result of header signing: the headers to send and every intermediate
/// value, for debugging and for tests that check exact bytes.
public struct SignedRequest: Sendable {
    /// The request's headers with `X-Amz-Date`, `Host` (when it was missing),
    /// `X-Amz-Security-Token` (with a session token) and `Authorization`.
    public let headers: HTTPHeaders
    public let canonicalRequestBytes: [UInt8]
    public let stringToSignBytes: [UInt8]
    public let signature: String
    public let authorization: String

    public var canonicalRequest: String { String(decoding: canonicalRequestBytes, as: UTF8.self) }
    public var stringToSign: String { String(decoding: stringToSignBytes, as: UTF8.self) }
}

/// The result of presigning: a URL that carries the signature in its query.
public struct PresignedURL: Sendable {
    public let url: String
    public let canonicalRequest: String
    public let stringToSign: String
    public let signature: String
}

public struct SigV4Error: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// AWS Signature Version 4, for any region and service.
///
/// The signer knows nothing of HTTP clients, clocks or credential sources: it
/// takes a request value, credentials and a date, and returns the signature.
public struct SigV4Signer: Sendable {
    public struct Options: Sendable, Equatable {
        /// Normalise the path and encode it a second time. True for every
        /// service but S3, which signs the path exactly as sent.
        public var normalizePath: Bool
        /// Include `X-Amz-Security-Token` in the signature. A few services
        /// want it added after signing instead.
        public var signSecurityToken: Bool

        public init(normalizePath: Bool = true, signSecurityToken: Bool = true) {
            self.normalizePath = normalizePath
            self.signSecurityToken = signSecurityToken
        }
    }

    public static let algorithm = "AWS4-HMAC-SHA256"
    /// The longest a presigned URL may live: seven days.
    public static let maximumExpiry = 604_800

    public let region: String
    public let service: String
    public let options: Options

    public init(region: String, service: String, options: Options = Options()) {
        self.region = region
        self.service = service
        self.options = options
    }

    // MARK: Header signing

    public func sign(_ request: SigV4Request, credentials: AWSCredentials, date: SigningDate) -> SignedRequest {
        var headers = request.headers
        headers.replaceOrAdd(name: "X-Amz-Date", value: date.amzDate)
        if !headers.contains("Host") {
            headers.add(name: "Host", value: request.url.hostHeader)
        }
        let addTokenAfter: Bool
        if let token = credentials.sessionToken, !headers.contains("X-Amz-Security-Token") {
            if options.signSecurityToken {
                headers.add(name: "X-Amz-Security-Token", value: token)
                addTokenAfter = false
            } else {
                addTokenAfter = true
            }
        } else {
            addTokenAfter = false
        }

        let canonicalHeaders = Canonical.headers(headers)
        let canonical = canonicalRequest(
            method: request.method, url: request.url, extraQuery: [],
            headers: canonicalHeaders, payloadHash: payloadHash(request.payload))
        let scoped = SigningKeyCache.shared.key(secret: credentials.secretAccessKey, dateStamp: date.dateStamp, region: region, service: service)
        let stringToSign = Self.stringToSign(date: date, scope: scoped.scope, canonicalRequest: canonical)
        let signature = stringToSign.withUnsafeBytes { scoped.key.authenticate($0) }

        // Built as bytes and turned into a String once: this runs per request.
        var header: [UInt8] = []
        header.reserveCapacity(160 + canonicalHeaders.signedNames.count)
        header.appendUTF8(Self.algorithm)
        header.append(contentsOf: " Credential=".utf8)
        header.appendUTF8(credentials.accessKeyID)
        header.append(UInt8(ascii: "/"))
        header.appendUTF8(scoped.scope)
        header.append(contentsOf: ", SignedHeaders=".utf8)
        header.append(contentsOf: canonicalHeaders.signedNames)
        header.append(contentsOf: ", Signature=".utf8)
        let signatureStart = header.count
        signature.appendHex(to: &header)
        let authorization = String(decoding: header, as: UTF8.self)
        let signatureHex = String(decoding: header[signatureStart...], as: UTF8.self)

        if addTokenAfter, let token = credentials.sessionToken {
            headers.add(name: "X-Amz-Security-Token", value: token)
        }
        headers.replaceOrAdd(name: "Authorization", value: authorization)
        return SignedRequest(
            headers: headers, canonicalRequestBytes: canonical, stringToSignBytes: stringToSign,
            signature: signatureHex, authorization: authorization)
    }

    // MARK: Presigning

    /// Signs the request into its URL's query (`X-Amz-Expires` seconds).
    /// Only the headers given are signed; `host` is always among them.
    public func presign(_ request: SigV4Request, credentials: AWSCredentials, date: SigningDate, expires: Int) throws(SigV4Error) -> PresignedURL {
        guard (1...Self.maximumExpiry).contains(expires) else {
            throw SigV4Error("expires must be between 1 and \(Self.maximumExpiry) seconds, not \(expires)")
        }
        var headers = request.headers
        headers.remove(name: "Authorization")
        headers.remove(name: "X-Amz-Date")
        if !headers.contains("Host") {
            headers.add(name: "Host", value: request.url.hostHeader)
        }
        let canonicalHeaders = Canonical.headers(headers)
        let scoped = SigningKeyCache.shared.key(secret: credentials.secretAccessKey, dateStamp: date.dateStamp, region: region, service: service)
        let scope = scoped.scope
        var authParameters: [(String, String)] = [
            ("X-Amz-Algorithm", Self.algorithm),
            ("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope)"),
            ("X-Amz-Date", date.amzDate),
            ("X-Amz-Expires", String(expires)),
            ("X-Amz-SignedHeaders", String(decoding: canonicalHeaders.signedNames, as: UTF8.self)),
        ]
        if let token = credentials.sessionToken {
            authParameters.append(("X-Amz-Security-Token", token))
        }
        let canonical = canonicalRequest(
            method: request.method, url: request.url, extraQuery: authParameters,
            headers: canonicalHeaders, payloadHash: payloadHash(request.payload))
        let stringToSign = Self.stringToSign(date: date, scope: scope, canonicalRequest: canonical)
        let signature = stringToSign.withUnsafeBytes { scoped.key.authenticate($0) }.hex

        // The query goes out canonically encoded, so that what was signed is
        // exactly what the server will canonicalise again.
        var query: [UInt8] = []
        Canonical.appendQuery(request.url.query, extra: authParameters, to: &query)
        var url = "\(request.url.scheme)://\(request.url.hostHeader)\(request.url.path)?"
        url += String(decoding: query, as: UTF8.self)
        url += "&X-Amz-Signature=\(signature)"
        return PresignedURL(
            url: url, canonicalRequest: String(decoding: canonical, as: UTF8.self),
            stringToSign: String(decoding: stringToSign, as: UTF8.self), signature: signature)
    }

    // MARK: Parts

    func payloadHash(_ payload: SigV4Payload) -> String {
        switch payload {
        case .bytes(let bytes): return bytes.isEmpty ? SigV4Payload.emptyHash : Digest.sha256(bytes).hex
        case .precomputedHash(let hash): return hash
        case .unsigned: return "UNSIGNED-PAYLOAD"
        }
    }

    func canonicalRequest(method: String, url: RequestURL, extraQuery: [(String, String)],
                          headers: Canonical.CanonicalHeaders, payloadHash: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128 + headers.block.count + headers.signedNames.count + url.path.utf8.count * 3
                            + (url.query?.utf8.count ?? 0) * 3)
        var method = method
        method.withUTF8 { bytes in
            for byte in bytes { out.append(byte >= 0x61 && byte <= 0x7A ? byte - 0x20 : byte) }
        }
        out.append(0x0A)
        Canonical.appendURI(url.path, normalize: options.normalizePath, to: &out)
        out.append(0x0A)
        Canonical.appendQuery(url.query, extra: extraQuery, to: &out)
        out.append(0x0A)
        out.append(contentsOf: headers.block)
        out.append(0x0A)
        out.append(contentsOf: headers.signedNames)
        out.append(0x0A)
        out.appendUTF8(payloadHash)
        return out
    }

    static func stringToSign(date: SigningDate, scope: String, canonicalRequest: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(algorithm.utf8.count + 16 + scope.utf8.count + 64 + 3)
        out.appendUTF8(algorithm)
        out.append(0x0A)
        out.appendUTF8(date.amzDate)
        out.append(0x0A)
        out.appendUTF8(scope)
        out.append(0x0A)
        Digest.sha256(canonicalRequest).appendHex(to: &out)
        return out
    }
}
