import CCurl
import Foundation
import Synchronization

/// One transfer: the request, the easy handle's per-request state and the response being read.
///
/// Thread confinement: created by the caller, then handed to the loop thread in `submit`;
/// from then on only the loop thread touches it, except `cancelled`, which is atomic. That is
/// why `@unchecked Sendable` is sound here.
final class CurlTransfer: @unchecked Sendable {
    let request: HTTPRequest
    let connectTimeout: Duration
    let timeout: Duration
    let maxResponseBytes: Int
    let userAgent: String

    private let cancelledFlag = Atomic<Bool>(false)
    var continuation: CheckedContinuation<HTTPResponse, any Error>?
    var body = Data()
    var headers: [String: String] = [:]
    var tooLarge = false
    var headerList: UnsafeMutablePointer<curl_slist>?
    let errorBuffer: UnsafeMutablePointer<CChar>

    init(request: HTTPRequest, connectTimeout: Duration, timeout: Duration, maxResponseBytes: Int, userAgent: String) {
        self.request = request
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.maxResponseBytes = maxResponseBytes
        self.userAgent = userAgent
        self.errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        self.errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        if let headerList { curl_slist_free_all(headerList) }
        errorBuffer.deallocate()
    }

    var isCancelled: Bool { cancelledFlag.load(ordering: .acquiring) }
    func cancel() { cancelledFlag.store(true, ordering: .releasing) }

    var operation: String {
        let path = URLComponents(string: request.url)?.path ?? request.url
        return "\(request.method) \(path)"
    }

    /// Sets every option of this request on `easy` (which was reset). Loop thread only.
    func configure(_ easy: UnsafeMutableRawPointer) -> CURLcode {
        var code = CURLE_OK
        func set(_ result: CURLcode) { if code == CURLE_OK { code = result } }
        set(ccurl_easy_setopt_string(easy, CURLOPT_URL, request.url))
        set(ccurl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1))
        set(ccurl_easy_setopt_string(easy, CURLOPT_PROTOCOLS_STR, "http,https"))
        set(ccurl_easy_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 0))
        set(ccurl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYPEER, 1))
        set(ccurl_easy_setopt_long(easy, CURLOPT_SSL_VERIFYHOST, 2))
        set(ccurl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1))
        set(ccurl_easy_setopt_long(easy, CURLOPT_TCP_NODELAY, 1))
        set(ccurl_easy_setopt_string(easy, CURLOPT_ACCEPT_ENCODING, ""))
        set(ccurl_easy_setopt_string(easy, CURLOPT_USERAGENT, userAgent))
        set(ccurl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, max(1, Int(connectTimeout.milliseconds))))
        set(ccurl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, max(1, Int(timeout.milliseconds))))
        set(ccurl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer))

        let method = request.method.uppercased()
        switch method {
        case "GET":
            set(ccurl_easy_setopt_long(easy, CURLOPT_HTTPGET, 1))
        case "HEAD":
            set(ccurl_easy_setopt_long(easy, CURLOPT_NOBODY, 1))
        default:
            set(ccurl_easy_setopt_string(easy, CURLOPT_CUSTOMREQUEST, method))
        }
        if let requestBody = request.body, !requestBody.isEmpty {
            set(ccurl_easy_setopt_off_t(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(requestBody.count)))
            // COPYPOSTFIELDS copies the bytes, so the Data need not outlive this call.
            requestBody.withUnsafeBytes { raw in
                if let base = raw.baseAddress {
                    set(ccurl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: base)))
                }
            }
        } else if request.body != nil || method == "POST" || method == "PUT" || method == "PATCH" {
            set(ccurl_easy_setopt_off_t(easy, CURLOPT_POSTFIELDSIZE_LARGE, 0))
            set(ccurl_easy_setopt_string(easy, CURLOPT_COPYPOSTFIELDS, ""))
        }

        var list: UnsafeMutablePointer<curl_slist>?
        for header in request.headers {
            list = curl_slist_append(list, "\(header.name): \(header.value)")
        }
        // curl adds `Expect: 100-continue` to large bodies; Google's front ends do not need the
        // extra round trip.
        list = curl_slist_append(list, "Expect:")
        headerList = list
        set(ccurl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, list))

        let me = Unmanaged.passUnretained(self).toOpaque()
        set(ccurl_easy_setopt_write_function(easy, curlWriteCallback))
        set(ccurl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, me))
        set(ccurl_easy_setopt_header_function(easy, curlHeaderCallback))
        set(ccurl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, me))
        return code
    }

    func appendBody(_ pointer: UnsafeRawPointer, count: Int) -> Bool {
        if body.count + count > maxResponseBytes {
            tooLarge = true
            return false
        }
        body.append(pointer.assumingMemoryBound(to: UInt8.self), count: count)
        return true
    }

    func appendHeaderLine(_ line: String) {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix("HTTP/") {
            // A new status line (after `100 Continue`): start over.
            headers.removeAll(keepingCapacity: true)
            return
        }
        guard let colon = trimmed.firstIndex(of: ":") else { return }
        let name = trimmed[..<colon].lowercased()
        let value = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        headers[name] = value
    }

    func curlErrorText(_ code: CURLcode) -> String {
        let detail = String(cString: errorBuffer)
        let generic = String(cString: curl_easy_strerror(code))
        return detail.isEmpty ? generic : "\(generic): \(detail)"
    }
}

