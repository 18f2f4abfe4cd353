import Foundation
import Glibc
import Logging
import Synchronization

@testable import MiniHTTP

struct TestClientError: Error, CustomStringConvertible {
    var description: String
}

/// Runs a blocking call on a fresh thread so it never occupies the (small) cooperative pool
/// that the server's handlers need.
func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: body()) }
        thread.start()
    }
}

struct TestResponse {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}

/// A tiny blocking HTTP client on a raw socket, with a receive timeout so no test can hang.
///
/// Timing: the `…At` instants are taken on the thread doing the system call, right next to it,
/// so a test measuring an interval from them is not skewed by how long its own task waits for a
/// cooperative-pool thread after the call returns (hundreds of milliseconds under heavy load).
final class TestClient {
    let fd: Int32
    private var buffer: [UInt8] = []
    /// Just before `connect(2)`: no earlier than the server can have accepted the connection.
    let connectStartedAt: ContinuousClock.Instant
    /// Just before the first `send(2)` of the last `write`: no later than the server got those bytes.
    private(set) var lastWriteStartedAt: ContinuousClock.Instant?
    /// Just after the `recv(2)` that completed the last `readResponse`: no earlier than the server
    /// finished writing that response.
    private(set) var lastResponseReceivedAt: ContinuousClock.Instant?
    /// Just after the `recv(2)` that saw the close in the last successful `waitForClose`.
    private(set) var closeSeenAt: ContinuousClock.Instant?

    private init(fd: Int32, connectStartedAt: ContinuousClock.Instant) {
        self.fd = fd
        self.connectStartedAt = connectStartedAt
    }

    private var closed = false

    deinit {
        close()
    }

    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }

    /// Connects to 127.0.0.1:`port`; throws if the connection is refused.
    static func connect(port: Int, receiveTimeout: Double = 5) async throws -> TestClient {
        let result: Result<(Int32, ContinuousClock.Instant), TestClientError> = await blocking {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return .failure(TestClientError(description: "socket failed")) }
            var timeout = timeval(tv_sec: Int(receiveTimeout), tv_usec: Int((receiveTimeout - receiveTimeout.rounded(.down)) * 1_000_000))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let startedAt = ContinuousClock.now
            let status = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard status == 0 else {
                let code = errno
                Glibc.close(fd)
                return .failure(TestClientError(description: "connect failed: errno \(code)"))
            }
            return .success((fd, startedAt))
        }
        let (fd, startedAt) = try result.get()
        return TestClient(fd: fd, connectStartedAt: startedAt)
    }

    func write(_ text: String) async throws {
        try await write(Array(text.utf8))
    }

    func write(_ bytes: [UInt8]) async throws {
        let fd = self.fd
        let (sent, startedAt) = await blocking { () -> (Int, ContinuousClock.Instant) in
            let startedAt = ContinuousClock.now
            var offset = 0
            while offset < bytes.count {
                let count = bytes.withUnsafeBytes {
                    send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                }
                if count <= 0 { return (offset, startedAt) }
                offset += count
            }
            return (offset, startedAt)
        }
        lastWriteStartedAt = startedAt
        guard sent == bytes.count else { throw TestClientError(description: "send failed after \(sent) bytes") }
    }

    private enum ReadResult: Sendable {
        case data([UInt8])
        case eof
        case timeout
        case reset
    }

    /// One `recv(2)`, and the instant it returned.
    private func readSome() async -> (ReadResult, ContinuousClock.Instant) {
        let fd = self.fd
        return await blocking {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let count = recv(fd, &chunk, chunk.count, 0)
            let code = errno
            let returnedAt = ContinuousClock.now
            if count > 0 { return (.data(Array(chunk[0..<count])), returnedAt) }
            if count == 0 { return (.eof, returnedAt) }
            return (code == EAGAIN || code == EWOULDBLOCK ? .timeout : .reset, returnedAt)
        }
    }

    /// Whether the server has neither closed nor reset the connection yet (no waiting; unread
    /// data stays unread).
    var isOpen: Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
        if count > 0 { return true }
        if count == 0 { return false }
        return errno == EAGAIN || errno == EWOULDBLOCK
    }

    /// Reads one response (Content-Length framed). Throws on EOF, reset or timeout before it is complete.
    func readResponse() async throws -> TestResponse {
        while true {
            if let response = try parseBuffered() { return response }
            let (result, returnedAt) = await readSome()
            switch result {
            case .data(let bytes):
                buffer.append(contentsOf: bytes)
                lastResponseReceivedAt = returnedAt
            case .eof: throw TestClientError(description: "connection closed before a full response")
            case .timeout: throw TestClientError(description: "timed out waiting for a response")
            case .reset: throw TestClientError(description: "connection reset")
            }
        }
    }

    /// True if the server closes (EOF or reset) within the receive timeout, discarding any data.
    func waitForClose() async -> Bool {
        buffer.removeAll()
        while true {
            let (result, returnedAt) = await readSome()
            switch result {
            case .data: continue
            case .eof, .reset:
                closeSeenAt = returnedAt
                return true
            case .timeout: return false
            }
        }
    }

    private func parseBuffered() throws -> TestResponse? {
        let separator = Array("\r\n\r\n".utf8)
        guard let headEnd = buffer.indices.first(where: { buffer[$0...].starts(with: separator) }) else {
            return nil
        }
        let head = String(decoding: buffer[0..<headEnd], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw TestClientError(description: "bad status line in \(head)")
        }
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let length = headers.first { $0.0.lowercased() == "content-length" }.flatMap { Int($0.1) } ?? 0
        let bodyStart = headEnd + 4
        guard buffer.count >= bodyStart + length else { return nil }
        let body = Array(buffer[bodyStart..<(bodyStart + length)])
        buffer.removeFirst(bodyStart + length)
        return TestResponse(status: status, headers: headers, body: body)
    }
}

