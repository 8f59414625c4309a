import Foundation
public import Logging
import Synchronization
public import TorporSigV4

/// One AWS API call as it happened, for metrics and progress displays.
public struct AWSCallEvent: Sendable {
    public enum Outcome: Sendable, Equatable {
        case success
        case serviceError(code: String)
        case transportError(TransportError.Kind)
        case unreadable
    }

    public let action: String
    public let attempt: Int
    public let outcome: Outcome
    public let throttled: Bool
    public let requestID: String?
    public let duration: Duration
}

/// A client for a Query-protocol AWS service (EC2): signs each request,
/// sends it, retries by the policy, corrects clock skew, and turns the
/// answer into an XML tree or a typed error.
public final class AWSQueryClient: Sendable {
    public let signer: SigV4Signer
    public let location: ServiceLocation
    public let apiVersion: String
    public let credentials: any CredentialProvider
    public let transport: any HTTPTransport
    public let retryPolicy: RetryPolicy
    public let clock: any AWSClock
    public let logger: Logger
    private let observer: (@Sendable (AWSCallEvent) -> Void)?
    /// Seconds to add to the local clock when signing, learnt from a
    /// server's Date header after a skew error.
    private let clockOffset = Mutex<Double>(0)

    public init(service: String, apiVersion: String, location: ServiceLocation, credentials: any CredentialProvider,
                transport: any HTTPTransport, retryPolicy: RetryPolicy = RetryPolicy(), clock: any AWSClock = SystemClock(),
                logger: Logger = Logger(label: "torpor.aws"), observer: (@Sendable (AWSCallEvent) -> Void)? = nil) {
        signer = SigV4Signer(region: location.region, service: service)
        self.location = location
        self.apiVersion = apiVersion
        self.credentials = credentials
        self.transport = transport
        self.retryPolicy = retryPolicy
        self.clock = clock
        self.logger = logger
        self.observer = observer
    }

    public var currentClockOffset: Double { clockOffset.withLock { $0 } }

    /// A successful answer: its XML root and request id.
    public struct Answer: Sendable {
        public let root: XMLNode
        public let requestID: String?
    }

    /// Errors that mean the request's time was off; a `Date` header on the
    /// answer lets the client correct its clock and retry once.
    static let skewCodes: Set<String> = ["RequestExpired", "RequestTimeTooSkewed", "RequestInTheFuture"]
    /// Errors that may mean skew, but only when the server's Date says so.
    static let possibleSkewCodes: Set<String> = ["AuthFailure", "SignatureDoesNotMatch", "InvalidSignatureException"]
    static let skewTolerance: Double = 240

