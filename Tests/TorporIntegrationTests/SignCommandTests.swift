import Foundation
import Testing

/// `torpor sign` checked against botocore, the AWS SDK for Python.
@Suite("torpor sign against botocore")
struct SignCommandTests {
    static let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

    /// Signs with botocore at a pinned date; prints canonical request and
    /// Authorization, or the presigned URL.
    static let botocoreScript = """
    import sys, json, datetime
    from urllib.parse import urlsplit, parse_qsl
    import botocore.auth
    from botocore.auth import SigV4Auth, SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    spec = json.loads(sys.argv[1])
    pinned = datetime.datetime.strptime(spec["date"], "%Y%m%dT%H%M%SZ")
    botocore.auth.get_current_datetime = lambda *a, **k: pinned
    creds = Credentials("AKIDEXAMPLE", spec["secret"], spec.get("token"))
    parts = urlsplit(spec["url"])
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    req = AWSRequest(method=spec["method"], url=base, headers=spec["headers"], data=spec["body"].encode(), params=params)
    if spec.get("expires"):
        auth = SigV4QueryAuth(creds, spec["service"], spec["region"], expires=spec["expires"])
        auth.add_auth(req)
        print(json.dumps({"url": req.url}))
    else:
        auth = SigV4Auth(creds, spec["service"], spec["region"])
        auth.add_auth(req)
        authorization = req.headers["Authorization"]
        del req.headers["Authorization"]  # not part of what was signed
        print(json.dumps({"canonicalRequest": auth.canonical_request(req), "authorization": authorization}))
    """

    struct Case: Sendable, CustomTestStringConvertible {
        let method: String
        let url: String
        let headers: [String: String]
        let body: String
        let service: String
        var token: String? = nil
        var expires: Int? = nil
        var testDescription: String { "\(method) \(url)\(expires.map { " presigned \($0)s" } ?? "")" }
    }

    static let cases: [Case] = [
        Case(method: "POST", url: "https://ec2.us-east-1.amazonaws.com/",
             headers: ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"],
             body: "Action=StopInstances&Version=2016-11-15&Hibernate=true&InstanceId.1=i-0123456789abcdef0", service: "ec2"),
        Case(method: "GET", url: "https://ec2.eu-west-1.amazonaws.com/?Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3AEnv&Filter.1.Value.1=dev%20box",
             headers: ["X-Custom": "  a   b  "], body: "", service: "ec2", token: "session-token-value"),
        Case(method: "GET", url: "http://localhost:4566/some%20path/./x/../y?b=2&a=1&c=", headers: [:], body: "", service: "ec2"),
        Case(method: "GET", url: "https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15", headers: [:], body: "",
             service: "sts", expires: 900),
    ]

    @Test("same canonical request and Authorization as botocore", arguments: cases)
    func matchesBotocore(_ testCase: Case) async throws {
        let date = "20261126T120000Z"
        var arguments = ["sign", "--method", testCase.method, "--url", testCase.url, "--region", "us-east-1",
                         "--service", testCase.service, "--date", date]
        for (name, value) in testCase.headers.sorted(by: { $0.key < $1.key }) { arguments += ["--header", "\(name): \(value)"] }
        if !testCase.body.isEmpty { arguments += ["--body", testCase.body] }
        if let expires = testCase.expires { arguments += ["--presign", "--expires", String(expires)] }
        var environment = isolatedEnvironment(["AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": Self.secret])
        if let token = testCase.token { environment["AWS_SESSION_TOKEN"] = token }

        let ours = try await torpor(arguments, environment: environment)
        #expect(ours.status == 0, "\(ours.stderr)")
        #expect(!ours.stdout.contains(Self.secret) && !ours.stderr.contains(Self.secret))
        let mine = try #require(ours.json)

        var spec: [String: Any] = ["method": testCase.method, "url": testCase.url, "headers": testCase.headers, "body": testCase.body,
                                   "service": testCase.service, "region": "us-east-1", "date": date, "secret": Self.secret]
        spec["token"] = testCase.token
        spec["expires"] = testCase.expires
        let specJSON = String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)
        let theirs = try await runProcess("/usr/bin/env", ["python3", "-c", Self.botocoreScript, specJSON], environment: ProcessInfo.processInfo.environment)
        #expect(theirs.status == 0, "\(theirs.stderr)")
        let reference = try #require(theirs.json)

        if testCase.expires != nil {
            // The query may be ordered differently; the signature may not.
            let signature = { (url: String) in url.components(separatedBy: "X-Amz-Signature=").last ?? "" }
            #expect(signature(try #require(mine["url"] as? String)) == signature(try #require(reference["url"] as? String)))
        } else {
            #expect(mine["canonicalRequest"] as? String == reference["canonicalRequest"] as? String)
            #expect(mine["authorization"] as? String == reference["authorization"] as? String)
        }
    }

    @Test("bad input is refused with exit 2",
          arguments: [
            (["--date", "2026-11-26"], "YYYYMMDDTHHMMSSZ"),
            (["--expires", "60"], "--presign"),
            (["--presign", "--expires", "700000"], "604800"),
            (["--header", "NoColon"], "Name: value"),
            (["--body", "a", "--body-file", "/etc/hostname"], "not both"),
          ])
    func badInput(extra: [String], message: String) async throws {
        let environment = isolatedEnvironment(["AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": Self.secret])
        let result = try await torpor(["sign", "--method", "GET", "--url", "https://example.amazonaws.com/", "--region", "us-east-1",
                                 "--service", "service"] + extra, environment: environment)
        #expect(result.status == 2)
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }
}
