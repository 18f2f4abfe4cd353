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

/// Runs a command (found through `PATH`) to completion.
func runProcess(_ arguments: [String], stdin: Data? = nil, environment: [String: String]? = nil) throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    if let environment { process.environment = environment }
    let output = Pipe()
    let errors = Pipe()
    let input = Pipe()
    process.standardOutput = output
    process.standardError = errors
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(stdin) }
    try input.fileHandleForWriting.close()
    let out = output.fileHandleForReading.readDataToEndOfFile()
    let err = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return ProcessResult(status: process.terminationStatus, stdout: out, stderr: err)
}

/// `Fixtures/token_server.py` running on 127.0.0.1; stop it with `stop()` (in a `defer`).
final class TestTokenServer {
    let process: Process
    let port: Int
    var baseURL: String { "http://127.0.0.1:\(port)" }
    var hostPort: String { "127.0.0.1:\(port)" }

    /// Starts the server with extra environment (`EXPIRES_IN`, `MODE`, `SLOW_SECONDS`, `ISSUE_DELAY`).
    init(_ settings: [String: String] = [:]) throws {
        var environment = ProcessInfo.processInfo.environment
        environment["TEST_CERT"] = AuthFixtures.certPEM
        environment["PYTHONUNBUFFERED"] = "1"
        for (name, value) in settings { environment[name] = value }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", AuthFixtures.tokenServerScript]
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let port = Int(text) else {
            process.terminate()
            process.waitUntilExit()
            throw PubSubError(kind: .transport, message: "token_server.py did not print its port (got \"\(text)\")")
        }
        self.process = process
        self.port = port
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
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
