import Foundation
import Testing
@testable import TorporSigV4

/// One test (or one parameterised test) per Signature Version 4 rule, each
/// checking the exact bytes the rule produces.
@Suite("SigV4 rules")
struct SignerRuleTests {
    static let credentials = AWSCredentials(
        accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    static let date = SigningDate(amzDate: "20150830T123600Z")!

    /// The parts of a canonical request, split at its newlines.
    struct Parts {
        let method: String
        let uri: String
        let query: String
        let headerLines: [String]
        let signedHeaders: String
        let payloadHash: String

        init(_ canonical: String) {
            let lines = canonical.components(separatedBy: "\n")
            precondition(lines.count >= 6, "canonical request too short: \(canonical)")
            method = lines[0]
            uri = lines[1]
            query = lines[2]
            headerLines = Array(lines[3..<(lines.count - 3)])
            // The header block ends with its own newline, then the separator.
            precondition(lines[lines.count - 3].isEmpty, "no blank line after the headers: \(canonical)")
            signedHeaders = lines[lines.count - 2]
            payloadHash = lines[lines.count - 1]
        }

        func header(_ name: String) -> String? {
            headerLines.first { $0.hasPrefix(name + ":") }.map { String($0.dropFirst(name.count + 1)) }
        }
    }

    static func sign(_ url: String, method: String = "GET", headers: HTTPHeaders = HTTPHeaders(),
                     payload: SigV4Payload = .empty, options: SigV4Signer.Options = .init(),
                     credentials: AWSCredentials = credentials) throws -> SignedRequest {
        let signer = SigV4Signer(region: "us-east-1", service: "service", options: options)
        let request = SigV4Request(method: method, url: try RequestURL(parsing: url), headers: headers, payload: payload)
        return signer.sign(request, credentials: credentials, date: date)
    }

    static func parts(_ url: String, method: String = "GET", headers: HTTPHeaders = HTTPHeaders(),
                      payload: SigV4Payload = .empty, options: SigV4Signer.Options = .init()) throws -> Parts {
        Parts(try sign(url, method: method, headers: headers, payload: payload, options: options).canonicalRequest)
    }

    // MARK: Canonical URI

    @Test("the canonical URI encodes the path a second time", arguments: [
        ("/a%20b", "/a%2520b"),
        ("/a b", "/a%20b"),
        ("/%E1%88%B4", "/%25E1%2588%25B4"),
        ("/ሴ", "/%E1%88%B4"),
        ("/ü/é", "/%C3%BC/%C3%A9"),
        ("/-._~", "/-._~"),
        ("/a+b=c&d", "/a%2Bb%3Dc%26d"),
        ("/%2F", "/%252F"),
        ("/a:b@c", "/a%3Ab%40c"),
    ])
    func uriDoubleEncoding(path: String, expected: String) throws {
        let parts = try Self.parts("https://example.amazonaws.com" + path)
        #expect(parts.uri == expected)
    }

    @Test("the path is normalised: dot segments resolved, empty segments dropped", arguments: [
        ("//a/./b/../c/", "/a/c/"),
        ("/a/b/..", "/a"),
        ("/a/..", "/"),
        ("/..", "/"),
        ("/../../a", "/a"),
        ("/./", "/"),
        ("/a//b///c", "/a/b/c"),
        ("/a/./b/.", "/a/b"),
        ("/example/..", "/"),
        ("/example/../", "/"),
        ("/a/.../b", "/a/.../b"),
        ("/", "/"),
        ("", "/"),
    ])
    func pathNormalisation(path: String, expected: String) throws {
        let parts = try Self.parts("https://example.amazonaws.com" + path)
        #expect(parts.uri == expected)
        #expect(Canonical.normalizedPath(path) == expected)
    }

    @Test("without normalisation the path is kept as sent, raw bytes encoded and escapes kept", arguments: [
        ("//a/./b/../c/", "//a/./b/../c/"),
        ("/a b", "/a%20b"),
        ("/ü", "/%C3%BC"),
        ("/a%20b", "/a%20b"),
        ("/a%2fb", "/a%2fb"),
        ("/100%", "/100%25"),
        ("/a%2", "/a%252"),
        ("/a%zz", "/a%25zz"),
        ("/a+b", "/a%2Bb"),
        ("/~-._", "/~-._"),
    ])
    func pathKeptWithoutNormalisation(path: String, expected: String) throws {
        let parts = try Self.parts("https://example.amazonaws.com" + path, options: .init(normalizePath: false))
        #expect(parts.uri == expected)
    }

    @Test("an empty path without normalisation is /")
    func emptyPathWithoutNormalisation() {
        var out: [UInt8] = []
        Canonical.appendURI("", normalize: false, to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "/")
    }

    // MARK: Canonical query

    @Test("the canonical query is decoded, re-encoded and sorted by key then value", arguments: [
        ("b=2&a=1", "a=1&b=2"),
        ("a=2&a=1&a=10", "a=1&a=10&a=2"),
        ("x=a+b", "x=a%20b"),
        ("x=a%20b", "x=a%20b"),
        ("x=%2B", "x=%2B"),
        ("x=a/b:c@d", "x=a%2Fb%3Ac%40d"),
        ("flag&b=1", "b=1&flag="),
        ("flag=&b=", "b=&flag="),
        ("k=%7e%7E", "k=~~"),
        ("k=%2f", "k=%2F"),
        ("k=ü", "k=%C3%BC"),
        ("k=100%", "k=100%25"),
        ("k=a%zz", "k=a%25zz"),
        ("k=a=b", "k=a%3Db"),
        ("a&&b", "a=&b="),
        ("", ""),
        // Sorted by the encoded key: '%' (0x25) < '-' (0x2D) < 'B' (0x42) < '~',
        // and a raw 'é' (0xC3) would sort last but encodes as %C3%A9.
        ("a~=1&aB=2&a-b=3&a%20b=4&a%C3%A9=5", "a%20b=4&a%C3%A9=5&a-b=3&aB=2&a~=1"),
    ])
    func canonicalQuery(query: String, expected: String) throws {
        let parts = try Self.parts("https://example.amazonaws.com/?" + query)
        #expect(parts.query == expected)
    }

    @Test("a URL without ? has an empty canonical query")
    func noQuery() throws {
        #expect(try Self.parts("https://example.amazonaws.com/p").query == "")
    }

    // MARK: Canonical headers

    @Test("header names are lower-cased and sorted")
    func headersLowercasedAndSorted() throws {
        let parts = try Self.parts("https://example.amazonaws.com/", headers: [
            "Zeta": "z", "alpha": "a", "My-Header": "m", "X-AMZ-Meta": "x",
        ])
        #expect(parts.headerLines == [
            "alpha:a", "host:example.amazonaws.com", "my-header:m", "x-amz-date:20150830T123600Z",
            "x-amz-meta:x", "zeta:z",
        ])
        #expect(parts.signedHeaders == "alpha;host;my-header;x-amz-date;x-amz-meta;zeta")
    }

    @Test("repeated headers are joined with commas in the order given")
    func repeatedHeaders() throws {
        let parts = try Self.parts("https://example.amazonaws.com/", headers: HTTPHeaders([
            ("My-Header1", "value2"), ("A", "1"), ("my-header1", "value1"), ("MY-HEADER1", "value3"),
        ]))
        #expect(parts.header("my-header1") == "value2,value1,value3")
        #expect(parts.signedHeaders == "a;host;my-header1;x-amz-date")
    }

    @Test("header values are trimmed and inner whitespace collapsed", arguments: [
        ("  a   b  ", "a b"),
        ("a\t\tb", "a b"),
        ("\ta \t b\t", "a b"),
        ("value1\n  value2", "value1 value2"),
        ("a\r\n\tb", "a b"),
        ("plain", "plain"),
        ("   ", ""),
        ("", ""),
        ("\"a   b\"", "\"a b\""),
    ])
    func headerValuesTrimmed(value: String, expected: String) throws {
        let parts = try Self.parts("https://example.amazonaws.com/", headers: ["X-Test": value])
        #expect(parts.header("x-test") == expected)
        #expect(Canonical.trimmedValue(value) == Array(expected.utf8))
    }

    @Test("hop-by-hop and client headers are not signed", arguments: [
        "User-Agent", "Expect", "X-Amzn-Trace-Id", "Connection", "Transfer-Encoding", "Authorization",
        "keep-alive", "Proxy-Authorization", "TE", "Upgrade",
    ])
    func unsignedHeaders(name: String) throws {
        let signed = try Self.sign("https://example.amazonaws.com/", headers: HTTPHeaders([(name, "v"), ("X-Kept", "k")]))
        let parts = Parts(signed.canonicalRequest)
        #expect(parts.signedHeaders == "host;x-amz-date;x-kept")
        #expect(parts.header(name.lowercased()) == nil)
        #expect(Canonical.isUnsigned(name))
    }

    @Test("an Authorization header given is replaced, not signed or duplicated")
    func authorizationReplaced() throws {
        let signed = try Self.sign("https://example.amazonaws.com/", headers: ["authorization": "stale"])
        let values = signed.headers.fields.filter { $0.name.lowercased() == "authorization" }.map(\.value)
        #expect(values == [signed.authorization])
        #expect(signed.authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature="))
    }

    @Test("similar names that are signed", arguments: ["User-Agent2", "X-User-Agent", "Te2", "T"])
    func lookalikeHeadersSigned(name: String) throws {
        let parts = try Self.parts("https://example.amazonaws.com/", headers: HTTPHeaders([(name, "v")]))
        #expect(parts.header(name.lowercased()) == "v")
        #expect(!Canonical.isUnsigned(name))
    }

    // MARK: Host

    @Test("host is added, with the port only when it is not the default", arguments: [
        ("http://h:8080/", "h:8080"),
        ("https://h:443/", "h"),
        ("http://h:80/", "h"),
        ("https://h:80/", "h:80"),
        ("http://h:443/", "h:443"),
        ("https://H.Example.COM/", "h.example.com"),
        ("http://[::1]:8080/", "[::1]:8080"),
        ("https://[::1]/", "[::1]"),
    ])
    func hostHeader(url: String, expected: String) throws {
        let signed = try Self.sign(url)
        #expect(Parts(signed.canonicalRequest).header("host") == expected)
        #expect(signed.headers["Host"] == expected)
    }

    @Test("a Host header given is kept and not added twice")
    func explicitHostKept() throws {
        let signed = try Self.sign("https://h:8443/", headers: ["host": "other.example"])
        #expect(signed.headers.fields.filter { $0.name.lowercased() == "host" }.map(\.value) == ["other.example"])
        #expect(Parts(signed.canonicalRequest).header("host") == "other.example")
    }

    // MARK: X-Amz-Date

    @Test("X-Amz-Date is added")
    func amzDateAdded() throws {
        let signed = try Self.sign("https://example.amazonaws.com/")
        #expect(signed.headers["X-Amz-Date"] == "20150830T123600Z")
        #expect(Parts(signed.canonicalRequest).header("x-amz-date") == "20150830T123600Z")
        #expect(signed.stringToSign.components(separatedBy: "\n")[1] == "20150830T123600Z")
    }

    @Test("an X-Amz-Date given is replaced, every copy")
    func amzDateReplaced() throws {
        let signed = try Self.sign("https://example.amazonaws.com/", headers: HTTPHeaders([
            ("x-amz-date", "20000101T000000Z"), ("X-Other", "o"), ("X-AMZ-DATE", "19990101T000000Z"),
        ]))
        let values = signed.headers.fields.filter { $0.name.lowercased() == "x-amz-date" }.map(\.value)
        #expect(values == ["20150830T123600Z"])
        #expect(Parts(signed.canonicalRequest).header("x-amz-date") == "20150830T123600Z")
    }

    // MARK: Session token

    @Test("a session token is signed by default")
    func sessionTokenSigned() throws {
        let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret", sessionToken: "TOKEN")
        let signed = try Self.sign("https://example.amazonaws.com/", credentials: credentials)
        let parts = Parts(signed.canonicalRequest)
        #expect(parts.signedHeaders == "host;x-amz-date;x-amz-security-token")
        #expect(parts.header("x-amz-security-token") == "TOKEN")
        #expect(signed.headers["X-Amz-Security-Token"] == "TOKEN")
    }

    @Test("with signSecurityToken false the token is added after signing")
    func sessionTokenAddedAfter() throws {
        let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret", sessionToken: "TOKEN")
        let signed = try Self.sign("https://example.amazonaws.com/", options: .init(signSecurityToken: false), credentials: credentials)
        let parts = Parts(signed.canonicalRequest)
        #expect(parts.signedHeaders == "host;x-amz-date")
        #expect(parts.header("x-amz-security-token") == nil)
        #expect(signed.headers["X-Amz-Security-Token"] == "TOKEN")
        // The same signature as a request without a token.
        let plain = try Self.sign("https://example.amazonaws.com/", credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret"))
        #expect(plain.signature == signed.signature)
    }

    @Test("an empty session token counts as none")
    func emptySessionToken() throws {
        let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret", sessionToken: "")
        #expect(credentials.sessionToken == nil)
        let signed = try Self.sign("https://example.amazonaws.com/", credentials: credentials)
        #expect(signed.headers["X-Amz-Security-Token"] == nil)
    }

    @Test("an X-Amz-Security-Token header given is not duplicated")
    func sessionTokenHeaderGiven() throws {
        let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret", sessionToken: "TOKEN")
        let signed = try Self.sign("https://example.amazonaws.com/", headers: ["X-Amz-Security-Token": "GIVEN"], credentials: credentials)
        #expect(signed.headers.fields.filter { $0.name.lowercased() == "x-amz-security-token" }.map(\.value) == ["GIVEN"])
    }

    // MARK: Payload

    @Test("payload hashes")
    func payloadHashes() throws {
        #expect(try Self.parts("https://h/").payloadHash == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(try Self.parts("https://h/", payload: .bytes([])).payloadHash == SigV4Payload.emptyHash)
        #expect(try Self.parts("https://h/", payload: .unsigned).payloadHash == "UNSIGNED-PAYLOAD")
        #expect(try Self.parts("https://h/", payload: .bytes(Array("abc".utf8))).payloadHash
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(try Self.parts("https://h/", payload: .precomputedHash("0123abcd")).payloadHash == "0123abcd")
    }

    @Test("the method is upper-cased")
    func methodUppercased() throws {
        #expect(try Self.parts("https://h/", method: "post").method == "POST")
    }

    // MARK: Known answers

    @Test("the AWS documentation's IAM ListUsers example")
    func iamListUsersExample() throws {
        let signer = SigV4Signer(region: "us-east-1", service: "iam")
        let request = SigV4Request(
            method: "GET", url: try RequestURL(parsing: "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08"),
            headers: ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"])
        let signed = signer.sign(request, credentials: Self.credentials, date: Self.date)
        #expect(signed.canonicalRequest == """
            GET
            /
            Action=ListUsers&Version=2010-05-08
            content-type:application/x-www-form-urlencoded; charset=utf-8
            host:iam.amazonaws.com
            x-amz-date:20150830T123600Z

            content-type;host;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
        #expect(signed.stringToSign == """
            AWS4-HMAC-SHA256
            20150830T123600Z
            20150830/us-east-1/iam/aws4_request
            f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59
            """)
        #expect(signed.signature == "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")
    }

    @Test("the S3 documentation's GET object example (no normalisation, precomputed hash)")
    func s3GetObjectExample() throws {
        let signer = SigV4Signer(region: "us-east-1", service: "s3", options: .init(normalizePath: false))
        let request = SigV4Request(
            method: "GET", url: try RequestURL(parsing: "https://examplebucket.s3.amazonaws.com/test.txt"),
            headers: HTTPHeaders([
                ("Range", "bytes=0-9"),
                ("x-amz-content-sha256", SigV4Payload.emptyHash),
            ]),
            payload: .precomputedHash(SigV4Payload.emptyHash))
        let credentials = AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        let signed = signer.sign(request, credentials: credentials, date: SigningDate(amzDate: "20130524T000000Z")!)
        #expect(signed.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    // MARK: Presigning

    static func queryItems(_ url: String) -> [(String, String)] {
        guard let question = url.firstIndex(of: "?") else { return [] }
        return url[url.index(after: question)...].split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
    }

    @Test("a presigned URL carries the auth parameters and ends with the signature")
    func presignParameters() throws {
        let signer = SigV4Signer(region: "us-east-1", service: "service")
        let request = SigV4Request(method: "GET", url: try RequestURL(parsing: "https://example.amazonaws.com:8443/p?b=2&a=1"))
        let presigned = try signer.presign(request, credentials: Self.credentials, date: Self.date, expires: 300)
        #expect(presigned.url.hasPrefix("https://example.amazonaws.com:8443/p?"))
        let items = Self.queryItems(presigned.url)
        let names = items.map(\.0)
        #expect(names == ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
                          "a", "b", "X-Amz-Signature"])
        let values = Dictionary(items, uniquingKeysWith: { a, _ in a })
        #expect(values["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256")
        #expect(values["X-Amz-Credential"] == "AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request")
        #expect(values["X-Amz-Date"] == "20150830T123600Z")
        #expect(values["X-Amz-Expires"] == "300")
        #expect(values["X-Amz-SignedHeaders"] == "host")
        #expect(values["X-Amz-Security-Token"] == nil)
        #expect(items.last?.1 == presigned.signature)
        #expect(presigned.signature.count == 64)
        #expect(presigned.signature.allSatisfy { "0123456789abcdef".contains($0) })

        // The canonical request holds the same parameters (without the
        // signature) and host with its port.
        let parts = Parts(presigned.canonicalRequest)
        #expect(parts.query == "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&a=1&b=2")
        #expect(parts.headerLines == ["host:example.amazonaws.com:8443"])

        // The signature is the HMAC of the string to sign under the day's key.
        let key = PreparedHMACKey(SigningKeyCache.derive(secret: Self.credentials.secretAccessKey, dateStamp: "20150830",
                                                         region: "us-east-1", service: "service"))
        let expected = Array(presigned.stringToSign.utf8).withUnsafeBytes { key.authenticate($0) }.hex
        #expect(presigned.signature == expected)
    }

    @Test("a presigned URL with a session token carries X-Amz-Security-Token")
    func presignWithToken() throws {
        let signer = SigV4Signer(region: "us-east-1", service: "service")
        let request = SigV4Request(method: "GET", url: try RequestURL(parsing: "https://example.amazonaws.com/"))
        let credentials = AWSCredentials(accessKeyID: "AKID", secretAccessKey: "secret", sessionToken: "tok/en+=")
        let presigned = try signer.presign(request, credentials: credentials, date: Self.date, expires: 60)
        let items = Self.queryItems(presigned.url)
        #expect(items.contains { $0.0 == "X-Amz-Security-Token" && $0.1 == "tok%2Fen%2B%3D" })
        #expect(items.last?.0 == "X-Amz-Signature")
        #expect(Parts(presigned.canonicalRequest).query.contains("X-Amz-Security-Token=tok%2Fen%2B%3D"))
    }

    @Test("the S3 documentation's presigned URL example")
    func s3PresignExample() throws {
        let signer = SigV4Signer(region: "us-east-1", service: "s3", options: .init(normalizePath: false))
        let request = SigV4Request(method: "GET", url: try RequestURL(parsing: "https://examplebucket.s3.amazonaws.com/test.txt"),
                                   payload: .unsigned)
        let credentials = AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
        let presigned = try signer.presign(request, credentials: credentials, date: SigningDate(amzDate: "20130524T000000Z")!, expires: 86400)
        #expect(presigned.signature == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
        #expect(presigned.url == "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    }

    @Test("presign accepts expiries of 1 to 604800 seconds", arguments: [1, 604_800])
    func presignExpiryBounds(expires: Int) throws {
        let signer = SigV4Signer(region: "us-east-1", service: "service")
        let request = SigV4Request(method: "GET", url: try RequestURL(parsing: "https://example.amazonaws.com/"))
        let presigned = try signer.presign(request, credentials: Self.credentials, date: Self.date, expires: expires)
        #expect(presigned.url.contains("X-Amz-Expires=\(expires)&"))
    }

    @Test("presign rejects expiries outside 1...604800", arguments: [0, -1, 604_801, Int.max, Int.min])
    func presignExpiryRejected(expires: Int) throws {
        let signer = SigV4Signer(region: "us-east-1", service: "service")
        let request = SigV4Request(method: "GET", url: try RequestURL(parsing: "https://example.amazonaws.com/"))
        let error = #expect(throws: SigV4Error.self) {
            try signer.presign(request, credentials: Self.credentials, date: Self.date, expires: expires)
        }
        #expect(error?.description.contains(String(expires)) == true)
    }

    // MARK: SigningDate

    @Test("SigningDate formats seconds", arguments: [
        (Int64(1_440_938_160), "20150830T123600Z", "20150830"),
        (0, "19700101T000000Z", "19700101"),
        (-1, "19691231T235959Z", "19691231"),
        (1_709_210_096, "20240229T123456Z", "20240229"),
        (951_782_400, "20000229T000000Z", "20000229"),
        (4_102_444_799, "20991231T235959Z", "20991231"),
    ])
    func signingDateFormat(seconds: Int64, amz: String, stamp: String) {
        let date = SigningDate(secondsSinceEpoch: seconds)
        #expect(date.amzDate == amz)
        #expect(date.dateStamp == stamp)
        #expect(date.description == amz)
        #expect(SigningDate(amzDate: amz) == date)
    }

    @Test("SigningDate rejects text that is not a real YYYYMMDDTHHMMSSZ", arguments: [
        "20230229T000000Z", "19000229T000000Z", "20150830T246000Z", "20150830T240000Z", "20150830T236000Z",
        "20150830T235960Z", "20151301T000000Z", "20150001T000000Z", "20150800T000000Z", "20150431T000000Z",
        "20150830T123600", "20150830T123600ZZ", "2015083T123600Z", "", "20150830X123600Z", "20150830T123600z",
        "2015-8-30T12360Z", "20150830T12:600Z", "+0150830T123600Z", "２0150830T123600Z",
    ])
    func signingDateRejects(text: String) {
        #expect(SigningDate(amzDate: text) == nil)
    }

    @Test("SigningDate agrees with Foundation's calendar over a wide range")
    func signingDateAgreesWithFoundation() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = try #require(TimeZone(identifier: "UTC"))
        var seconds: Int64 = -2_208_988_800 // 1900-01-01
        while seconds < 7_258_118_400 { // 2200-01-01
            let date = SigningDate(secondsSinceEpoch: seconds)
            let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second],
                                            from: Date(timeIntervalSince1970: TimeInterval(seconds)))
            let expected = String(format: "%04d%02d%02dT%02d%02d%02dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
            #expect(date.amzDate == expected, "seconds \(seconds)")
            #expect(SigningDate(amzDate: expected)?.secondsSinceEpoch == seconds)
            seconds += 86_400 * 7 + 3_607
        }
    }

    // MARK: RequestURL

    @Test("RequestURL parses scheme, host, port, path and query", arguments: [
        ("http://[::1]:8080/x", "http", "[::1]", 8080 as Int?, "/x", nil as String?, "[::1]:8080"),
        ("https://[::1]/", "https", "[::1]", nil, "/", nil, "[::1]"),
        ("https://Example.COM", "https", "example.com", nil, "/", nil, "example.com"),
        ("HTTPS://h", "https", "h", nil, "/", nil, "h"),
        ("https://h?x=1", "https", "h", nil, "/", "x=1", "h"),
        ("https://h/p?", "https", "h", nil, "/p", "", "h"),
        ("https://h/p#frag", "https", "h", nil, "/p", nil, "h"),
        ("https://h/p?q=1#frag", "https", "h", nil, "/p", "q=1", "h"),
        ("https://user:pw@h:9000/p", "https", "h", 9000, "/p", nil, "h:9000"),
        ("http://h:80/a b/ü?k=v w", "http", "h", 80, "/a b/ü", "k=v w", "h"),
        ("https://h:443", "https", "h", 443, "/", nil, "h"),
        ("http://h:65535/", "http", "h", 65535, "/", nil, "h:65535"),
        ("http://h:1/", "http", "h", 1, "/", nil, "h:1"),
        ("https://h/a?b?c", "https", "h", nil, "/a", "b?c", "h"),
    ])
    func requestURLParses(text: String, scheme: String, host: String, port: Int?, path: String, query: String?, hostHeader: String) throws {
        let url = try RequestURL(parsing: text)
        #expect(url.scheme == scheme)
        #expect(url.host == host)
        #expect(url.port == port)
        #expect(url.path == path)
        #expect(url.query == query)
        #expect(url.hostHeader == hostHeader)
    }

    @Test("RequestURL rejects bad URLs", arguments: [
        "ftp://h/", "h/path", "//h/", "https//h/", "https://h:abc/", "https://h:0/", "https://h:65536/", "https://h:/",
        "https://h:-1/", "https:///p", "https://:80/", "http://[::1", "http://[::1]x/", "http://[::1]:abc/",
    ])
    func requestURLRejects(text: String) {
        #expect(throws: RequestURL.ParseError.self) { try RequestURL(parsing: text) }
    }

    @Test("RequestURL rejects out-of-range ports after an IPv6 address",
          arguments: ["http://[::1]:0/", "http://[::1]:70000/", "http://[::1]:-5/"])
    func requestURLRejectsIPv6PortRange(text: String) {
        #expect(throws: RequestURL.ParseError.self) { try RequestURL(parsing: text) }
    }

    @Test("RequestURL's error names the URL")
    func requestURLErrorNamesURL() {
        let error = #expect(throws: RequestURL.ParseError.self) { try RequestURL(parsing: "gopher://x/") }
        #expect(error?.url == "gopher://x/")
        #expect(error?.description.contains("gopher") == true)
    }

    @Test("RequestURL's memberwise init turns an empty path into / and lower-cases the scheme")
    func requestURLInit() {
        let url = RequestURL(scheme: "HTTP", host: "h", port: 8080, path: "", query: "a=1")
        #expect(url.scheme == "http")
        #expect(url.path == "/")
        #expect(url.description == "http://h:8080/?a=1")
    }

    // MARK: Signing key

    @Test("the derived key of the AWS documentation example")
    func derivedKeyExample() {
        let key = SigningKeyCache.derive(secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", dateStamp: "20150830",
                                         region: "us-east-1", service: "iam")
        #expect(key.hex == "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9")
        #expect(key.bytes.count == 32)
    }

    @Test("the cache returns the key derive computes, for every entry, also after eviction")
    func cacheMatchesDerive() {
        let cache = SigningKeyCache()
        func check(_ secret: String, _ day: String, _ region: String, _ service: String) {
            let scoped = cache.key(secret: secret, dateStamp: day, region: region, service: service)
            #expect(scoped.key.key == SigningKeyCache.derive(secret: secret, dateStamp: day, region: region, service: service))
            #expect(scoped.scope == "\(day)/\(region)/\(service)/aws4_request")
        }
        check("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "iam")
        let first = cache.key(secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", dateStamp: "20150830", region: "us-east-1", service: "iam")
        #expect(first.key.key.hex == "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9")
        // Each field of the key on its own must select another entry.
        check("other-secret", "20150830", "us-east-1", "iam")
        check("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150831", "us-east-1", "iam")
        check("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "eu-west-1", "iam")
        check("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "ec2")
        // More entries than the cache holds, then every one asked again.
        for _ in 0..<2 {
            for index in 0..<40 {
                check("secret-\(index % 23)", "201508\(10 + index % 20)", "us-east-\(index % 3)", "ec2")
            }
        }
    }

    @Test("a prepared key authenticates as a plain HMAC does")
    func preparedKeyMatchesHMAC() {
        let key = SigningKeyCache.derive(secret: "s", dateStamp: "20240229", region: "r", service: "s")
        let message = Array("the string to sign".utf8)
        let prepared = message.withUnsafeBytes { PreparedHMACKey(key).authenticate($0) }
        let plain = message.withUnsafeBytes { Digest.hmacSHA256(key: key, data: $0) }
        #expect(prepared == plain)
    }

    // MARK: Credentials

    @Test("no textual form of AWSCredentials holds the secret or the token")
    func credentialsRedacted() {
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY-SECRET"
        let token = "FQoGZXIvYXdzE-SESSION-TOKEN"
        let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: secret, sessionToken: token, expiration: 1234)
        var dumped = ""
        dump(credentials, to: &dumped)
        var dumpedArray = ""
        dump([credentials], to: &dumpedArray)
        let forms = [
            credentials.description, credentials.debugDescription, String(describing: credentials),
            String(reflecting: credentials), "\(credentials)", dumped, dumpedArray,
            String(describing: [credentials]), String(describing: Optional(credentials)),
            String(describing: (credentials, 1)),
            Mirror(reflecting: credentials).children.map { "\($0.label ?? ""): \($0.value)" }.joined(),
        ]
        for form in forms {
            #expect(!form.contains(secret), "secret in \(form)")
            #expect(!form.contains(token), "token in \(form)")
            #expect(!form.contains("SECRET") && !form.contains("SESSION"), "part of a secret in \(form)")
        }
        #expect(credentials.description.contains("AKIDEXAMPLE"))
        #expect(credentials.description.contains("sessionToken: <redacted>"))
        #expect(AWSCredentials(accessKeyID: "A", secretAccessKey: secret).description.contains("sessionToken") == false)
    }
}
