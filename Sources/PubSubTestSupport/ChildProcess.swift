import Foundation
import PubSubREST

#if canImport(Glibc)
import Glibc
#endif

/// A child process started for a test: its stdout can be read line by line, and it is stopped
/// by PID (SIGTERM, then SIGKILL) in `stop()` or when the value is released.
public final class ChildProcess: Sendable {
    public let process: Process
    private let stdoutPipe: Pipe

    public var pid: Int32 { process.processIdentifier }

    /// Starts `executable` with `arguments` and `environment` (merged over this process's).
    public init(executable: String, arguments: [String], environment: [String: String] = [:], stderr: FileHandle? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = stderr ?? FileHandle.standardError
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
        self.stdoutPipe = pipe
    }

    /// Reads one line of stdout (blocking, off the cooperative pool), or nil at end of file.
    public func readLine(timeout: Duration = .seconds(30)) async throws -> String? {
        let handle = stdoutPipe.fileHandleForReading
        return try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    Thread.detachNewThread {
                        var bytes: [UInt8] = []
                        while true {
                            let chunk = handle.readData(ofLength: 1)
                            if chunk.isEmpty { continuation.resume(returning: bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)); return }
                            if chunk[chunk.startIndex] == UInt8(ascii: "\n") { continuation.resume(returning: String(decoding: bytes, as: UTF8.self)); return }
                            bytes.append(chunk[chunk.startIndex])
                        }
                    }
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw EmulatorError("no line from child process \(self.pid) within \(timeout)")
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; waits for the exit.
    public func stop(grace: Duration = .seconds(5)) {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + grace
        while process.isRunning && ContinuousClock.now < deadline { usleep(20_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// The fault-injecting proxy (`Tests/PubSubRESTTests/Fixtures/fault_proxy.py`) in front of an
/// emulator: scripted 503 / 429 / 500 answers, connection resets, slow answers, and a record of
/// the `Authorization` headers it saw.
public final class FaultProxy: Sendable {
    public let child: ChildProcess
    public let port: Int
    private let transport = CurlTransport()

    /// A fault rule; see the script's header for the meaning of each field.
    public struct Rule: Sendable {
        public var match: String
        public var action: String
        public var status: Int?
        public var seconds: Double?
        public var count: Int

        public static func status(_ status: Int, match: String = "", count: Int = 1) -> Rule {
            Rule(match: match, action: "status", status: status, seconds: nil, count: count)
        }
        public static func reset(match: String = "", count: Int = 1) -> Rule {
            Rule(match: match, action: "reset", status: nil, seconds: nil, count: count)
        }
        public static func delay(_ seconds: Double, match: String = "", count: Int = 1) -> Rule {
            Rule(match: match, action: "delay", status: nil, seconds: seconds, count: count)
        }
        public static func garbage(_ status: Int = 502, match: String = "", count: Int = 1) -> Rule {
            Rule(match: match, action: "garbage", status: status, seconds: nil, count: count)
        }

        var json: [String: Any] {
            var object: [String: Any] = ["match": match, "action": action, "count": count]
            if let status { object["status"] = status }
            if let seconds { object["seconds"] = seconds }
            return object
        }
    }

    /// Starts the proxy in front of `upstream` (`host:port`). `script` is the path of fault_proxy.py.
    public init(upstream: String, script: String) async throws {
        child = try ChildProcess(executable: "/usr/bin/env", arguments: ["python3", script, upstream])
        guard let line = try await child.readLine(), let port = Int(line.trimmingCharacters(in: .whitespaces)) else {
            child.stop()
            throw EmulatorError("the fault proxy \(script) did not print its port")
        }
        self.port = port
    }

    /// `127.0.0.1:PORT`.
    public var host: String { "127.0.0.1:\(port)" }

    public func add(_ rules: [Rule]) async throws {
        let body = try JSONSerialization.data(withJSONObject: rules.map(\.json))
        let response = try await transport.execute(HTTPRequest(method: "POST", url: "http://\(host)/_faults", body: body))
        guard response.status == 200 else { throw EmulatorError("fault proxy refused the rules: HTTP \(response.status)") }
    }

    public func clear() async throws {
        _ = try await transport.execute(HTTPRequest(method: "DELETE", url: "http://\(host)/_faults"))
    }

    /// Requests seen per `"METHOD /path"`, faults applied per action, Authorization values seen.
    public func stats() async throws -> (requests: [String: Int], faults: [String: Int], authorization: [String]) {
        let response = try await transport.execute(HTTPRequest(method: "GET", url: "http://\(host)/_stats"))
        let object = try JSONSerialization.jsonObject(with: response.body) as? [String: Any] ?? [:]
        return (
            object["requests"] as? [String: Int] ?? [:],
            object["faults"] as? [String: Int] ?? [:],
            object["authorization"] as? [String] ?? []
        )
    }

    public func stop() { child.stop() }
}

/// Where SwiftPM put this package's executables: beside the test bundle.
public func builtProductPath(_ name: String) throws -> String {
    let candidates = [
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
        Bundle.main.bundleURL.deletingLastPathComponent(),
        Bundle.main.bundleURL,
    ]
    for directory in candidates {
        let path = directory.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw EmulatorError("the executable \(name) was not found beside the test bundle (\(candidates.map(\.path))); run `swift build` first")
}

/// Runs a command to completion with a time limit; returns exit status, stdout and stderr.
///
/// The child's stdin, stdout and stderr are temporary files, not pipes: another child started
/// meanwhile by a concurrent test would inherit a pipe's write end and keep it open, and a reader
/// waiting for end-of-file would then wait for that unrelated process.
public func runCommand(
    _ executable: String, _ arguments: [String], environment: [String: String] = [:],
    stdin: String? = nil, timeout: Duration = .seconds(60)
) async throws -> (status: Int32, stdout: String, stderr: String) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("run-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let inURL = directory.appendingPathComponent("stdin")
    let outURL = directory.appendingPathComponent("stdout")
    let errURL = directory.appendingPathComponent("stderr")
    try Data((stdin ?? "").utf8).write(to: inURL)
    try Data().write(to: outURL)
    try Data().write(to: errURL)
    let inHandle = try FileHandle(forReadingFrom: inURL)
    let outHandle = try FileHandle(forWritingTo: outURL)
    let errHandle = try FileHandle(forWritingTo: errURL)
    defer {
        try? inHandle.close()
        try? outHandle.close()
        try? errHandle.close()
    }

    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment { env[key] = value }
    process.environment = env
    process.standardInput = inHandle
    process.standardOutput = outHandle
    process.standardError = errHandle
    try process.run()
    let deadline = ContinuousClock.now + timeout
    while process.isRunning {
        if ContinuousClock.now > deadline {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw EmulatorError("\(executable) \(arguments) did not finish within \(timeout)")
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    process.waitUntilExit()
    let out = (try? Data(contentsOf: outURL)) ?? Data()
    let err = (try? Data(contentsOf: errURL)) ?? Data()
    return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
}
