import ArgumentParser
import Foundation
import PubSubREST
import PubSubTestSupport
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `pubsub-bench`: throughput, latency and memory of PubSubREST against the Pub/Sub emulator,
/// in the same scenarios as the Python anchors in `shared/bench/`.
///
///     swift run -c release pubsub-bench                 # every scenario, a table
///     swift run -c release pubsub-bench publish --json  # one scenario, JSON lines
@main
struct PubSubBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pubsub-bench",
        abstract: "Benchmark PubSubREST against the Pub/Sub emulator (publish, drain, e2e latency, HTTP).",
        discussion: """
            Starts its own emulator on a free port of 127.0.0.1 (a fresh one per scenario: the \
            emulator leaks memory on large REST publishes) unless PUBSUB_EMULATOR_HOST is set. \
            Prints a table, or with --json one JSON object per scenario per line with scenario, \
            messages, seconds, msgs_per_s, p50_ms, p99_ms, peak_rss_mb.
            """
    )

    enum Scenario: String, ExpressibleByArgument, CaseIterable {
        case publish, drain, e2e, http, all
    }

    @Argument(help: "publish | drain | e2e | http | all (http needs --reservations-binary).")
    var scenario: Scenario = .all

    @Option(help: "Messages to publish in the publish scenario.") var messages = 50_000
    @Option(help: "Payload size in bytes.") var size = 200
    @Option(help: "Backlog size in the drain scenario.") var backlog = 100_000
    @Option(help: "Messages per second in the e2e scenario.") var rate = 50
    @Option(help: "Seconds of the e2e scenario.") var duration = 20
    @Option(help: "Warm-up messages before each measured run (the emulator's JIT is slow at first).") var warmup = 5_000
    @Option(help: "ReservationsService binary for the http scenario (e.g. .build/release/ReservationsService).")
    var reservationsBinary: String?
    @Option(help: "wrk Lua script printing a RESULT line (shared/bench/wrk_post.lua).")
    var wrkScript = "../shared/bench/wrk_post.lua"
    @Option(help: "wrk connections for the http scenario.") var connections = 64
    @Option(help: "wrk seconds for the http scenario.") var wrkSeconds = 15
    @Flag(help: "One JSON object per scenario per line instead of a table.") var json = false
    @Option(help: "Publisher countThreshold (default: the library's, 100).") var countThreshold: Int?
    @Option(help: "Publisher maxOutstandingMessages (default: the library's, 1000).") var maxOutstanding: Int?
    @Option(help: "Publisher maxConcurrentBatches (default: the library's, 10).") var maxBatches: Int?

    var publisherSettings: Publisher.Settings {
        var settings = Publisher.Settings.default
        if let countThreshold { settings.countThreshold = countThreshold }
        if let maxOutstanding { settings.maxOutstandingMessages = maxOutstanding }
        if let maxBatches { settings.maxConcurrentBatches = maxBatches }
        return settings
    }

    var settingsLabel: String {
        let s = publisherSettings
        return s == .default ? "defaults" : "countThreshold=\(s.countThreshold) maxOutstandingMessages=\(s.maxOutstandingMessages) maxConcurrentBatches=\(s.maxConcurrentBatches)"
    }

    mutating func run() async throws {
        let scenarios: [Scenario] = scenario == .all
            ? (reservationsBinary == nil ? [.publish, .drain, .e2e] : [.publish, .drain, .e2e, .http])
            : [scenario]
        var results: [BenchResult] = []
        for scenario in scenarios {
            let emulator = try await BenchEmulator.start()
            defer { emulator.stop() }
            let result: BenchResult
            switch scenario {
            case .publish: result = try await publishScenario(emulator.client)
            case .drain: result = try await drainScenario(emulator.client)
            case .e2e: result = try await e2eScenario(emulator.client)
            case .http: result = try await httpScenario(emulator)
            case .all: continue
            }
            results.append(result)
            FileHandle.standardOutput.write(Data(((json ? result.jsonLine : result.tableRow) + "\n").utf8))
        }
        if !json {
            print("\n(the emulator runs on this machine too; compare ratios with the anchors of the same run)")
        }
    }

    // MARK: - publish

    func publishScenario(_ client: PubSubClient) async throws -> BenchResult {
        let topic = uniqueName("bench-pub")
        try await client.createTopic(topic)
        let publisher = try Publisher(client: client, topic: topic, settings: publisherSettings)
        let payload = Data(repeating: UInt8(ascii: "x"), count: size)
        try await publishConcurrently(publisher, count: warmup, payload: payload)
        Memory.resetPeak()
        let clock = ContinuousClock()
        let cpu0 = CPUTime.now()
        let elapsed = try await clock.measure {
            try await publishConcurrently(publisher, count: messages, payload: payload)
        }
        let cpu = CPUTime.now() - cpu0
        await publisher.shutdown()
        return BenchResult(
            scenario: "publish", messages: messages, seconds: elapsed.inSeconds,
            peakRSSMB: Memory.peakMB(), cpuSeconds: cpu,
            extra: ["size_bytes": "\(size)", "settings": settingsLabel]
        )
    }

    /// Publishes `count` messages from 64 concurrent tasks; every result is awaited.
    func publishConcurrently(_ publisher: Publisher, count: Int, payload: Data) async throws {
        let next = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    try await withThrowingTaskGroup(of: String.self) { inner in
                        while true {
                            let i = next.next()
                            if i >= count { break }
                            inner.addTask { try await publisher.publish(PubSubMessage(data: payload)) }
                            // Keep a bounded window of awaited publishes per task.
                            if i % 256 == 255 { while try await inner.next() != nil {} }
                        }
                        while try await inner.next() != nil {}
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    // MARK: - drain

    func drainScenario(_ client: PubSubClient) async throws -> BenchResult {
        let topic = uniqueName("bench-drain")
        try await client.createTopic(topic)
        let payload = Data(repeating: UInt8(ascii: "y"), count: size)
        // Warm-up subscription: drain a small backlog first (JIT).
        let warm = uniqueName("bench-warm")
        try await client.createSubscription(warm, Subscription(topic: topic, ackDeadlineSeconds: 60))
        try await fill(client, topic: topic, count: min(warmup, 10_000), payload: payload)
        _ = try await drain(client, subscription: warm, count: min(warmup, 10_000))
        try await client.deleteSubscription(warm)

        let sub = uniqueName("bench-drain-sub")
        try await client.createSubscription(sub, Subscription(topic: topic, ackDeadlineSeconds: 60))
        try await fill(client, topic: topic, count: backlog, payload: payload)
        Memory.resetPeak()
        let cpu0 = CPUTime.now()
        let elapsed = try await drain(client, subscription: sub, count: backlog)
        let cpu = CPUTime.now() - cpu0
        return BenchResult(
            scenario: "drain", messages: backlog, seconds: elapsed.inSeconds,
            peakRSSMB: Memory.peakMB(), cpuSeconds: cpu,
            extra: ["size_bytes": "\(size)", "settings": "defaults"]
        )
    }

    func fill(_ client: PubSubClient, topic: String, count: Int, payload: Data) async throws {
        let batch = [PubSubMessage](repeating: PubSubMessage(data: payload), count: 1000)
        var sent = 0
        while sent < count {
            let n = min(1000, count - sent)
            _ = try await client.publish(topic: topic, messages: Array(batch.prefix(n)))
            sent += n
        }
    }

    /// Runs a Subscriber with default settings until `count` distinct messages were handled.
    func drain(_ client: PubSubClient, subscription: String, count: Int) async throws -> Duration {
        let subscriber = Subscriber(client: client, subscription: subscription)
        let seen = Mutex(Set<String>())
        let done = AsyncStream<Void>.makeStream()
        let start = ContinuousClock.now
        let runner = Task { try await subscriber.run { message in
            let total = seen.withLock { set -> Int in
                set.insert(message.messageID)
                return set.count
            }
            if total == count { done.continuation.yield() }
        } }
        let watchdog = Task {
            try await Task.sleep(for: .seconds(600))
            done.continuation.yield()
        }
        for await _ in done.stream { break }
        let elapsed = ContinuousClock.now - start
        watchdog.cancel()
        await subscriber.shutdown()
        _ = try? await runner.value
        let handled = seen.withLock { $0.count }
        guard handled >= count else {
            throw ValidationError("drain handled \(handled) of \(count) messages within 600 s")
        }
        return elapsed
    }

    // MARK: - e2e latency

    func e2eScenario(_ client: PubSubClient) async throws -> BenchResult {
        let topic = uniqueName("bench-e2e")
        let sub = uniqueName("bench-e2e-sub")
        try await client.createTopic(topic)
        try await client.createSubscription(sub, Subscription(topic: topic, ackDeadlineSeconds: 60))
        let publisher = try Publisher(client: client, topic: topic)
        let subscriber = Subscriber(client: client, subscription: sub)
        let latencies = Mutex<[Double]>([])
        let total = rate * duration
        Memory.resetPeak()
        let runner = Task { try await subscriber.run { message in
            let now = Clock.wallNanoseconds()
            if let sent = message.attributes["t_ns"].flatMap(Int64.init) {
                latencies.withLock { $0.append(Double(now - sent) / 1e6) }
            }
        } }
        // Let the pullers reach the server before measuring.
        try await Task.sleep(for: .seconds(2))
        let payload = Data(repeating: UInt8(ascii: "z"), count: size)
        let interval = Duration.seconds(1.0 / Double(rate))
        let start = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<total {
                try await Task.sleep(until: start + interval * i, clock: .continuous)
                group.addTask {
                    _ = try await publisher.publish(PubSubMessage(data: payload, attributes: ["t_ns": "\(Clock.wallNanoseconds())"]))
                }
            }
            try await group.waitForAll()
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while latencies.withLock({ $0.count }) < total && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        await subscriber.shutdown()
        _ = try? await runner.value
        await publisher.shutdown()
        let values = latencies.withLock { $0 }.sorted()
        return BenchResult(
            scenario: "e2e", messages: values.count, seconds: Double(duration),
            p50: percentile(values, 50), p99: percentile(values, 99), peakRSSMB: Memory.peakMB(),
            extra: ["rate_per_s": "\(rate)", "expected": "\(total)"]
        )
    }

    // MARK: - HTTP

    /// Pulls (and acks) until `expected` distinct messages were seen or 10 s pass with none new.
    func countDistinct(_ client: PubSubClient, subscription: String, expected: Int) async throws -> Int {
        var seen = Set<String>()
        var idleSince = ContinuousClock.now
        while seen.count < expected && ContinuousClock.now - idleSince < .seconds(10) {
            let batch = try await withThrowingTaskGroup(of: [ReceivedMessage].self) { group in
                for _ in 0..<4 { group.addTask { try await client.pull(subscription: subscription, maxMessages: 1000, returnImmediately: true) } }
                var all: [ReceivedMessage] = []
                for try await part in group { all += part }
                return all
            }
            if !batch.isEmpty {
                idleSince = ContinuousClock.now
                batch.forEach { seen.insert($0.messageID) }
                try await client.acknowledge(subscription: subscription, ackIDs: batch.map(\.ackID))
            }
        }
        return seen.count
    }

    func httpScenario(_ emulator: BenchEmulator) async throws -> BenchResult {
        guard let reservationsBinary else {
            throw ValidationError("the http scenario needs --reservations-binary (build with `swift build -c release`)")
        }
        let client = emulator.client
        let topic = uniqueName("bench-http")
        let sub = uniqueName("bench-http-sub")
        try await client.createTopic(topic)
        try await client.createSubscription(sub, Subscription(topic: topic, ackDeadlineSeconds: 60))
        let port = try freePort()
        let env = [
            "PUBSUB_EMULATOR_HOST": emulator.host, "PROJECT_ID": client.projectID, "TOPIC_ID": topic,
            "PORT": "\(port)", "LOG_LEVEL": "warning", "PUBSUB_AUTO_CREATE": "false",
        ]
        let service = try ChildProcess(executable: reservationsBinary, arguments: [], environment: env, stderr: FileHandle.nullDevice)
        defer { service.stop() }
        let transport = CurlTransport()
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let response = try? await transport.execute(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(port)/healthz", timeout: .seconds(1))), response.status == 200 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        let idleRSS = Memory.rssMB(pid: service.pid)
        // Warm-up (JIT of the emulator, connection pool of the service).
        _ = try await runCommand("/usr/bin/wrk", ["-t2", "-c\(connections)", "-d3s", "-s", wrkScript, "http://127.0.0.1:\(port)/reservations"], timeout: .seconds(60))
        let sampler = RSSSampler(pid: service.pid)
        let result = try await runCommand("/usr/bin/wrk", ["-t2", "-c\(connections)", "-d\(wrkSeconds)s", "--latency", "-s", wrkScript, "http://127.0.0.1:\(port)/reservations"], timeout: .seconds(Int64(wrkSeconds) + 60))
        let peakLoadRSS = await sampler.stop()
        guard let line = result.stdout.split(separator: "\n").first(where: { $0.hasPrefix("RESULT") }) else {
            throw ValidationError("wrk printed no RESULT line (is \(wrkScript) the shared wrk_post.lua?): \(result.stdout) \(result.stderr)")
        }
        let fields = Dictionary(line.split(separator: " ").dropFirst().compactMap { part -> (String, String)? in
            let kv = part.split(separator: "=", maxSplits: 1)
            return kv.count == 2 ? (String(kv[0]), String(kv[1])) : nil
        }, uniquingKeysWith: { a, _ in a })
        let requests = Int(fields["requests"] ?? "") ?? 0
        let created = Int(fields["s201"] ?? fields["201"] ?? "") ?? 0
        let rps = Double(fields["rps"] ?? fields["req_per_s"] ?? "") ?? 0
        var extra: [String: String] = [
            "requests": "\(requests)", "created_201": "\(created)", "connections": "\(connections)",
            "rss_idle_mb": String(format: "%.1f", idleRSS), "wrk": String(line),
        ]
        // Every 201 must have put its event on the topic: count what the subscription holds.
        let delivered = try await countDistinct(client, subscription: sub, expected: created)
        extra["events_delivered"] = "\(delivered)"
        extra["all_201_delivered"] = "\(delivered >= created)"
        return BenchResult(
            scenario: "http", messages: requests, seconds: Double(wrkSeconds), rate: rps,
            p50: Double(fields["p50_ms"] ?? "") , p99: Double(fields["p99_ms"] ?? ""),
            peakRSSMB: peakLoadRSS, extra: extra
        )
    }
}

// MARK: - Support

struct BenchEmulator {
    let emulator: Emulator?
    let host: String
    let client: PubSubClient

    static func start() async throws -> BenchEmulator {
        if let host = ProcessInfo.processInfo.environment["PUBSUB_EMULATOR_HOST"], !host.isEmpty {
            return BenchEmulator(emulator: nil, host: host, client: PubSubClient(projectID: "bench-proj", configuration: .init(emulatorHost: host)))
        }
        let emulator = try await Emulator.start()
        return BenchEmulator(emulator: emulator, host: emulator.host, client: PubSubClient(projectID: "bench-proj", configuration: .init(emulatorHost: emulator.host)))
    }

    func stop() { emulator?.stop() }
}

struct BenchResult {
    var scenario: String
    var messages: Int
    var seconds: Double
    var rate: Double?
    var p50: Double?
    var p99: Double?
    var peakRSSMB: Double
    var cpuSeconds: Double?
    var extra: [String: String] = [:]

    var msgsPerSecond: Double { rate ?? (seconds > 0 ? Double(messages) / seconds : 0) }

    var jsonLine: String {
        var object: [String: Any] = [
            "scenario": scenario, "messages": messages, "seconds": round3(seconds),
            "msgs_per_s": round3(msgsPerSecond), "peak_rss_mb": round3(peakRSSMB),
            "p50_ms": p50.map(round3) ?? NSNull(), "p99_ms": p99.map(round3) ?? NSNull(),
        ]
        if let cpuSeconds { object["cpu_s"] = round3(cpuSeconds) }
        for (key, value) in extra { object[key] = value }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    var tableRow: String {
        func f(_ value: Double?) -> String { value.map { String(format: "%.2f", $0) } ?? "-" }
        return String(format: "%-8@ %9d msgs %8.2f s %10.0f msgs/s  p50 %@ ms  p99 %@ ms  peak RSS %.1f MB",
                      scenario as NSString, messages, seconds, msgsPerSecond, f(p50) as NSString, f(p99) as NSString, peakRSSMB)
    }
}

func round3(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }

func percentile(_ sorted: [Double], _ p: Double) -> Double? {
    guard !sorted.isEmpty else { return nil }
    let index = min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))
    return sorted[index]
}

enum Clock {
    static func wallNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}

enum Memory {
    /// Resets this process's peak RSS (VmHWM) so the next scenario measures its own.
    static func resetPeak() {
        _ = try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    }

    static func peakMB() -> Double { statusField("VmHWM", pid: nil) }
    static func rssMB(pid: Int32) -> Double { statusField("VmRSS", pid: pid) }

    private static func statusField(_ name: String, pid: Int32?) -> Double {
        let path = pid.map { "/proc/\($0)/status" } ?? "/proc/self/status"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
            return kb / 1024
        }
        return 0
    }
}

enum CPUTime {
    static func now() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
    }
}

/// Samples another process's RSS every 100 ms and keeps the peak.
final class RSSSampler: Sendable {
    private final class Peak: Sendable {
        let value = Mutex<Double>(0)
    }
    private let peakBox = Peak()
    private let task: Task<Void, Never>

    init(pid: Int32) {
        let peak = peakBox
        task = Task {
            while !Task.isCancelled {
                let rss = Memory.rssMB(pid: pid)
                peak.value.withLock { $0 = max($0, rss) }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    func stop() async -> Double {
        task.cancel()
        await task.value
        return peakBox.value.withLock { $0 }
    }
}

extension Duration {
    var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// A shared counter handing out 0, 1, 2, ... to concurrent tasks.
final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.add(1, ordering: .relaxed).oldValue }
}
