import Foundation
import PubSubREST
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The official Pub/Sub emulator, for tests and the benchmark.
///
/// `Emulator.shared()` returns the emulator named by `PUBSUB_EMULATOR_HOST` when that is set,
/// and otherwise starts one (`gcloud beta emulators pubsub start --host-port=127.0.0.1:PORT`)
/// on a free port, once per process. The emulator runs under a small watchdog shell in its own
/// process group: when this process exits (normally, or killed), the watchdog stops the
/// `gcloud` wrapper and its `java` child (which gcloud puts in a process group of their own).
public final class Emulator: Sendable {
    /// `host:port`, the value for `PUBSUB_EMULATOR_HOST`.
    public let host: String
    /// The watchdog's PID (the leader of the emulator's process group), nil for an external emulator.
    public let processGroup: Int32?
    /// The emulator's log file, for error messages.
    public let logPath: String?

    private init(host: String, processGroup: Int32?, logPath: String?) {
        self.host = host
        self.processGroup = processGroup
        self.logPath = logPath
    }

    private static let sharedTask = Mutex<Task<Emulator, any Error>?>(nil)

    /// The emulator shared by every test in this process.
    public static func shared() async throws -> Emulator {
        let task = sharedTask.withLock { current -> Task<Emulator, any Error> in
            if let current { return current }
            let task = Task<Emulator, any Error> {
                if let host = ProcessInfo.processInfo.environment["PUBSUB_EMULATOR_HOST"], !host.isEmpty {
                    return Emulator(host: host, processGroup: nil, logPath: nil)
                }
                return try await start()
            }
            current = task
            return task
        }
        return try await task.value
    }

    /// Starts a new emulator on a free port of 127.0.0.1 and waits until it answers.
    public static func start(port requestedPort: Int? = nil, startTimeout: Duration = .seconds(90)) async throws -> Emulator {
        let port = try requestedPort ?? freePort()
        let logPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("pubsub-emulator-\(getpid())-\(port).log").path
        let script = """
        parent=$1; port=$2; log=$3
        gcloud beta emulators pubsub start --host-port=127.0.0.1:$port --project=test-project >"$log" 2>&1 &
        child=$!
        echo "$child" > "$log.pid"
        # gcloud puts itself (and its java child) in a process group of its own: stop that group,
        # then this one.
        stop() {
            trap - EXIT TERM INT
            kill -TERM -- -"$child" 2>/dev/null; pkill -TERM -P "$child" 2>/dev/null; kill -TERM "$child" 2>/dev/null
            sleep 1
            kill -KILL -- -"$child" 2>/dev/null; pkill -KILL -P "$child" 2>/dev/null
            kill -TERM -- -$$ 2>/dev/null
        }
        trap stop EXIT TERM INT
        while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null && [ ! -e "$log.stop" ]; do sleep 1; done
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        process.arguments = ["/bin/bash", "-c", script, "emulator-watchdog", "\(getpid())", "\(port)", logPath]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw EmulatorError("could not run setsid/bash to start the emulator: \(error)")
        }
        let emulator = Emulator(host: "127.0.0.1:\(port)", processGroup: process.processIdentifier, logPath: logPath)
        emulatorLogs.withLock { $0.append(logPath) }
        registerExitHandler()

        let transport = CurlTransport()
        let deadline = ContinuousClock.now + startTimeout
        while ContinuousClock.now < deadline {
            if let response = try? await transport.execute(HTTPRequest(method: "GET", url: "http://\(emulator.host)/", timeout: .seconds(2))),
               response.status == 200 {
                return emulator
            }
            if !process.isRunning {
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        emulator.stop()
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "(no log)"
        throw EmulatorError("""
            the Pub/Sub emulator did not start on 127.0.0.1:\(port) within \(startTimeout). \
            It needs the Google Cloud SDK with the pubsub-emulator component and Java \
            (`gcloud beta emulators pubsub start`). Emulator log (\(logPath)):
            \(log.suffix(2000))
            """)
    }

    /// Stops this emulator (its whole process group). Does nothing for an external emulator.
    public func stop() {
        guard processGroup != nil, let logPath else { return }
        stopEmulator(logPath: logPath)
        emulatorLogs.withLock { logs in logs.removeAll { $0 == logPath } }
    }

    /// A `PubSubClient` for this emulator.
    public func client(projectID: String = "test-project", configuration: PubSubClient.Configuration? = nil) -> PubSubClient {
        var config = configuration ?? .default
        config.emulatorHost = host
        return PubSubClient(projectID: projectID, configuration: config)
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw EmulatorError("socket() failed: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw EmulatorError("bind(127.0.0.1:0) failed: errno \(errno)") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw EmulatorError("getsockname failed: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A resource name no other test uses: `prefix-<random>`.
public func uniqueName(_ prefix: String) -> String {
    "\(prefix)-\(UInt64.random(in: 0..<UInt64.max) % 1_000_000_000_000)"
}

public struct EmulatorError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

private let emulatorLogs = Mutex<[String]>([])

/// Tells the watchdog to stop (it checks for `<log>.stop` every second), and stops gcloud's own
/// process group (gcloud and java) at once, by the PID the watchdog wrote to `<log>.pid`.
private func stopEmulator(logPath: String) {
    _ = FileManager.default.createFile(atPath: logPath + ".stop", contents: nil)
    if let text = try? String(contentsOfFile: logPath + ".pid", encoding: .utf8),
       let gcloud = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), gcloud > 1 {
        kill(-gcloud, SIGTERM)
        kill(gcloud, SIGTERM)
    }
}
private let exitHandlerRegistered = Atomic<Bool>(false)

private func registerExitHandler() {
    guard exitHandlerRegistered.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
    atexit {
        for logPath in emulatorLogs.withLock({ $0 }) { stopEmulator(logPath: logPath) }
    }
}
