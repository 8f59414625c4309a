import Foundation
import Testing
@testable import TorporSigV4
import TorporTestSupport

/// Signs ~200 seeded random requests both with `SigV4Signer` and with
/// botocore's `SigV4Auth`, and compares the canonical requests and the
/// Authorization headers byte for byte.
///
/// Only requests on which botocore and the SigV4 spec agree are generated:
/// - no `Date`, `Host`-less quirks, `X-Amz-Content-SHA256` or headers either
///   side leaves unsigned;
/// - header values are printable ASCII with spaces and tabs only (botocore's
///   `str.split()` also treats \v, \f and Unicode spaces as whitespace);
/// - header names are unique ignoring case (botocore is handed a dict);
/// - query keys are unique (botocore is handed a dict of decoded parameters);
/// - no path ends in a space (Python's urlsplit strips it) and no path holds
///   `?`, `#`, tabs or newlines.
@Suite("botocore cross-check")
struct BotocoreCrossCheckTests {
    /// SplitMix64: small, fast and the same on every platform.
    struct SplitMix64 {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func int(_ range: ClosedRange<Int>) -> Int {
            range.lowerBound + Int(next() % UInt64(range.upperBound - range.lowerBound + 1))
        }
        mutating func chance(_ percent: Int) -> Bool { int(0...99) < percent }
        mutating func pick<T>(_ items: [T]) -> T { items[int(0...(items.count - 1))] }
    }

    /// One request, as both signers get it.
    struct Case: Codable {
        var method: String
        /// scheme://host[:port]/path, without the query (botocore's url).
        var baseURL: String
        /// The query as it goes on the wire (Torpor parses it from the URL).
        var encodedQuery: String
        /// Decoded parameters (botocore's params).
        var params: [[String]]
        var headers: [[String]]
        var body: String // base64
        var key: String
        var secret: String
        var token: String?
        var region: String
        var service: String
        var date: String

        var fullURL: String { encodedQuery.isEmpty ? baseURL : baseURL + "?" + encodedQuery }
    }

    struct Coverage {
        var pathSpace = 0, pathUTF8 = 0, pathEscape = 0, pathDots = 0, pathDoubleSlash = 0, noPath = 0
        var queryPlus = 0, queryUTF8 = 0, queryReserved = 0, queryEmptyValue = 0, queryNoEquals = 0
        var explicitPort = 0, defaultPort = 0, http = 0, token = 0, body = 0, headerRuns = 0, hostHeader = 0
    }