private func curlWriteCallback(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ user: UnsafeMutableRawPointer?) -> Int {
    guard let data, let user else { return 0 }
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(user).takeUnretainedValue()
    let total = size * count
    return transfer.appendBody(UnsafeRawPointer(data), count: total) ? total : 0
}

private func curlHeaderCallback(_ data: UnsafeMutablePointer<CChar>?, _ size: Int, _ count: Int, _ user: UnsafeMutableRawPointer?) -> Int {
    guard let data, let user else { return 0 }
    let transfer = Unmanaged<CurlTransfer>.fromOpaque(user).takeUnretainedValue()
    let total = size * count
    let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(data), count: total)
    transfer.appendHeaderLine(String(decoding: bytes, as: UTF8.self))
    return total
}

/// The thread that drives every transfer of one `CurlTransport` through one multi handle.
final class CurlMultiLoop: Sendable {
    private struct Pending {
        var transfers: [CurlTransfer] = []
        var stopping = false
    }

    /// Used by the loop thread, and by `curl_multi_wakeup`, which libcurl documents as safe to
    /// call from any thread.
    nonisolated(unsafe) private let multi: UnsafeMutableRawPointer
    private let pending = Mutex(Pending())

    init(maxIdleConnections: Int) {
        // curl_multi_init only fails when out of memory.
        guard let multi = curl_multi_init() else {
            preconditionFailure("curl_multi_init failed: out of memory")
        }
        self.multi = multi
        _ = ccurl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, max(1, maxIdleConnections))
        let thread = Thread { [self] in
            self.run()
        }
        thread.name = "pubsub-curl"
        thread.start()
    }

    func submit(_ transfer: CurlTransfer, continuation: CheckedContinuation<HTTPResponse, any Error>) {
        let accepted = pending.withLock { state -> Bool in
            guard !state.stopping else { return false }
            transfer.continuation = continuation
            state.transfers.append(transfer)
            return true
        }
        if accepted {
            wakeUp()
        } else {
            continuation.resume(throwing: PubSubError(kind: .shutdown, message: "the HTTP transport was shut down", operation: transfer.operation))
        }
    }

    func wakeUp() {
        _ = curl_multi_wakeup(multi)
    }

    func stop() {
        pending.withLock { $0.stopping = true }
        wakeUp()
    }

    // MARK: - Loop thread

    private func run() {
        var active: [UnsafeMutableRawPointer: CurlTransfer] = [:]
        var idleHandles: [UnsafeMutableRawPointer] = []

        func finish(_ easy: UnsafeMutableRawPointer, with result: Result<HTTPResponse, any Error>) {
            guard let transfer = active.removeValue(forKey: easy) else { return }
            curl_multi_remove_handle(multi, easy)
            curl_easy_reset(easy)
            if idleHandles.count < 64 { idleHandles.append(easy) } else { curl_easy_cleanup(easy) }
            let continuation = transfer.continuation
            transfer.continuation = nil
            continuation?.resume(with: result)
        }

        while true {
            let (incoming, stopping) = pending.withLock { state -> ([CurlTransfer], Bool) in
                let batch = state.transfers
                state.transfers.removeAll(keepingCapacity: true)
                return (batch, state.stopping)
            }

            for transfer in incoming {
                if stopping || transfer.isCancelled {
                    let error = stopping
                        ? PubSubError(kind: .shutdown, message: "the HTTP transport was shut down", operation: transfer.operation)
                        : PubSubError(kind: .cancelled, message: "the request was cancelled", operation: transfer.operation)
                    transfer.continuation?.resume(throwing: error)
                    transfer.continuation = nil
                    continue
                }
                guard let easy = idleHandles.popLast() ?? curl_easy_init() else {
                    transfer.continuation?.resume(throwing: PubSubError(kind: .transport, message: "curl_easy_init failed (out of memory)", operation: transfer.operation))
                    transfer.continuation = nil
                    continue
                }
                let code = transfer.configure(easy)
                if code != CURLE_OK {
                    curl_easy_reset(easy)
                    idleHandles.append(easy)
                    transfer.continuation?.resume(throwing: PubSubError(kind: .transport, message: "could not configure the request: \(transfer.curlErrorText(code))", operation: transfer.operation))
                    transfer.continuation = nil
                    continue
                }
                active[easy] = transfer
                curl_multi_add_handle(multi, easy)
            }

            for (easy, transfer) in active where stopping || transfer.isCancelled {
                let error = stopping
                    ? PubSubError(kind: .shutdown, message: "the HTTP transport was shut down", operation: transfer.operation)
                    : PubSubError(kind: .cancelled, message: "the request was cancelled", operation: transfer.operation)
                finish(easy, with: .failure(error))
            }

            if stopping { break }

            var running: Int32 = 0
            curl_multi_perform(multi, &running)

            var queued: Int32 = 0
            while let message = curl_multi_info_read(multi, &queued) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                      let transfer = active[easy]
                else { continue }
                let code = message.pointee.data.result
                finish(easy, with: Self.result(of: transfer, code: code, easy: easy))
            }

            curl_multi_poll(multi, nil, 0, 1000, nil)
        }

        for easy in idleHandles { curl_easy_cleanup(easy) }
        curl_multi_cleanup(multi)
    }

    private static func result(of transfer: CurlTransfer, code: CURLcode, easy: UnsafeMutableRawPointer) -> Result<HTTPResponse, any Error> {
        switch code {
        case CURLE_OK:
            var status = 0
            _ = ccurl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
            return .success(HTTPResponse(status: status, headers: transfer.headers, body: transfer.body))
        case CURLE_OPERATION_TIMEDOUT:
            return .failure(PubSubError(
                kind: .timeout,
                message: "no complete answer within \(transfer.timeout) (\(transfer.curlErrorText(code)))",
                operation: transfer.operation
            ))
        case CURLE_WRITE_ERROR where transfer.tooLarge:
            return .failure(PubSubError(
                kind: .transport,
                message: "the response is larger than the \(transfer.maxResponseBytes)-byte limit (CurlTransport.Configuration.maxResponseBytes)",
                operation: transfer.operation
            ))
        default:
            return .failure(PubSubError(kind: .transport, message: transfer.curlErrorText(code), operation: transfer.operation))
        }
    }
}
