import Foundation
import PubSubREST
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Namespace of the auth tests, so `swift test --filter AuthTests` runs them all.
enum AuthTests {}

/// Helpers for the auth tests: fixtures, child processes, the local token server.
enum AuthFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let keyJSON = directory.appendingPathComponent("test-service-account.json").path
    static let keyPEM = directory.appendingPathComponent("test-key.pem").path
    static let certPEM = directory.appendingPathComponent("test-cert.pem").path
    static let verifyScript = directory.appendingPathComponent("verify_jwt.py").path
    static let tokenServerScript = directory.appendingPathComponent("token_server.py").path

    static let clientEmail = "test-only@test-project.iam.gserviceaccount.com"
    static let keyID = "0123456789abcdef0123456789abcdef01234567"

    /// The fixture key file as a JSON object.
    static func keyObject() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: keyJSON))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Base64 lines of the PEM body: none of them may ever appear in an error message.
    static func privateKeyBodyLines() throws -> [String] {
        let pem = try String(contentsOfFile: keyPEM, encoding: .utf8)
        return pem.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("-----") && $0.count > 20 }
    }

    static func load() throws -> ServiceAccountKey {
        try ServiceAccountKey.load(path: keyJSON)
    }

    /// The fixture key with `token_uri` replaced.
    static func key(tokenURI: String) throws -> ServiceAccountKey {
        var object = try keyObject()
        object["token_uri"] = tokenURI
        return try ServiceAccountKey(jsonData: try JSONSerialization.data(withJSONObject: object), source: "test key for \(tokenURI)")
    }

    /// A fresh temporary directory, removed by the caller.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("auth-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

struct ProcessResult {
    var status: Int32
    var stdout: Data
    var stderr: Data
    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// Runs a command (found through `PATH`) to completion without blocking a thread.
///
/// Standard input and output go through temporary files, not pipes: a pipe's end inherited by
/// a concurrently started long-lived child (the token server) would keep EOF from arriving.
func runProcess(_ arguments: [String], stdin: Data = Data()) async throws -> ProcessResult {
    let directory = try AuthFixtures.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let inputURL = directory.appendingPathComponent("stdin")
    let outputURL = directory.appendingPathComponent("stdout")
    let errorURL = directory.appendingPathComponent("stderr")
    try stdin.write(to: inputURL)
    try Data().write(to: outputURL)
    try Data().write(to: errorURL)
    let input = try FileHandle(forReadingFrom: inputURL)
    let output = try FileHandle(forWritingTo: outputURL)
    let errors = try FileHandle(forWritingTo: errorURL)
    defer {
        try? input.close()
        try? output.close()
        try? errors.close()
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    process.standardInput = input
    process.standardOutput = output
    process.standardError = errors
    let status: Int32 = try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { finished in continuation.resume(returning: finished.terminationStatus) }
        do {
            try process.run()
        } catch {
            process.terminationHandler = nil
            continuation.resume(throwing: error)
        }
    }
    return ProcessResult(status: status, stdout: try Data(contentsOf: outputURL), stderr: try Data(contentsOf: errorURL))
}

/// `Fixtures/token_server.py` running on 127.0.0.1; stop it with `stop()` (in a `defer`).
final class TestTokenServer {
    let process: Process
    let port: Int
    private let directory: URL
    var baseURL: String { "http://127.0.0.1:\(port)" }
    var hostPort: String { "127.0.0.1:\(port)" }

    /// Starts the server with extra environment (`EXPIRES_IN`, `MODE`, `SLOW_SECONDS`, `ISSUE_DELAY`)
    /// and waits for the port it prints.
    init(_ settings: [String: String] = [:]) async throws {
        var environment = ProcessInfo.processInfo.environment
        environment["TEST_CERT"] = AuthFixtures.certPEM
        environment["PYTHONUNBUFFERED"] = "1"
        for (name, value) in settings { environment[name] = value }
        let directory = try AuthFixtures.temporaryDirectory()
        let outputURL = directory.appendingPathComponent("stdout")
        try Data().write(to: outputURL)
        let output = try FileHandle(forWritingTo: outputURL)
        defer { try? output.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", AuthFixtures.tokenServerScript]
        process.environment = environment
        process.standardOutput = output
        process.standardInput = FileHandle.nullDevice
        try process.run()

        var port: Int?
        let deadline = ContinuousClock.now + .seconds(30)
        while port == nil, process.isRunning, ContinuousClock.now < deadline {
            let text = String(decoding: (try? Data(contentsOf: outputURL)) ?? Data(), as: UTF8.self)
            if text.contains("\n") {
                port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard let port else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            try? FileManager.default.removeItem(at: directory)
            throw PubSubError(kind: .transport, message: "token_server.py did not print its port")
        }
        self.process = process
        self.port = port
        self.directory = directory
    }

    /// Kills the server by its PID and waits for it.
    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    struct Stats: Decodable, Equatable {
        var token_issued: Int
        var metadata_issued: Int
        var rejected: Int
    }

    func stats(transport: any HTTPTransport) async throws -> Stats {
        let response = try await transport.execute(HTTPRequest(method: "GET", url: baseURL + "/stats", timeout: .seconds(5)))
        #expect(response.status == 200)
        return try JSONDecoder().decode(Stats.self, from: response.body)
    }
}

/// A 127.0.0.1 port nothing listens on (bound, read, closed).
func closedLocalPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw PubSubError(kind: .transport, message: "socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
        }
    }
    guard bound else { throw PubSubError(kind: .transport, message: "bind() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Runs `body`, expecting a `PubSubError`, and returns it.
func expectPubSubError(
    _ body: () async throws -> Void,
    sourceLocation: SourceLocation = #_sourceLocation
) async -> PubSubError? {
    do {
        try await body()
        Issue.record("expected a PubSubError, got success", sourceLocation: sourceLocation)
        return nil
    } catch let error as PubSubError {
        return error
    } catch {
        Issue.record("expected a PubSubError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
