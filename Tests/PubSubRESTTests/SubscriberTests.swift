import Foundation
import PubSubREST
import PubSubTestSupport
import Synchronization
import Testing

/// The `Subscriber` against the emulator, some runs behind the fault proxy for request counts
/// and injected failures. Every run is bounded by `withTimeout`.
///
/// The full `swift test` runs every suite in parallel against one shared emulator on a small,
/// loaded machine (load average ~10 on 2 cores): a request can take seconds. So time bounds
/// are hang guards, several times what an idle machine needs, and a test that proves a nack
/// by a quick redelivery uses a long ack deadline (300 s), so that a generous bound still
/// separates "nacked" from "redelivered after the deadline".
@Suite("Subscriber against the emulator")
struct SubscriberTests {
    @Test("2,000 messages are each handled once, acks are batched, nothing is redelivered")
    func handlesEveryMessageOnce() async throws {
        let emulator = try await Emulator.shared()
        let proxy = try await FaultProxy(upstream: emulator.host, script: fixturesDirectory.appendingPathComponent("fault_proxy.py").path)
        defer { proxy.stop() }
        let client = subscriberClient(proxy.host)
        // 30 s: the proxy in between is slow on a loaded machine, and a deadline that passes
        // before a pulled batch is even read would (rightly) redeliver it.
        let (topic, sub) = try await makeSubscription(client, ackDeadlineSeconds: 30)
        let published = try await publish(client, topic: topic, count: 2000)

        let recorder = Recorder()
        let subscriber = Subscriber(client: client, subscription: sub)
        let started = ContinuousClock.now
        try await runUntil(subscriber, timeout: 180, handler: { message in
            recorder.record(message)
        }, until: { recorder.distinctCount >= 2000 })
        let elapsed = ContinuousClock.now - started
        print("Subscriber drained 2000 messages in \(elapsed)")

        #expect(recorder.distinctCount == 2000)
        #expect(recorder.maxDeliveries == 1)
        #expect(Set(recorder.ids) == Set(published.keys))
        for (id, data) in recorder.dataByID { #expect(published[id] == data) }
        let stats = subscriber.statistics
        #expect(stats.received == 2000)
        #expect(stats.acked == 2000)
        #expect(stats.outstandingMessages == 0)

        let requests = try await proxy.stats().requests
        let ackRequests = requests["POST /v1/projects/test-project/subscriptions/\(sub):acknowledge"] ?? 0
        #expect(ackRequests >= 2)
        #expect(ackRequests <= 100, "acks must be batched: \(ackRequests) acknowledge requests for 2000 messages")

        // Past the 30 s ack deadline, an unacknowledged message would be back.
        try await Task.sleep(for: .seconds(31))
        let again = try await client.pull(subscription: sub, maxMessages: 100, returnImmediately: true)
        #expect(again.isEmpty)
    }

    /// `SUBSCRIBER_DRAIN_COUNT`, `SUBSCRIBER_PULLERS` and `SUBSCRIBER_HANDLERS` change the size
    /// and settings, for measuring by hand.
    @Test("a 10,000-message backlog drains with the default settings")
    func drainsBacklog() async throws {
        let environment = ProcessInfo.processInfo.environment
        let count = environment["SUBSCRIBER_DRAIN_COUNT"].flatMap(Int.init) ?? 10_000
        var settings = Subscriber.Settings.default
        if let pullers = environment["SUBSCRIBER_PULLERS"].flatMap(Int.init) { settings.numPullers = pullers }
        if let handlers = environment["SUBSCRIBER_HANDLERS"].flatMap(Int.init) { settings.maxConcurrentHandlers = handlers }
        let client = try await Emulator.shared().client()
        let (topic, sub) = try await makeSubscription(client, ackDeadlineSeconds: 60)
        var published = Set<String>()
        for start in stride(from: 0, to: count, by: 10_000) {
            published.formUnion(try await publish(client, topic: topic, count: min(10_000, count - start)).keys)
        }
        let expected = published
        let seen = Counter()
        let subscriber = Subscriber(client: client, subscription: sub, settings: settings)
        let started = ContinuousClock.now
        try await runUntil(subscriber, timeout: 600, handler: { message in
            if expected.contains(message.messageID) { seen.increment() }
        }, until: { seen.value >= count })
        let elapsed = ContinuousClock.now - started
        print("Subscriber drained \(count) messages in \(elapsed): \(Int(Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))) msgs/s")
        #expect(seen.value == count)
        let stats = subscriber.statistics
        #expect(stats.acked == stats.handlersStarted)
        #expect(stats.acked >= count)
    }

    @Test("a handler slower than the ack deadline keeps its lease and is not redelivered")
    func slowHandlerLeaseIsExtended() async throws {
        let emulator = try await Emulator.shared()
        let proxy = try await FaultProxy(upstream: emulator.host, script: fixturesDirectory.appendingPathComponent("fault_proxy.py").path)
        defer { proxy.stop() }
        let client = subscriberClient(proxy.host)
        let (topic, sub) = try await makeSubscription(client, ackDeadlineSeconds: 10)
        _ = try await publish(client, topic: topic, count: 3)

        let recorder = Recorder()
        let finished = Counter()
        let subscriber = Subscriber(client: client, subscription: sub)
        try await runUntil(subscriber, timeout: 120, handler: { message in
            recorder.record(message)
            try await Task.sleep(for: .seconds(15))
            finished.increment()
        }, until: { finished.value >= 3 })
        // A redelivery after the 10 s deadline would have started a second handler by now.
        #expect(recorder.distinctCount == 3)
        #expect(recorder.maxDeliveries == 1)
        // The receipt modack and at least one more extension per message (15 s on 10 s leases).
        #expect(subscriber.statistics.leaseExtensions >= 6)
        #expect(subscriber.statistics.acked == 3)
        let modacks = try await proxy.stats().requests["POST /v1/projects/test-project/subscriptions/\(sub):modifyAckDeadline"] ?? 0
        #expect(modacks >= 3)
    }

    @Test("a message whose handler throws is nacked, redelivered, then succeeds")
    func throwingHandlerGetsMessageAgain() async throws {
        let client = try await Emulator.shared().client()
        // A 300 s deadline: redelivery within the test's time (120 s) proves the nack.
        let (topic, sub) = try await makeSubscription(client, ackDeadlineSeconds: 300)
        _ = try await publish(client, topic: topic, count: 3)

        let recorder = Recorder()
        let succeeded = Counter()
        let subscriber = Subscriber(client: client, subscription: sub)
        try await runUntil(subscriber, timeout: 120, handler: { message in
            if recorder.record(message) == 1 { throw TestFailure("first attempt fails") }
            succeeded.increment()
        }, until: { succeeded.value >= 3 })
        #expect(recorder.distinctCount == 3)
        #expect(recorder.minDeliveries >= 2)
        #expect(subscriber.statistics.nacked >= 3)
        #expect(subscriber.statistics.acked >= 3)
    }

    @Test("explicit nack redelivers at once; explicit ackWithResult wins over a later throw")
    func explicitAckAndNack() async throws {
        let client = try await Emulator.shared().client()
        // A 300 s deadline: redelivery within the test's time (120 s) proves the nack.
        let (topic, sub) = try await makeSubscription(client, ackDeadlineSeconds: 300)
        _ = try await publish(client, topic: topic, count: 1)

        let recorder = Recorder()
        let acked = Counter()
        let subscriber = Subscriber(client: client, subscription: sub)
        try await runUntil(subscriber, timeout: 120, handler: { message in
            if recorder.record(message) == 1 {
                message.nack()
                message.ack()  // ignored: the nack came first
                #expect(message.isSettled)
                return  // would ack, but the message is already settled
            }
            try await message.ackWithResult()
            acked.increment()
            throw TestFailure("thrown after the ack: must not nack")
        }, until: { acked.value >= 1 }, settle: .seconds(3))
        #expect(recorder.maxDeliveries == 2, "nacked once, redelivered once, then acked for good")
        #expect(subscriber.statistics.acked == 1)
        #expect(subscriber.statistics.nacked == 1)
    }

    @Test("maxOutstandingMessages 5 bounds the handlers running at once")
    func flowControlBoundsConcurrency() async throws {
        let client = try await Emulator.shared().client()
        let (topic, sub) = try await makeSubscription(client, ackDeadlineSeconds: 30)
        _ = try await publish(client, topic: topic, count: 40)

        let running = Counter()
        let maxRunning = Counter()
        let maxOutstanding = Counter()
        let done = Counter()
        let subscriber = Subscriber(client: client, subscription: sub, settings: Subscriber.Settings(maxOutstandingMessages: 5))
        try await runUntil(subscriber, timeout: 120, handler: { _ in
            let now = running.increment()
            maxRunning.raise(to: now)
            maxOutstanding.raise(to: subscriber.statistics.outstandingMessages)
            try await Task.sleep(for: .milliseconds(200))
            running.decrement()
            done.increment()
        }, until: { done.value >= 40 })
        #expect(maxRunning.value <= 5)
        #expect(maxRunning.value >= 3, "handlers should run concurrently up to the limit")
        #expect(maxOutstanding.value <= 5)
        #expect(subscriber.statistics.received >= 40)
    }

    @Test("shutdown under load nacks what it holds: a second subscriber gets the rest quickly")
    func shutdownUnderLoadLosesNothing() async throws {
        let client = try await Emulator.shared().client()
        // A 300 s deadline: the second subscriber getting the rest well before (120 s) proves
        // the nacks; the other bounds only guard against hangs.
        let (topic, sub) = try await makeSubscription(client, ackDeadlineSeconds: 300)
        let published = try await publish(client, topic: topic, count: 500)

        let first = Recorder()
        let handled = Recorder()
        let subscriber = Subscriber(client: client, subscription: sub, settings: Subscriber.Settings(maxConcurrentHandlers: 10))
        let runStarted = ContinuousClock.now
        try await runUntil(subscriber, timeout: 150, handler: { message in
            first.record(message)
            try await Task.sleep(for: .milliseconds(50))
            handled.record(message)
        }, until: { handled.distinctCount >= 100 })
        let runTook = ContinuousClock.now - runStarted
        let firstStats = subscriber.statistics
        #expect(handled.distinctCount >= 100)
        #expect(handled.distinctCount < 500)
        #expect(firstStats.acked == handled.distinctCount)
        #expect(firstStats.nacked > 0)
        #expect(firstStats.outstandingMessages == 0)
        #expect(runTook < .seconds(120), "receiving 100 messages and shutting down is a matter of seconds")

        let second = Recorder()
        let secondSubscriber = Subscriber(client: client, subscription: sub)
        let secondStarted = ContinuousClock.now
        let remaining = Set(published.keys).subtracting(handled.ids)
        try await runUntil(secondSubscriber, timeout: 150, handler: { message in
            second.record(message)
        }, until: { Set(second.ids).isSuperset(of: remaining) || ContinuousClock.now - secondStarted > .seconds(120) })
        #expect(ContinuousClock.now - secondStarted < .seconds(120), "well before the 300 s deadline: the first subscriber nacked")
        let missing = Set(published.keys).subtracting(handled.ids).subtracting(second.ids)
        #expect(missing.isEmpty, "lost: \(missing.count), first saw them: \(missing.filter { first.ids.contains($0) }.count)")
        #expect(Set(handled.ids).union(second.ids) == Set(published.keys))
    }

    @Test("after maxDeliveryAttempts failures the message moves to the dead-letter topic")
    func deadLetterPolicy() async throws {
        let client = try await Emulator.shared().client()
        let topic = uniqueName("topic")
        let deadTopic = uniqueName("dead")
        let sub = uniqueName("sub")
        let deadSub = uniqueName("deadsub")
        try await client.createTopic(topic)
        try await client.createTopic(deadTopic)
        try await client.createSubscription(deadSub, Subscription(topic: deadTopic))
        try await client.createSubscription(sub, Subscription(
            topic: topic, ackDeadlineSeconds: 10,
            deadLetterPolicy: DeadLetterPolicy(deadLetterTopic: deadTopic, maxDeliveryAttempts: 5)
        ))
        let ids = try await client.publish(topic: topic, messages: [PubSubMessage("poison")])

        let attempts = IntLog()
        let deadLettered = Recorder()
        let deadSubscriber = Subscriber(client: client, subscription: deadSub)
        let subscriber = Subscriber(client: client, subscription: sub)
        try await withTimeout(180, "dead-letter delivery") {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await subscriber.run { message in
                        attempts.append(message.deliveryAttempt ?? 0)
                        throw TestFailure("poison")
                    }
                }
                group.addTask {
                    try await deadSubscriber.run { message in deadLettered.record(message) }
                }
                try await waitUntil { deadLettered.distinctCount >= 1 }
                await subscriber.shutdown()
                await deadSubscriber.shutdown()
                try await group.waitForAll()
            }
        }
        #expect(deadLettered.dataByID.values.first == Data("poison".utf8))
        #expect(deadLettered.ids.count == 1)
        #expect(ids.count == 1)
        #expect(attempts.values == [1, 2, 3, 4, 5])
    }

    @Test("a subscription that does not exist ends run promptly with NOT_FOUND")
    func missingSubscription() async throws {
        let client = try await Emulator.shared().client()
        let subscriber = Subscriber(client: client, subscription: uniqueName("missing"))
        let started = ContinuousClock.now
        let error = await #expect(throws: PubSubError.self) {
            try await withTimeout(60, "run on a missing subscription") {
                try await subscriber.run { _ in }
            }
        }
        #expect(error?.code == .notFound)
        #expect(error?.message.contains("was not found") == true)
        #expect(ContinuousClock.now - started < .seconds(30), "no retrying of NOT_FOUND")
    }

    @Test("shutdown and cancellation on an idle subscription cancel the long-poll promptly")
    func idleShutdownIsPrompt() async throws {
        let client = try await Emulator.shared().client()
        let (_, sub) = try await makeSubscription(client, ackDeadlineSeconds: 10)

        let subscriber = Subscriber(client: client, subscription: sub)
        let run = Task { try await subscriber.run { _ in } }
        try await Task.sleep(for: .seconds(1))
        let started = ContinuousClock.now
        await subscriber.shutdown()
        try await run.value
        // An empty long-poll is held ~90 s: well under that proves it was cancelled.
        #expect(ContinuousClock.now - started < .seconds(20))

        let cancelled = Subscriber(client: client, subscription: sub)
        let task = Task { try await cancelled.run { _ in } }
        try await Task.sleep(for: .seconds(1))
        let cancelAt = ContinuousClock.now
        task.cancel()
        try await task.value  // a cancelled run shuts down gracefully and returns normally
        #expect(ContinuousClock.now - cancelAt < .seconds(20))
        #expect(await #expect(throws: PubSubError.self) { try await cancelled.run { _ in } }?.kind == .shutdown)
    }

    @Test("503, 500 and resets on pull are retried and every message still arrives")
    func pullFaultsAreRetried() async throws {
        let emulator = try await Emulator.shared()
        let proxy = try await FaultProxy(upstream: emulator.host, script: fixturesDirectory.appendingPathComponent("fault_proxy.py").path)
        defer { proxy.stop() }
        let client = subscriberClient(proxy.host)
        let (topic, sub) = try await makeSubscription(client, ackDeadlineSeconds: 30)
        let published = try await publish(client, topic: topic, count: 300)
        try await proxy.add([
            .status(503, match: ":pull", count: 5), .status(500, match: ":pull", count: 5), .reset(match: ":pull", count: 5),
        ])

        let recorder = Recorder()
        let subscriber = Subscriber(client: client, subscription: sub, settings: Subscriber.Settings(
            initialPullRetryDelay: .milliseconds(20), maxPullRetryDelay: .milliseconds(200)
        ))
        try await runUntil(subscriber, timeout: 120, handler: { message in
            recorder.record(message)
        }, until: { recorder.distinctCount >= 300 })
        #expect(Set(recorder.ids) == Set(published.keys))
        let stats = try await proxy.stats()
        #expect(stats.faults["status"] == 10)
        #expect(stats.faults["reset"] == 5)
        // libcurl itself resends a request whose reused connection was reset, so not every
        // reset reaches the subscriber.
        #expect(subscriber.statistics.pullFailures >= 10)
        #expect(subscriber.statistics.acked == recorder.deliveries)
    }

    @Test("maxOutstandingBytes bounds the bytes in handlers: one message at a time when it is tiny")
    func byteFlowControl() async throws {
        let client = try await Emulator.shared().client()
        let (topic, sub) = try await makeSubscription(client, ackDeadlineSeconds: 30)
        _ = try await publish(client, topic: topic, count: 10)

        let running = Counter()
        let maxRunning = Counter()
        let done = Counter()
        let subscriber = Subscriber(client: client, subscription: sub, settings: Subscriber.Settings(maxOutstandingBytes: 1))
        try await runUntil(subscriber, timeout: 120, handler: { _ in
            maxRunning.raise(to: running.increment())
            try await Task.sleep(for: .milliseconds(100))
            running.decrement()
            done.increment()
        }, until: { done.value >= 10 })
        #expect(maxRunning.value == 1)
        #expect(subscriber.statistics.acked == 10)
    }

    @Test("a handler still running at shutdownTimeout is cancelled and its message nacked")
    func shutdownTimeoutNacksRunningHandlers() async throws {
        let client = try await Emulator.shared().client()
        // A 300 s deadline: the second subscriber getting the message within 120 s proves the
        // nack; the handler sleeps 60 s, so shutdown under 40 s proves the cancellation.
        let (topic, sub) = try await makeSubscription(client, ackDeadlineSeconds: 300)
        let published = try await publish(client, topic: topic, count: 1)

        let started = Counter()
        let cancelled = Counter()
        let subscriber = Subscriber(client: client, subscription: sub, settings: Subscriber.Settings(shutdownTimeout: .seconds(1)))
        let shutdownAt = Box<ContinuousClock.Instant?>(nil)
        try await withTimeout(90, "shutdown with a stuck handler") {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await subscriber.run { _ in
                        started.increment()
                        do {
                            try await Task.sleep(for: .seconds(60))
                        } catch {
                            cancelled.increment()
                            throw error
                        }
                    }
                }
                try await waitUntil { started.value >= 1 }
                shutdownAt.withLock { $0 = .now }
                await subscriber.shutdown()
                try await group.waitForAll()
            }
        }
        let took = ContinuousClock.now - (shutdownAt.withLock { $0 } ?? .now)
        #expect(took < .seconds(40))
        #expect(cancelled.value == 1)
        // Pulls still in flight may bring the nacked message back once more; it is nacked again.
        #expect(subscriber.statistics.nackedOnShutdown >= 1)
        #expect(subscriber.statistics.acked == 0)

        // Nacked: back well before the 300 s deadline.
        let second = Recorder()
        try await runUntil(Subscriber(client: client, subscription: sub), timeout: 120, handler: { message in
            second.record(message)
        }, until: { second.distinctCount >= 1 })
        #expect(Set(second.ids) == Set(published.keys))
    }

    @Test("after maxExtension a lease is let go and the message is redelivered")
    func maxExtensionLetsGo() async throws {
        let client = try await Emulator.shared().client()
        let (topic, sub) = try await makeSubscription(client, ackDeadlineSeconds: 10)
        _ = try await publish(client, topic: topic, count: 1)

        let recorder = Recorder()
        let subscriber = Subscriber(client: client, subscription: sub, settings: Subscriber.Settings(maxExtension: .seconds(2)))
        try await runUntil(subscriber, timeout: 120, handler: { message in
            if recorder.record(message) == 1 {
                // Hold the first delivery until the redelivery arrives.
                try await withTimeout(90, "redelivery") { try await waitUntil { recorder.deliveries >= 2 } }
            }
        }, until: { recorder.deliveries >= 2 })
        #expect(recorder.maxDeliveries >= 2)
        #expect(subscriber.statistics.expired >= 1)
        // Only the receipt modack (cut to the 2 s left) and maybe one more cut to the last
        // second; none after maxExtension, or the lease would be held for 10 s at a time.
        #expect(subscriber.statistics.leaseExtensions <= 3)
    }

    @Test("ackWithResult reports an acknowledgement the server rejected")
    func ackWithResultReportsFailure() async throws {
        let client = try await Emulator.shared().client()
        let (topic, sub) = try await makeSubscription(client, ackDeadlineSeconds: 30)
        _ = try await publish(client, topic: topic, count: 1)

        let outcome = Box<String?>(nil)
        let subscriber = Subscriber(client: client, subscription: sub)
        try await withTimeout(120, "ackWithResult failure") {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    // The deleted subscription may also end run with NOT_FOUND.
                    _ = try? await subscriber.run { message in
                        try await client.deleteSubscription(sub)
                        do {
                            try await message.ackWithResult()
                            outcome.withLock { $0 = "acked" }
                        } catch let error as PubSubError {
                            outcome.withLock { $0 = "\(error.kind)/\(error.code?.rawValue ?? "")" }
                        }
                    }
                }
                try await waitUntil { outcome.withLock { $0 } != nil }
                await subscriber.shutdown()
                try await group.waitForAll()
            }
        }
        #expect(outcome.withLock { $0 } == "ackFailed/NOT_FOUND")
        #expect(subscriber.statistics.ackFailures >= 1)
    }
}