let quietLogger = Logger(label: "MiniHTTPTests", factory: { _ in SwiftLogNoOpLogHandler() })

func testConfiguration() -> HTTPServer.Configuration {
    var configuration = HTTPServer.Configuration.default
    configuration.host = "127.0.0.1"
    configuration.port = 0
    configuration.shutdownGracePeriod = .seconds(5)
    return configuration
}

/// Starts a server on an ephemeral port, runs `body`, and always shuts the server down.
func withServer(
    _ configuration: HTTPServer.Configuration = testConfiguration(),
    handler: @escaping @Sendable (HTTPServerRequest) async -> HTTPServerResponse,
    _ body: (HTTPServer, Int) async throws -> Void
) async throws {
    let server = HTTPServer(configuration: configuration, logger: quietLogger, handler: handler)
    let port = try server.start()
    do {
        try await body(server, port)
    } catch {
        await server.shutdown()
        throw error
    }
    await server.shutdown()
}

func get(_ path: String, version: String = "HTTP/1.1", headers: String = "") -> String {
    "GET \(path) \(version)\r\nHost: test\r\n\(headers)\r\n"
}

/// Echoes method, path and body: `GET /x <body>`.
@Sendable func echoHandler(_ request: HTTPServerRequest) async -> HTTPServerResponse {
    .text(200, "\(request.method) \(request.path) \(String(decoding: request.body, as: UTF8.self))")
}

/// A one-shot "go" signal a handler can wait for (async) and a test can give (sync, so it also
/// works from `defer`).
final class Gate: Sendable {
    private let state = Mutex<(isOpen: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = state.withLock { state in
            state.isOpen = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let isOpen = state.withLock { state in
                if !state.isOpen { state.waiters.append(continuation) }
                return state.isOpen
            }
            if isOpen { continuation.resume() }
        }
    }
}

/// The next element of `stream`, or `nil` if none comes within `timeout` (so a broken server
/// fails the test instead of hanging it).
func next<Element: Sendable>(
    of stream: AsyncStream<Element>,
    within timeout: Duration = .seconds(10)
) async -> Element? {
    await withTaskGroup(of: Element?.self) { group in
        group.addTask {
            var iterator = stream.makeAsyncIterator()
            return await iterator.next()
        }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}
