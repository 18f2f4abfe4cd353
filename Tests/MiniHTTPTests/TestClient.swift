import Foundation
import Glibc
import Logging

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
final class TestClient {
    let fd: Int32
    private var buffer: [UInt8] = []

    private init(fd: Int32) {
        self.fd = fd
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
        let result: Result<Int32, TestClientError> = await blocking {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return .failure(TestClientError(description: "socket failed")) }
            var timeout = timeval(tv_sec: Int(receiveTimeout), tv_usec: Int((receiveTimeout - receiveTimeout.rounded(.down)) * 1_000_000))
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = UInt16(port).bigEndian
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
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
            return .success(fd)
        }
        return TestClient(fd: try result.get())
    }

    func write(_ text: String) async throws {
        try await write(Array(text.utf8))
    }

    func write(_ bytes: [UInt8]) async throws {
        let fd = self.fd
        let sent = await blocking { () -> Int in
            var offset = 0
            while offset < bytes.count {
                let count = bytes.withUnsafeBytes {
                    send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                }
                if count <= 0 { return offset }
                offset += count
            }
            return offset
        }
        guard sent == bytes.count else { throw TestClientError(description: "send failed after \(sent) bytes") }
    }

    private enum ReadResult: Sendable {
        case data([UInt8])
        case eof
        case timeout
        case reset
    }

    private func readSome() async -> ReadResult {
        let fd = self.fd
        return await blocking {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let count = recv(fd, &chunk, chunk.count, 0)
            if count > 0 { return .data(Array(chunk[0..<count])) }
            if count == 0 { return .eof }
            return errno == EAGAIN || errno == EWOULDBLOCK ? .timeout : .reset
        }
    }

    /// Reads one response (Content-Length framed). Throws on EOF, reset or timeout before it is complete.
    func readResponse() async throws -> TestResponse {
        while true {
            if let response = try parseBuffered() { return response }
            switch await readSome() {
            case .data(let bytes): buffer.append(contentsOf: bytes)
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
            switch await readSome() {
            case .data: continue
            case .eof, .reset: return true
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