// MARK: - Helpers

/// A client for `host` with quick retries of acks and modacks.
private func subscriberClient(_ host: String) -> PubSubClient {
    var configuration = PubSubClient.Configuration.default
    configuration.emulatorHost = host
    configuration.retry = RetrySettings(initialRetryDelay: .milliseconds(20), maxRetryDelay: .milliseconds(500), totalTimeout: .seconds(30), rpcTimeout: .seconds(10))
    return PubSubClient(projectID: "test-project", configuration: configuration)
}

private func makeSubscription(_ client: PubSubClient, ackDeadlineSeconds: Int) async throws -> (topic: String, subscription: String) {
    let topic = uniqueName("topic")
    let sub = uniqueName("sub")
    try await client.createTopic(topic)
    try await client.createSubscription(sub, Subscription(topic: topic, ackDeadlineSeconds: ackDeadlineSeconds))
    return (topic, sub)
}

/// Publishes `count` messages ("message-<i>") in requests of 1000; returns data by message ID.
private func publish(_ client: PubSubClient, topic: String, count: Int) async throws -> [String: Data] {
    var result: [String: Data] = [:]
    for start in stride(from: 0, to: count, by: 1000) {
        let messages = (start..<min(start + 1000, count)).map { PubSubMessage("message-\($0)", attributes: ["index": "\($0)"]) }
        let ids = try await client.publish(topic: topic, messages: messages)
        for (id, message) in zip(ids, messages) { result[id] = message.data }
    }
    return result
}

