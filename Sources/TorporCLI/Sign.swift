import ArgumentParser
import Foundation
import TorporAWS
import TorporSigV4

struct Sign: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign a request with SigV4 and print every step, for debugging signatures.",
        discussion: """
        Prints one JSON object: canonicalRequest, stringToSign, signature, and authorization \
        (header signing) or url (with --presign). The URL is taken as sent on the wire: \
        percent-escapes in its path stay as they are; raw spaces and UTF-8 are accepted and \
        encoded. X-Amz-Date (and X-Amz-Security-Token with a session token) are added; Host \
        comes from the URL unless given. Credentials come from the usual chain; the secret \
        key is never printed. Example:
          torpor sign --method GET --url 'https://ec2.us-east-1.amazonaws.com/?Action=DescribeRegions&Version=2016-11-15' \\
                      --region us-east-1 --service ec2 --date 20150830T123600Z
        """
    )

    @Option(help: "HTTP method.") var method: String
    @Option(help: "The request URL as sent on the wire.") var url: String
    @Option(name: .customLong("header"), help: ArgumentHelp("A request header, in order; repeat for more.", valueName: "Name: value"))
    var headers: [String] = []
    @Option(help: "The request body.") var body: String?
    @Option(name: .customLong("body-file"), help: "Read the request body from this file.") var bodyFile: String?
    @Option(help: "Region of the credential scope.") var region: String
    @Option(help: "Service of the credential scope (ec2, s3, sts, ...).") var service: String
    @Option(help: "Signing time as YYYYMMDDTHHMMSSZ (default: now).") var date: String?
    @Flag(help: "Sign into the URL's query string instead of an Authorization header.") var presign = false
    @Option(help: "With --presign: seconds the URL stays valid, 1 to 604800 (default 3600).") var expires: Int?
    @Flag(name: .customLong("no-normalize-path"), help: "Sign the path exactly as given, without normalising or double-encoding it (as S3 needs).")
    var noNormalizePath = false
    @Option(help: "Profile for the credentials (else AWS_PROFILE, else default).") var profile: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: LogLevelArgument = .warning

    func validate() throws {
        if body != nil && bodyFile != nil { throw ValidationError("give --body or --body-file, not both") }
        if expires != nil && !presign { throw ValidationError("--expires goes with --presign") }
        if let expires, !(1...SigV4Signer.maximumExpiry).contains(expires) {
            throw ValidationError("--expires must be between 1 and \(SigV4Signer.maximumExpiry) seconds")
        }
        if let date, SigningDate(amzDate: date) == nil {
            throw ValidationError("--date '\(date)' is not YYYYMMDDTHHMMSSZ (for example 20150830T123600Z)")
        }
        if method.isEmpty || method.contains(where: { $0.isWhitespace }) {
            throw ValidationError("--method '\(method)' is not an HTTP method")
        }
        for header in headers {
            guard let colon = header.firstIndex(of: ":"), colon != header.startIndex,
                  !header[..<colon].contains(where: { $0.isWhitespace }) else {
                throw ValidationError("--header '\(header)' must be 'Name: value'")
            }
        }
        if region.isEmpty { throw ValidationError("--region must not be empty") }
        if service.isEmpty { throw ValidationError("--service must not be empty") }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let requestURL: RequestURL
        do { requestURL = try RequestURL(parsing: url) } catch { throw CommandFailure.usage("--url: \(error)") }

        var headerList = HTTPHeaders()
        for header in headers {
            let colon = header.firstIndex(of: ":")!
            headerList.add(name: String(header[..<colon]), value: String(header[header.index(after: colon)...]))
        }
        var bodyBytes: [UInt8] = Array((body ?? "").utf8)
        if let bodyFile {
            guard let data = FileManager.default.contents(atPath: bodyFile) else {
                throw CommandFailure.usage("--body-file: cannot read '\(bodyFile)'")
            }
            bodyBytes = Array(data)
        }

        _ = ClientFactory.logger(logLevel.level)
        let files = try SharedConfigFiles.load(environment: environment)
        let credentials = try await DefaultCredentialChain.make(
            profile: profile, environment: environment, files: files, transport: CurlTransport()
        ).credentials()

        let signingDate = date.flatMap(SigningDate.init(amzDate:))
            ?? SigningDate(secondsSinceEpoch: Int64(Date().timeIntervalSince1970))
        let signer = SigV4Signer(region: region, service: service, options: .init(normalizePath: !noNormalizePath))
        let request = SigV4Request(method: method.uppercased(), url: requestURL, headers: headerList, payload: .bytes(bodyBytes))

        var document: [String: Any]
        if presign {
            let presigned = try signer.presign(request, credentials: credentials, date: signingDate, expires: expires ?? 3600)
            document = ["canonicalRequest": presigned.canonicalRequest, "stringToSign": presigned.stringToSign,
                        "signature": presigned.signature, "url": presigned.url]
        } else {
            let signed = signer.sign(request, credentials: credentials, date: signingDate)
            document = ["canonicalRequest": signed.canonicalRequest, "stringToSign": signed.stringToSign,
                        "signature": signed.signature, "authorization": signed.authorization]
        }
        print(JSONOutput.render(document))
    }
}