    static let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)

    static func percentEncode(_ text: String, random: inout SplitMix64, isKey: Bool, coverage: inout Coverage) -> String {
        // Sub-delimiters that may go raw in a query: Torpor only splits on
        // & and = and decodes %XX and +.
        let mayStayRaw = Set((isKey ? "!$'()*,/:;@?" : "!$'()*,/:;@?=").utf8)
        var out = ""
        for byte in text.utf8 {
            if unreserved.contains(byte) {
                out.append(Character(UnicodeScalar(byte)))
            } else if byte == UInt8(ascii: " ") && random.chance(50) {
                out += "+"
                coverage.queryPlus += 1
            } else if mayStayRaw.contains(byte) && random.chance(40) {
                out.append(Character(UnicodeScalar(byte)))
            } else {
                let hex = String(byte, radix: 16, uppercase: random.chance(70))
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }

    static func randomText(_ random: inout SplitMix64, pool: [String], length: ClosedRange<Int>) -> String {
        var text = ""
        for _ in 0..<random.int(length) { text += random.pick(pool) }
        return text
    }

    static func generate(count: Int, seed: UInt64) -> (cases: [Case], coverage: Coverage) {
        var random = SplitMix64(seed: seed)
        var coverage = Coverage()
        var cases: [Case] = []
        let letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".map(String.init)
        let pathPool = letters + ["-", "_", ".", "~", " ", "ü", "日本", "é", "%20", "%2F", "%41", "%e2%82%ac", "!", "$", "&",
                                  "'", "(", ")", "*", "+", ",", ";", "=", ":", "@"]
        let keyPool = letters + ["-", "_", ".", "~", " ", "ü", "/", ":", "!", "*", "(", "+", "&", "=", "%", "#", "@"]
        let valuePool = letters + ["-", "_", ".", "~", " ", " ", "é", "日", "€", "!", "#", "$", "&", "'", "(", ")", "*", "+", ",",
                                   "/", ":", ";", "=", "?", "@", "[", "]", "%", "\"", "<", ">", "^", "`", "{", "|", "}"]
        let headerWords = ["text/plain", "a", "b=c", "x,y", "\"quoted\"", "1", "value", "gzip", "UTF-8", "(c)", ";", "k:v"]
        let headerNames = ["Content-Type", "Accept", "Cache-Control", "X-Amz-Target", "X-Amz-Meta-Color", "X-Custom",
                           "Content-Encoding", "If-None-Match", "X-Forwarded-For", "Accept-Language", "Content-Length",
                           "X-Api-Version", "My-Header1", "ZZ-Last", "A"]
        let hosts = ["example.amazonaws.com", "ec2.us-west-2.amazonaws.com", "LOCALHOST", "127.0.0.1", "My-Host.Example.COM",
                     "s3.eu-central-1.amazonaws.com"]

        for _ in 0..<count {
            let scheme = random.chance(35) ? "http" : "https"
            if scheme == "http" { coverage.http += 1 }
            let host = random.pick(hosts)
            var authority = host
            switch random.int(0...3) {
            case 0:
                authority += ":" + (scheme == "https" ? "443" : "80")
                coverage.defaultPort += 1
            case 1:
                authority += ":\(random.int(1024...65535))"
                coverage.explicitPort += 1
            default: break
            }

            // Path.
            var path = ""
            if random.chance(8) {
                coverage.noPath += 1
            } else {
                for _ in 0..<random.int(0...5) {
                    let segment: String
                    switch random.int(0...9) {
                    case 0: segment = "."; coverage.pathDots += 1
                    case 1: segment = ".."; coverage.pathDots += 1
                    case 2: segment = ""; coverage.pathDoubleSlash += 1
                    default: segment = randomText(&random, pool: pathPool, length: 1...8)
                    }
                    path += "/" + segment
                }
                if path.isEmpty || random.chance(20) { path += "/" }
                if path.hasSuffix(" ") { path += "e" }
                if path.contains(" ") { coverage.pathSpace += 1 }
                if path.utf8.contains(where: { $0 >= 0x80 }) { coverage.pathUTF8 += 1 }
                if path.contains("%") { coverage.pathEscape += 1 }
            }

            // Query: unique keys.
            var params: [[String]] = []
            var parts: [String] = []
            var seenKeys = Set<String>()
            for _ in 0..<random.int(0...5) {
                let key = randomText(&random, pool: keyPool, length: 1...6)
                guard seenKeys.insert(key).inserted else { continue }
                let value = random.chance(15) ? "" : randomText(&random, pool: valuePool, length: 1...10)
                params.append([key, value])
                let encodedKey = percentEncode(key, random: &random, isKey: true, coverage: &coverage)
                if value.isEmpty && random.chance(50) {
                    parts.append(encodedKey)
                    coverage.queryNoEquals += 1
                } else {
                    if value.isEmpty { coverage.queryEmptyValue += 1 }
                    parts.append(encodedKey + "=" + percentEncode(value, random: &random, isKey: false, coverage: &coverage))
                }
                if (key + value).utf8.contains(where: { $0 >= 0x80 }) { coverage.queryUTF8 += 1 }
                if (key + value).contains(where: { "/:&=+#%?@".contains($0) }) { coverage.queryReserved += 1 }
            }

            // Headers: unique names ignoring case, random case, values with
            // inner runs of spaces and tabs.
            var headers: [[String]] = []
            var seenNames = Set<String>()
            for _ in 0..<random.int(0...4) {
                let base = random.pick(headerNames)
                guard seenNames.insert(base.lowercased()).inserted else { continue }
                let name = String(base.map { random.chance(25) ? Character($0.uppercased()) : $0 })
                var value = ""
                if random.chance(30) { value += random.pick([" ", "\t", "  \t "]) }
                for index in 0..<random.int(0...4) {
                    if index > 0 {
                        let gap = random.pick([" ", "  ", "\t", " \t  ", "    "])
                        if gap != " " { coverage.headerRuns += 1 }
                        value += gap
                    }
                    value += random.pick(headerWords)
                }
                if random.chance(30) { value += random.pick([" ", "\t", " \t"]) }
                headers.append([name, value])
            }
            if random.chance(8) {
                headers.append(["Host", "override.example:8081"])
                coverage.hostHeader += 1
            }

            let bodyBytes = random.chance(40) ? [] : (0..<random.int(1...64)).map { _ in UInt8(random.int(0...255)) }
            if !bodyBytes.isEmpty { coverage.body += 1 }
            let token: String? = random.chance(35) ? "FQoGZXIvYXdz" + randomText(&random, pool: letters + ["/", "+", "="], length: 10...40) : nil
            if token != nil { coverage.token += 1 }

            let seconds = Int64(random.int(946_684_800...1_893_456_000))
            cases.append(Case(
                method: random.pick(["GET", "POST"]),
                baseURL: "\(scheme)://\(authority)\(path)",
                encodedQuery: parts.joined(separator: "&"),
                params: params,
                headers: headers,
                body: Data(bodyBytes).base64EncodedString(),
                key: "AKIA" + randomText(&random, pool: letters, length: 16...16).uppercased(),
                secret: randomText(&random, pool: letters + ["/", "+"], length: 40...40),
                token: token,
                region: random.pick(["us-east-1", "eu-west-1", "ap-southeast-2", "cn-north-1"]),
                service: random.pick(["ec2", "sts", "service", "iam"]),
                date: SigningDate(secondsSinceEpoch: seconds).amzDate))
        }
        return (cases, coverage)
    }

    static let script = #"""
    import base64, datetime, json, sys
    try:
        import botocore.auth
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
    except ImportError as error:
        sys.stderr.write("botocore is not importable: %s\n" % error)
        sys.exit(3)

    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    out = []
    for case in cases:
        moment = datetime.datetime.strptime(case["date"], "%Y%m%dT%H%M%SZ")
        botocore.auth.get_current_datetime = lambda moment=moment: moment
        credentials = Credentials(case["key"], case["secret"], case.get("token"))
        auth = SigV4Auth(credentials, case["service"], case["region"])
        request = AWSRequest(
            method=case["method"], url=case["baseURL"],
            headers={name: value for name, value in case["headers"]},
            data=base64.b64decode(case["body"]),
            params={key: value for key, value in case["params"]})
        auth.add_auth(request)
        authorization = request.headers["Authorization"]
        # botocore does not leave Authorization out of the headers it signs;
        # it deletes it before signing. Do the same before recomputing.
        del request.headers["Authorization"]
        canonical = auth.canonical_request(request)
        # Self-check: the recomputed canonical request gives the signature
        # add_auth wrote.
        signature = auth.signature(auth.string_to_sign(request, canonical), request)
        if not authorization.endswith("Signature=" + signature):
            sys.stderr.write("botocore self-check failed for %r\n" % case)
            sys.exit(4)
        out.append({"canonical": canonical, "authorization": authorization})
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(out, f)
    """#

    static var python3: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/python3"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    struct BotocoreAnswer: Decodable {
        let canonical: String
        let authorization: String
    }

    struct ScriptFailed: Error, CustomStringConvertible {
        let status: Int32
        let stderr: String
        var description: String { "python3 exited with \(status): \(stderr)" }
    }

    static func runBotocore(_ cases: [Case], python: String) throws -> [BotocoreAnswer] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("torpor-botocore-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("cases.json")
        let output = directory.appendingPathComponent("answers.json")
        let scriptFile = directory.appendingPathComponent("sign.py")
        let errors = directory.appendingPathComponent("stderr.txt")
        try JSONEncoder().encode(cases).write(to: input)
        try script.write(to: scriptFile, atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [scriptFile.path, input.path, output.path]
        process.standardError = try FileHandle(forWritingTo: errors)
        process.standardOutput = FileHandle.nullDevice
        try startProcess(process)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ScriptFailed(status: process.terminationStatus,
                               stderr: (try? String(contentsOf: errors, encoding: .utf8)) ?? "")
        }
        return try JSONDecoder().decode([BotocoreAnswer].self, from: Data(contentsOf: output))
    }

    @Test("the generator covers every feature it is meant to")
    func generatorCoverage() throws {
        let (cases, coverage) = Self.generate(count: 200, seed: 0x70_72_70_6F_72)
        #expect(cases.count == 200)
        for (name, count) in [
            ("path space", coverage.pathSpace), ("path UTF-8", coverage.pathUTF8), ("path %XX", coverage.pathEscape),
            ("path dot segments", coverage.pathDots), ("path //", coverage.pathDoubleSlash), ("no path", coverage.noPath),
            ("query +", coverage.queryPlus), ("query UTF-8", coverage.queryUTF8), ("query reserved", coverage.queryReserved),
            ("query empty value", coverage.queryEmptyValue), ("query key without =", coverage.queryNoEquals),
            ("explicit port", coverage.explicitPort), ("default port", coverage.defaultPort), ("http", coverage.http),
            ("session token", coverage.token), ("body", coverage.body), ("header whitespace runs", coverage.headerRuns),
            ("Host header", coverage.hostHeader),
        ] {
            #expect(count > 0, "no request with \(name)")
        }
        // Deterministic: the same seed gives the same requests.
        let again = Self.generate(count: 200, seed: 0x70_72_70_6F_72).cases
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        #expect(try encoder.encode(again) == encoder.encode(cases))
        #expect(try encoder.encode(Self.generate(count: 200, seed: 1).cases) != encoder.encode(cases))
    }

    @Test("SigV4Signer agrees with botocore on 200 random requests",
          .enabled(if: python3 != nil, "python3 is not on PATH"))
    func crossCheck() throws {
        let python = try #require(Self.python3)
        let (cases, _) = Self.generate(count: 200, seed: 0x70_72_70_6F_72)
        let answers = try Self.runBotocore(cases, python: python)
        try #require(answers.count == cases.count)

        var mismatches: [String] = []
        for (index, (item, theirs)) in zip(cases, answers).enumerated() {
            let signer = SigV4Signer(region: item.region, service: item.service)
            let request = SigV4Request(
                method: item.method, url: try RequestURL(parsing: item.fullURL),
                headers: HTTPHeaders(item.headers.map { ($0[0], $0[1]) }),
                payload: .bytes(Array(Data(base64Encoded: item.body)!)))
            let credentials = AWSCredentials(accessKeyID: item.key, secretAccessKey: item.secret, sessionToken: item.token)
            let date = try #require(SigningDate(amzDate: item.date))
            let signed = signer.sign(request, credentials: credentials, date: date)
            if signed.canonicalRequest != theirs.canonical || signed.authorization != theirs.authorization {
                mismatches.append("""
                    request \(index): \(item.method) \(item.fullURL)
                    headers: \(item.headers) params: \(item.params) token: \(item.token != nil)
                    --- torpor canonical:
                    \(signed.canonicalRequest)
                    --- botocore canonical:
                    \(theirs.canonical)
                    --- torpor:   \(signed.authorization)
                    --- botocore: \(theirs.authorization)
                    """)
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.count) of \(cases.count) differ; first:\n\(mismatches.prefix(3).joined(separator: "\n\n"))")
    }
}