/// Runs `subscriber` with `handler` until `condition` holds (then `settle` longer), shuts it
/// down, and checks that `run` returned normally; all within `timeout` seconds.
private func runUntil(
    _ subscriber: Subscriber, timeout: Double,
    handler: @escaping @Sendable (Subscriber.Message) async throws -> Void,
    until condition: @escaping @Sendable () -> Bool,
    settle: Duration = .zero
) async throws {
    try await withTimeout(timeout, "subscriber run") {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await subscriber.run(handler: handler) }
            try await waitUntil(condition)
            if settle > .zero { try await Task.sleep(for: settle) }
            await subscriber.shutdown()
            try await group.waitForAll()
        }
    }
}

private func waitUntil(_ condition: @Sendable () -> Bool) async throws {
    while !condition() { try await Task.sleep(for: .milliseconds(20)) }
}

private func withTimeout<T: Sendable>(_ seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw TestFailure("\(what) did not finish within \(seconds) s")
        }
        defer { group.cancelAll() }
        guard let result = try await group.next() else { throw TestFailure("\(what): no result") }
        return result
    }
}

private struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Deliveries seen by a handler, by message ID.
private final class Recorder: Sendable {
    private struct State {
        var deliveries: [String: Int] = [:]
        var data: [String: Data] = [:]
    }
    private let state = Mutex(State())

