import Foundation
import PubSubREST
import PubSubTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Where `swift build` put the executables: next to the test bundle.
func executable(_ name: String) throws -> String {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        directory = directory.deletingLastPathComponent()
    }
    let fallback = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debug/\(name)").path
    if FileManager.default.isExecutableFile(atPath: fallback) { return fallback }
    throw EmulatorError("\(name) not found next to \(CommandLine.arguments[0]); run `swift build` first")
}

let faultProxyScript = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("PubSubRESTTests/Fixtures/fault_proxy.py").path

/// A daemon started for a test: stdout and stderr are collected line by line in the
/// background; stopped by PID.
final class DaemonProcess: Sendable {
    let name: String
    let process: Process
    private let stdoutLines = Mutex<[String]>([])
    private let stderrLines = Mutex<[String]>([])

    var pid: Int32 { process.processIdentifier }

    init(_ executableName: String, name: String? = nil, environment: [String: String]) throws {
        self.name = name ?? executableName
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try executable(executableName))
        var env = ProcessInfo.processInfo.environment
        for key in ["PORT", "PUBSUB_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "TOPIC_ID", "SUBSCRIPTION_ID", "PUBSUB_AUTO_CREATE"] {
            env[key] = nil
        }
        env["LOG_FORMAT"] = "json"
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        self.process = process
        try process.run()
        Self.collect(out.fileHandleForReading) { line in self.stdoutLines.withLock { $0.append(line) } }
        Self.collect(err.fileHandleForReading) { line in self.stderrLines.withLock { $0.append(line) } }
    }

    private static func collect(_ handle: FileHandle, append: @escaping @Sendable (String) -> Void) {
        Thread.detachNewThread {
            var buffer: [UInt8] = []
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                buffer.append(contentsOf: chunk)
                while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: buffer[..<newline], as: UTF8.self)
                    buffer.removeSubrange(...newline)
                    append(line)
                }
            }
            if !buffer.isEmpty {
                let line = String(decoding: buffer, as: UTF8.self)
                append(line)
            }
        }
    }

    var output: [String] { stdoutLines.withLock { $0 } }
    var errors: [String] { stderrLines.withLock { $0 } }

    /// stdout lines that are JSON objects.
    var logs: [[String: Any]] {
        output.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    func logs(message: String) -> [[String: Any]] {
        logs.filter { $0["message"] as? String == message }
    }

    var isRunning: Bool { process.isRunning }

    /// Waits until a log line with `message` (and matching `where`) appears.
    @discardableResult
    func waitForLog(_ message: String, timeout: Duration = .seconds(30), where predicate: ([String: Any]) -> Bool = { _ in true }) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = logs(message: message).first(where: predicate) { return line }
            if !process.isRunning {
                try await Task.sleep(for: .milliseconds(200))
                if let line = logs(message: message).first(where: predicate) { return line }
                throw EmulatorError("\(name) exited (status \(process.terminationStatus)) before logging '\(message)'. stderr: \(errors.suffix(5)) stdout: \(output.suffix(5))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw EmulatorError("\(name) did not log '\(message)' within \(timeout). Last lines: \(output.suffix(5)) stderr: \(errors.suffix(5))")
    }

    /// Waits for the process to exit by itself; returns its status, nil on timeout.
    func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if process.isRunning { return nil }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// SIGTERM, then waits up to `timeout`; SIGKILL after that. Returns the exit status and the
    /// time it took, or nil status when it had to be killed.
    @discardableResult
    func terminate(timeout: Duration = .seconds(15)) async -> (status: Int32?, took: Duration) {
        let started = ContinuousClock.now
        guard process.isRunning else { return (process.terminationStatus, .zero) }
        kill(pid, SIGTERM)
        let status = await waitForExit(timeout: timeout)
        if status == nil {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
        return (status, ContinuousClock.now - started)
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// A minimal HTTP client over `CurlTransport`.
struct HTTP: Sendable {
    let transport = CurlTransport()
    let base: String

    init(port: Int) { base = "http://127.0.0.1:\(port)" }

    func request(_ method: String, _ path: String, body: String? = nil, timeout: Duration = .seconds(20)) async throws -> HTTPResponse {
        try await transport.execute(HTTPRequest(
            method: method, url: base + path,
            headers: body == nil ? [] : [("Content-Type", "application/json")],
            body: body.map { Data($0.utf8) }, timeout: timeout
        ))
    }

    /// Polls until `path` answers `status`.
    func waitFor(_ path: String, status: Int = 200, timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let response = try? await request("GET", path, timeout: .seconds(3)), response.status == status { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw EmulatorError("\(base)\(path) did not answer \(status) within \(timeout)")
    }
}

/// Sends raw bytes over TCP and returns the response's status line (or "" when the server
/// closed without answering).
func rawExchange(port: Int, _ bytes: [UInt8], timeoutSeconds: Int = 10) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw EmulatorError("socket failed") }
    defer { close(fd) }
    var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw EmulatorError("connect to \(port) failed") }
    _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        response.append(contentsOf: buffer[..<n])
        if response.contains(UInt8(ascii: "\n")) { break }
    }
    let text = String(decoding: response, as: UTF8.self)
    return text.split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? ""
}
