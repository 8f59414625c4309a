import CCurl
import Foundation
import Synchronization
import TorporSigV4

/// HTTP over libcurl's multi interface.
///
/// One thread of its own drives the multi handle, so libcurl's blocking work
/// (DNS, connect, TLS, reads) never runs on the cooperative thread pool.
/// Callers await a continuation that the driver thread resumes. The multi
/// handle keeps a connection cache, so requests to one endpoint reuse their
/// keep-alive connections. Cancelling the calling task removes its transfer.
public final class CurlTransport: HTTPTransport {
    public struct Configuration: Sendable {
        /// Time to establish a connection (TCP and TLS).
        public var connectTimeout: Duration
        /// Time for a whole request and response.
        public var requestTimeout: Duration
        /// Responses larger than this are refused.
        public var maximumResponseBytes: Int

        public init(connectTimeout: Duration = .seconds(10), requestTimeout: Duration = .seconds(60),
                    maximumResponseBytes: Int = 64 << 20) {
            self.connectTimeout = connectTimeout
            self.requestTimeout = requestTimeout
            self.maximumResponseBytes = maximumResponseBytes
        }
    }

    private let engine: CurlEngine

    public init(configuration: Configuration = Configuration()) {
        engine = CurlEngine(configuration: configuration)
    }

    deinit {
        engine.stop()
    }

    public func send(_ request: HTTPRequest) async throws -> HTTPResponse {
        try Task.checkCancellation()
        let transfer = CurlTransfer(request: request)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                transfer.continuation = continuation
                engine.submit(transfer)
            }
        } onCancel: {
            engine.cancel(transfer)
        }
    }
}

/// libcurl's global state must be set up once, before any handle exists.
private let curlGlobalInit: Void = {
    let code = curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    precondition(code == CURLE_OK, "curl_global_init failed: \(code)")
}()

/// One request in flight. Owned by the driver thread once submitted; the
/// submitting task only sets `continuation` before handing it over.
final class CurlTransfer: @unchecked Sendable {
    let request: HTTPRequest
    var continuation: CheckedContinuation<HTTPResponse, any Error>?
    var easy: UnsafeMutableRawPointer?
    var headerList: UnsafeMutablePointer<curl_slist>?
    var responseHeaders = HTTPHeaders()
    var responseBody: [UInt8] = []
    var maximumResponseBytes = Int.max
    var overflowed = false

    init(request: HTTPRequest) {
        self.request = request
    }

    func finish(_ result: Result<HTTPResponse, any Error>) {
        if let easy { curl_easy_cleanup(easy) }
        if let headerList { curl_slist_free_all(headerList) }
        easy = nil
        headerList = nil
        continuation?.resume(with: result)
        continuation = nil
    }
}

final class CurlEngine: @unchecked Sendable {
    private struct Inbox {
        var submitted: [CurlTransfer] = []
        var cancelled: Set<ObjectIdentifier> = []
        var stopping = false
    }