    /// Records one delivery; returns how many times this message was seen.
    @discardableResult
    func record(_ message: Subscriber.Message) -> Int {
        state.withLock { s in
            s.deliveries[message.messageID, default: 0] += 1
            s.data[message.messageID] = message.data
            return s.deliveries[message.messageID, default: 0]
        }
    }

    var distinctCount: Int { state.withLock { $0.deliveries.count } }
    var ids: [String] { state.withLock { Array($0.deliveries.keys) } }
    var deliveries: Int { state.withLock { $0.deliveries.values.reduce(0, +) } }
    var maxDeliveries: Int { state.withLock { $0.deliveries.values.max() ?? 0 } }
    var minDeliveries: Int { state.withLock { $0.deliveries.values.min() ?? 0 } }
    var dataByID: [String: Data] { state.withLock { $0.data } }
}

private final class Counter: Sendable {
    private let state = Mutex(0)
    @discardableResult
    func increment() -> Int { state.withLock { $0 += 1; return $0 } }
    func decrement() { state.withLock { $0 -= 1 } }
    func raise(to candidate: Int) { state.withLock { $0 = max($0, candidate) } }
    var value: Int { state.withLock { $0 } }
}

private final class IntLog: Sendable {
    private let state = Mutex<[Int]>([])
    func append(_ value: Int) { state.withLock { $0.append(value) } }
    var values: [Int] { state.withLock { $0 } }
}

private final class Box<Value: Sendable>: Sendable {
    private let state: Mutex<Value>
    init(_ value: Value) { state = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout sending Value) -> R) -> R { state.withLock { body(&$0) } }
}