    /// Sends `parameters` (which carry `Action` and `Version`).
    ///
    /// - Parameter idempotent: whether repeating the request is harmless even
    ///   if an earlier attempt may have been carried out.
    public func send(_ parameters: QueryParameters, idempotent: Bool) async throws -> Answer {
        let action = parameters["Action"] ?? "?"
        let body = parameters.formEncoded
        var attempt = 0
        var lastRetryCost: Int?
        var skewCorrected = false
        while true {
            attempt += 1
            try Task.checkCancellation()
            let credentials = try await self.credentials.credentials()
            let seconds = clock.now() + currentClockOffset
            let date = SigningDate(secondsSinceEpoch: Int64(seconds.rounded(.down)))
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded; charset=utf-8")
            let signed = signer.sign(
                SigV4Request(method: "POST", url: location.endpoint, headers: headers, payload: .bytes(body)),
                credentials: credentials, date: date)
            let request = HTTPRequest(method: "POST", url: location.endpoint, headers: signed.headers, body: body)
            let started = ContinuousClock.now

            let failure: RetryPolicy.Failure
            let finalError: any Error
            do {
                let response = try await transport.send(request)
                if (200..<300).contains(response.status) {
                    do {
                        let root = try XMLDocumentParser.parse(response.body)
                        let requestID = root.string("requestId") ?? root.string("RequestId") ?? root.string("RequestID")
                        retryPolicy.recordSuccess(lastRetryCost: lastRetryCost)
                        report(action, attempt, .success, requestID, started)
                        // Calls that change something are worth a line at info,
                        // with the request id AWS support asks for; reads only at
                        // debug.
                        let level: Logger.Level = action.hasPrefix("Describe") ? .debug : .info
                        logger.log(level: level, "AWS call", metadata: [
                            "action": "\(action)", "status": "\(response.status)", "attempt": "\(attempt)",
                            "request_id": "\(requestID ?? "-")",
                        ])
                        return Answer(root: root, requestID: requestID)
                    } catch {
                        report(action, attempt, .unreadable, nil, started)
                        throw AWSResponseError(action: action, httpStatus: response.status, reason: error.description, body: response.body)
                    }
                }
                switch Self.serviceError(response) {
                case .success(let error):
                    report(action, attempt, .serviceError(code: error.code), error.requestID, started)
                    if !skewCorrected, let offset = skewCorrection(for: error, response: response) {
                        skewCorrected = true
                        clockOffset.withLock { $0 = offset }
                        logger.warning("clock skew corrected", metadata: [
                            "action": "\(action)", "offset_seconds": "\(Int(offset))", "code": "\(error.code)",
                        ])
                        attempt -= 1 // the skew retry is not counted against the policy
                        continue
                    }
                    failure = .service(error)
                    finalError = error
                case .failure(let unreadable):
                    report(action, attempt, .unreadable, nil, started)
                    failure = .status(response.status)
                    finalError = AWSResponseError(action: action, httpStatus: unreadable.httpStatus,
                                                  reason: unreadable.reason, body: unreadable.body)
                }
            } catch let error as TransportError {
                report(action, attempt, .transportError(error.kind), nil, started)
                failure = .transport(error)
                finalError = error
            }

            switch retryPolicy.decide(after: failure, attempt: attempt, idempotent: idempotent) {
            case .retry(let delay, let cost):
                lastRetryCost = cost
                logger.debug("AWS call retried", metadata: [
                    "action": "\(action)", "attempt": "\(attempt)", "delay_ms": "\(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)",
                    "error": "\(finalError)",
                ])
                try await clock.sleep(for: delay)
            case .fail:
                throw finalError
            }
        }
    }

    private func report(_ action: String, _ attempt: Int, _ outcome: AWSCallEvent.Outcome, _ requestID: String?, _ started: ContinuousClock.Instant) {
        guard let observer else { return }
        var throttled = false
        if case .serviceError(let code) = outcome { throttled = RetryPolicy.throttlingCodes.contains(code) }
        observer(AWSCallEvent(action: action, attempt: attempt, outcome: outcome, throttled: throttled,
                              requestID: requestID, duration: ContinuousClock.now - started))
    }

    /// The offset to apply, or nil when this error is not about the clock.
    func skewCorrection(for error: AWSServiceError, response: HTTPResponse) -> Double? {
        guard Self.skewCodes.contains(error.code) || Self.possibleSkewCodes.contains(error.code),
              let dateText = response.headers["Date"], let serverTime = HTTPDate.parse(dateText)
        else { return nil }
        let offset = Double(serverTime) - clock.now()
        if Self.skewCodes.contains(error.code) { return offset }
        return abs(offset - currentClockOffset) > Self.skewTolerance ? offset : nil
    }

    /// EC2's error document: `<Response><Errors><Error><Code>` and
    /// `<Message>`, `<RequestID>`; other Query services wrap it in
    /// `<ErrorResponse>`. Anything else is kept raw.
    static func serviceError(_ response: HTTPResponse) -> Result<AWSServiceError, AWSResponseError> {
        let root: XMLNode
        do {
            root = try XMLDocumentParser.parse(response.body)
        } catch {
            return .failure(AWSResponseError(action: "", httpStatus: response.status, reason: error.description, body: response.body))
        }
        let error = root["Errors", "Error"] ?? root.child("Error")
        guard let error, let code = error.string("Code"), !code.isEmpty else {
            return .failure(AWSResponseError(action: "", httpStatus: response.status, reason: "no error code in the response", body: response.body))
        }
        let requestID = root.string("RequestID") ?? root.string("RequestId") ?? root.string("requestId")
            ?? response.headers["x-amzn-RequestId"]
        return .success(AWSServiceError(code: code, message: error.string("Message") ?? "", requestID: requestID,
                                        httpStatus: response.status))
    }
}