    private let configuration: CurlTransport.Configuration
    private let multi: UnsafeMutableRawPointer
    private let inbox = Mutex(Inbox())
    // Touched only by the driver thread.
    private var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]

    init(configuration: CurlTransport.Configuration) {
        _ = curlGlobalInit
        self.configuration = configuration
        guard let multi = curl_multi_init() else { fatalError("curl_multi_init failed") }
        self.multi = multi
        let thread = Thread { [self] in self.drive() }
        thread.name = "torpor-curl"
        thread.start()
    }

    deinit {
        // Runs once both the transport and the finished driver thread have
        // let go, so no one can touch the handle any more.
        curl_multi_cleanup(multi)
    }

    func submit(_ transfer: CurlTransfer) {
        inbox.withLock { $0.submitted.append(transfer) }
        curl_multi_wakeup(multi)
    }

    func cancel(_ transfer: CurlTransfer) {
        inbox.withLock { _ = $0.cancelled.insert(ObjectIdentifier(transfer)) }
        curl_multi_wakeup(multi)
    }

    func stop() {
        inbox.withLock { $0.stopping = true }
        curl_multi_wakeup(multi)
    }

    // MARK: The driver thread

    private func drive() {
        var pending: [ObjectIdentifier: CurlTransfer] = [:]
        while true {
            let (submitted, cancelled, stopping) = inbox.withLock { box in
                defer { box.submitted = []; box.cancelled = [] }
                return (box.submitted, box.cancelled, box.stopping)
            }
            for transfer in submitted { pending[ObjectIdentifier(transfer)] = transfer }
            // A cancellation may arrive before or after its submission; both
            // are in hand now, so none is missed.
            for id in cancelled {
                if let transfer = pending.removeValue(forKey: id) {
                    transfer.finish(.failure(CancellationError()))
                } else if let (easy, transfer) = active.first(where: { ObjectIdentifier($0.value) == id }) {
                    curl_multi_remove_handle(multi, easy)
                    active[easy] = nil
                    transfer.finish(.failure(CancellationError()))
                }
            }
            for transfer in pending.values { start(transfer) }
            pending.removeAll()
            if stopping {
                for (easy, transfer) in active {
                    curl_multi_remove_handle(multi, easy)
                    transfer.finish(.failure(CancellationError()))
                }
                active.removeAll()
                // The multi handle is freed in deinit, not here: stop() may
                // still be about to wake it.
                return
            }

            var running: Int32 = 0
            curl_multi_perform(multi, &running)
            var queued: Int32 = 0
            while let message = curl_multi_info_read(multi, &queued) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle else { continue }
                let code = torpor_curl_msg_result(message)
                curl_multi_remove_handle(multi, easy)
                if let transfer = active.removeValue(forKey: easy) {
                    complete(transfer, easy: easy, code: code)
                }
            }
            curl_multi_poll(multi, nil, 0, 1000, nil)
        }
    }

    private func start(_ transfer: CurlTransfer) {
        guard let easy = curl_easy_init() else {
            transfer.finish(.failure(TransportError(kind: .other, message: "curl_easy_init failed", mayHaveBeenSent: false,
                                                    url: transfer.request.url.description)))
            return
        }
        transfer.easy = easy
        transfer.maximumResponseBytes = configuration.maximumResponseBytes
        let request = transfer.request
        // libcurl copies string options (since 7.17), so the URL need not outlive this call.
        _ = torpor_curl_easy_setopt_string(easy, CURLOPT_URL, request.url.description)
        _ = torpor_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = torpor_curl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 1)
        _ = torpor_curl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 2)
        _ = torpor_curl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1)
        _ = torpor_curl_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0)
        _ = torpor_curl_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = torpor_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(configuration.connectTimeout))
        _ = torpor_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, Self.milliseconds(request.timeout ?? configuration.requestTimeout))

        let method = request.method.uppercased()
        if method == "HEAD" {
            _ = torpor_curl_easy_setopt_long(easy, CURLOPT_NOBODY, 1)
        } else if method == "GET" && request.body.isEmpty {
            _ = torpor_curl_easy_setopt_long(easy, CURLOPT_HTTPGET, 1)
        } else {
            _ = torpor_curl_easy_setopt_long(easy, CURLOPT_POST, 1)
            _ = torpor_curl_easy_setopt_offset(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(request.body.count))
            request.body.withUnsafeBytes { raw in
                // COPYPOSTFIELDS takes its own copy, so the body need not
                // outlive this call.
                _ = torpor_curl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
            }
            if method != "POST" { _ = torpor_curl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method) }
        }

        // Only the headers we set (and signed) go out: libcurl's own Accept,
        // Expect and default Content-Type are switched off by naming them
        // with no value.
        var list: UnsafeMutablePointer<curl_slist>?
        for field in request.headers {
            list = curl_slist_append(list, "\(field.name): \(field.value)")
        }
        for suppressed in ["Accept", "Expect", "Content-Type"] where !request.headers.contains(suppressed) {
            list = curl_slist_append(list, "\(suppressed):")
        }
        transfer.headerList = list
        _ = torpor_curl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list)

        let context = Unmanaged.passUnretained(transfer).toOpaque()
        _ = torpor_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, context)
        _ = torpor_curl_easy_setopt_callback(easy, CURLOPT_WRITEFUNCTION) { data, size, count, context in
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            if transfer.responseBody.count + length > transfer.maximumResponseBytes {
                transfer.overflowed = true
                return 0 // makes libcurl abort with CURLE_WRITE_ERROR
            }
            if let data, length > 0 {
                data.withMemoryRebound(to: UInt8.self, capacity: length) {
                    transfer.responseBody.append(contentsOf: UnsafeBufferPointer(start: $0, count: length))
                }
            }
            return length
        }
        _ = torpor_curl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, context)
        _ = torpor_curl_easy_setopt_callback(easy, CURLOPT_HEADERFUNCTION) { data, size, count, context in
            let transfer = Unmanaged<CurlTransfer>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            guard let data, length > 0 else { return length }
            let line = data.withMemoryRebound(to: UInt8.self, capacity: length) {
                String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
            }
            if line.hasPrefix("HTTP/") {
                // A new status line (after 100 Continue, say) starts a new
                // header block.
                transfer.responseHeaders = HTTPHeaders()
            } else if let colon = line.firstIndex(of: ":") {
                let name = line[..<colon].trimmingCharacters(in: .whitespaces)
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
                transfer.responseHeaders.add(name: name, value: value)
            }
            return length
        }

        active[easy] = transfer
        let added = curl_multi_add_handle(multi, easy)
        if added != CURLM_OK {
            active[easy] = nil
            transfer.finish(.failure(TransportError(
                kind: .other, message: String(cString: curl_multi_strerror(added)), mayHaveBeenSent: false,
                url: request.url.description)))
        }
    }

    private func complete(_ transfer: CurlTransfer, easy: UnsafeMutableRawPointer, code: CURLcode) {
        let url = transfer.request.url.description
        guard code == CURLE_OK else {
            var pretransfer: curl_off_t = 0
            _ = torpor_curl_easy_getinfo_offset(easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer)
            let sent = pretransfer > 0
            let message = String(cString: curl_easy_strerror(code))
            let kind: TransportError.Kind
            switch code {
            case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT:
                kind = .connectionFailed
            case CURLE_OPERATION_TIMEDOUT:
                kind = .timeout
            case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
                 CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ENGINE_NOTFOUND,
                 CURLE_SSL_ENGINE_SETFAILED, CURLE_SSL_CRL_BADFILE, CURLE_SSL_ISSUER_ERROR,
                 CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_SHUTDOWN_FAILED:
                kind = .tls
            case CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE:
                kind = .connectionReset
            case CURLE_WRITE_ERROR where transfer.overflowed:
                kind = .responseTooLarge
            default:
                kind = .other
            }
            let detail = kind == .responseTooLarge
                ? "response exceeds \(transfer.maximumResponseBytes) bytes" : message
            transfer.finish(.failure(TransportError(kind: kind, message: detail, mayHaveBeenSent: sent && kind != .connectionFailed, url: url)))
            return
        }
        var status = 0
        _ = torpor_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        let response = HTTPResponse(status: status, headers: transfer.responseHeaders, body: transfer.responseBody)
        transfer.finish(.success(response))
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }
}
