import Foundation
import PubSubREST
import PubSubTestSupport
import Synchronization
import Testing

/// Pulls (several pulls in parallel, `returnImmediately`) and acknowledges until `expected`
/// messages arrived or `timeout` passed, then pulls a little longer to catch duplicates.
/// Returns every payload received, duplicates included.
private func pullAll(_ client: PubSubClient, subscription: String, expected: Int, timeout: Duration = .seconds(60)) async throws -> [String] {
    var received: [String] = []
    let deadline = ContinuousClock.now + timeout
    var extraRounds = 0
    while ContinuousClock.now < deadline {
        if received.count >= expected {
            extraRounds += 1
            if extraRounds > 3 { break }
        }
        received += try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<8 {
                group.addTask {
                    let messages = try await client.pull(subscription: subscription, maxMessages: 100, returnImmediately: true)
                    guard !messages.isEmpty else { return [] }
                    try await client.acknowledge(subscription: subscription, ackIDs: messages.map(\.ackID))
                    return messages.map { String(decoding: $0.message.data, as: UTF8.self) }
                }
            }
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        if received.count < expected { try await Task.sleep(for: .milliseconds(20)) }
    }
    return received
}

/// A topic and a subscription to it with a 600 s ack deadline (no redelivery during a test).
/// Made directly on the emulator, not through a fault proxy, and idempotently: on a loaded
/// machine a create can time out after the emulator did it, and its retry would see 409.
private func makeTopic(_: PubSubClient, ordering: Bool = false) async throws -> (topic: String, subscription: String) {
    let client = try await Emulator.shared().client()
    let topic = uniqueName("pub-topic")
    let subscription = uniqueName("pub-sub")
    try await client.ensureTopic(topic)
    try await client.ensureSubscription(subscription, Subscription(topic: topic, ackDeadlineSeconds: 600, enableMessageOrdering: ordering ? true : nil))
    return (topic, subscription)
}

/// A client behind the fault proxy with quick retries and a long attempt timeout: on a loaded
/// machine a 5 s attempt can time out after the emulator published, and the retry would
/// publish again, which the exactly-once and request-count checks would (rightly) flag.
private func proxiedClient(_ proxy: FaultProxy) -> PubSubClient {
    faultyClient(proxy, retry: RetrySettings(initialRetryDelay: .milliseconds(20), maxRetryDelay: .milliseconds(200), totalTimeout: .seconds(60), rpcTimeout: .seconds(30)))
}

private func startProxy() async throws -> FaultProxy {
    let emulator = try await Emulator.shared()
    return try await FaultProxy(upstream: emulator.host, script: fixturesDirectory.appendingPathComponent("fault_proxy.py").path)
}

/// Waits until `condition` holds, polling; false if `timeout` passed first.
private func eventually(timeout: Duration = .seconds(20), _ condition: () -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

@Suite("Publisher: batching, flow control, ordering, retries, shutdown", .timeLimit(.minutes(3)))
struct PublisherTests {
    @Test("10,000 messages published concurrently all arrive exactly once")
    func concurrentPublishArrivesOnce() async throws {
        let client = try await Emulator.shared().client()
        let (topic, subscription) = try await makeTopic(client)
        let publisher = try Publisher(client: client, topic: topic)
        let total = 10_000
        let ids = try await withThrowingTaskGroup(of: [String].self) { group in
            for task in 0..<100 {
                group.addTask {
                    var ids: [String] = []
                    for index in 0..<(total / 100) {
                        ids.append(try await publisher.publish(PubSubMessage("m-\(task)-\(index)")))
                    }
                    return ids
                }
            }
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        await publisher.shutdown()
        #expect(ids.count == total)
        #expect(Set(ids).count == total)

        let payloads = try await pullAll(client, subscription: subscription, expected: total)
        let expected = Set((0..<100).flatMap { task in (0..<(total / 100)).map { "m-\(task)-\($0)" } })
        #expect(Set(payloads) == expected)
        #expect(payloads.count - Set(payloads).count == 0, "duplicates by content")
    }

    @Test("1000 messages at once with countThreshold 100 go in about 10 requests")
    func batchingBatches() async throws {
        let proxy = try await startProxy()
        defer { proxy.stop() }
        let client = proxiedClient(proxy)
        let (topic, _) = try await makeTopic(client)
        let publisher = try Publisher(client: client, topic: topic, settings: .init(countThreshold: 100, delayThreshold: .milliseconds(500)))
        let ids = try await publisher.publish((0..<1000).map { PubSubMessage("b-\($0)") })
        #expect(Set(ids).count == 1000)
        await publisher.shutdown()
        let requests = try await proxy.stats().requests["POST /v1/projects/test-project/topics/\(topic):publish"] ?? 0
        #expect(requests >= 10)
        #expect(requests <= 12)
    }

    @Test("a lone message is sent after delayThreshold, without waiting for the count")
    func delayThresholdSendsLoneMessage() async throws {
        let client = try await Emulator.shared().client()
        let (topic, subscription) = try await makeTopic(client)
        let publisher = try Publisher(client: client, topic: topic, settings: .init(countThreshold: 1000, delayThreshold: .milliseconds(200)))
        let started = ContinuousClock.now
        let id = try await publisher.publish(PubSubMessage("lonely"))
        let elapsed = ContinuousClock.now - started
        #expect(!id.isEmpty)
        #expect(elapsed >= .milliseconds(150), "the batch waited for its delay")
        #expect(elapsed < .seconds(10))
        #expect(try await pullAll(client, subscription: subscription, expected: 1) == ["lonely"])
        await publisher.shutdown()
    }

    @Test("with ordering, 3 keys x 300 messages arrive in per-key order")
    func orderingKeysKeepOrder() async throws {
        let client = try await Emulator.shared().client()
        let (topic, subscription) = try await makeTopic(client, ordering: true)
        let publisher = try Publisher(client: client, topic: topic, settings: .init(countThreshold: 50, enableMessageOrdering: true))
        let keys = ["alpha", "beta", "gamma"]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for key in keys {
                group.addTask {
                    let ids = try await publisher.publish((0..<300).map { PubSubMessage("\(key):\($0)", orderingKey: key) })
                    #expect(ids.count == 300)
                }
            }
            try await group.waitForAll()
        }
        await publisher.shutdown()

        var sequences: [String: [Int]] = [:]
        var received = 0
        let deadline = ContinuousClock.now + .seconds(60)
        while received < 900 && ContinuousClock.now < deadline {
            let messages = try await client.pull(subscription: subscription, maxMessages: 100, returnImmediately: true)
            for message in messages {
                let parts = String(decoding: message.message.data, as: UTF8.self).split(separator: ":")
                #expect(message.message.orderingKey == String(parts[0]))
                sequences[String(parts[0]), default: []].append(Int(parts[1]) ?? -1)
            }
            received += messages.count
            if !messages.isEmpty { try await client.acknowledge(subscription: subscription, ackIDs: messages.map(\.ackID)) }
        }
        for key in keys {
            #expect(sequences[key] == Array(0..<300), "order of key \(key)")
        }
    }

    @Test("a failed batch pauses its ordering key until resumePublish; other keys go on")
    func failedBatchPausesKey() async throws {
        let proxy = try await startProxy()
        defer { proxy.stop() }
        let client = proxiedClient(proxy)
        let (topic, _) = try await makeTopic(client)
        let publisher = try Publisher(client: client, topic: topic, settings: .init(enableMessageOrdering: true))
        try await proxy.add([.status(400, match: ":publish")])

        let failed = await #expect(throws: PubSubError.self) { try await publisher.publish(PubSubMessage("first", orderingKey: "k")) }
        #expect(failed?.kind == .api)
        #expect(failed?.code == .invalidArgument)
        #expect(failed?.operation?.hasSuffix(":publish") == true)

        let paused = await #expect(throws: PubSubError.self) { try await publisher.publish(PubSubMessage("second", orderingKey: "k")) }
        #expect(paused?.kind == .orderingKeyPaused)
        #expect(paused?.message.contains("resumePublish") == true)

        #expect(try await !publisher.publish(PubSubMessage("other", orderingKey: "other-key")).isEmpty)
        #expect(try await !publisher.publish(PubSubMessage("no key")).isEmpty)

        publisher.resumePublish(orderingKey: "k")
        #expect(try await !publisher.publish(PubSubMessage("third", orderingKey: "k")).isEmpty)
        await publisher.shutdown()
        // 1 failed + "other" + "no key" + "third"; the paused publish sent nothing.
        let requests = try await proxy.stats().requests["POST /v1/projects/test-project/topics/\(topic):publish"] ?? 0
        #expect(requests == 4)
    }

    @Test("503, 429, 500 and resets are retried: every message published exactly once")
    func transientFaultsRecover() async throws {
        let proxy = try await startProxy()
        defer { proxy.stop() }
        let client = proxiedClient(proxy)
        let (topic, subscription) = try await makeTopic(client)
        try await proxy.add([
            .status(503, match: ":publish", count: 2), .status(429, match: ":publish", count: 2),
            .status(500, match: ":publish", count: 2), .reset(match: ":publish", count: 2),
        ])
        let publisher = try Publisher(client: client, topic: topic, settings: .init(countThreshold: 50))
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<300 {
                group.addTask { try await publisher.publish(PubSubMessage("f-\(index)")) }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        await publisher.shutdown()
        #expect(Set(ids).count == 300)
        let stats = try await proxy.stats()
        #expect(stats.faults["status"] == 6)
        #expect(stats.faults["reset"] == 2)
        let payloads = try await pullAll(client, subscription: subscription, expected: 300)
        #expect(Set(payloads) == Set((0..<300).map { "f-\($0)" }))
        #expect(payloads.count == 300, "no duplicates")
    }

    @Test("a persistent 503 fails each message after about the timeout with a clear error")
    func persistentFailureGivesUp() async throws {
        let proxy = try await startProxy()
        defer { proxy.stop() }
        let client = proxiedClient(proxy)
        let (topic, _) = try await makeTopic(client)
        try await proxy.add([.status(503, match: ":publish", count: -1)])
        let publisher = try Publisher(client: client, topic: topic, settings: .init(timeout: .seconds(2)))
        let started = ContinuousClock.now
        let results = await withTaskGroup(of: Result<String, any Error>.self) { group in
            for index in 0..<5 {
                group.addTask {
                    do {
                        return .success(try await publisher.publish(PubSubMessage("doomed-\(index)")))
                    } catch {
                        return .failure(error)
                    }
                }
            }
            return await group.reduce(into: [Result<String, any Error>]()) { $0.append($1) }
        }
        let elapsed = ContinuousClock.now - started
        #expect(results.count == 5)
        for result in results {
            #expect(throws: PubSubError.self) { try result.get() }
            if case .failure(let error as PubSubError) = result {
                #expect(error.kind == .api)
                #expect(error.code == .unavailable)
                #expect(error.message.contains("gave up"))
                #expect(error.operation?.hasSuffix(":publish") == true)
            }
        }
        #expect(elapsed >= .seconds(1))
        #expect(elapsed < .seconds(20))
        await publisher.shutdown()
    }

    @Test(".failFast: the 11th concurrent publish over maxOutstandingMessages 10 fails with .flowControl")
    func flowControlFailFast() async throws {
        let proxy = try await startProxy()
        defer { proxy.stop() }
        let client = proxiedClient(proxy)
        let (topic, _) = try await makeTopic(client)
        try await proxy.add([.delay(1, match: ":publish", count: -1)])
        let publisher = try Publisher(client: client, topic: topic, settings: .init(maxOutstandingMessages: 10, limitExceededBehavior: .failFast))
        let first = (0..<10).map { index in Task { try await publisher.publish(PubSubMessage("ff-\(index)")) } }
        #expect(try await eventually { publisher.outstandingMessages == 10 })
        let error = await #expect(throws: PubSubError.self) { try await publisher.publish(PubSubMessage("one too many")) }
        #expect(error?.kind == .flowControl)
        for task in first { #expect(try await !task.value.isEmpty) }
        #expect(publisher.outstandingMessages == 0)
        #expect(try await !publisher.publish(PubSubMessage("room again")).isEmpty)
        await publisher.shutdown()
    }

    @Test(".block: 100 publishes with maxOutstandingMessages 10 all succeed, never more than 10 outstanding")
    func flowControlBlocks() async throws {
        let proxy = try await startProxy()
        defer { proxy.stop() }
        let client = proxiedClient(proxy)
        let (topic, subscription) = try await makeTopic(client)
        try await proxy.add([.delay(0.2, match: ":publish", count: -1)])
        let publisher = try Publisher(client: client, topic: topic, settings: .init(maxOutstandingMessages: 10, limitExceededBehavior: .block))
        let maxSeen = Atomic<Int>(0)
        let sampler = Task {
            while !Task.isCancelled {
                maxSeen.max(publisher.outstandingMessages, ordering: .relaxed)
                try? await Task.sleep(for: .milliseconds(2))
            }
        }
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<100 {
                group.addTask { try await publisher.publish(PubSubMessage("blk-\(index)")) }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        sampler.cancel()
        await sampler.value
        await publisher.shutdown()
        #expect(Set(ids).count == 100)
        #expect(maxSeen.load(ordering: .relaxed) <= 10)
        #expect(maxSeen.load(ordering: .relaxed) > 0)
        // At most 10 messages per request, so at least 10 requests.
        let requests = try await proxy.stats().requests["POST /v1/projects/test-project/topics/\(topic):publish"] ?? 0
        #expect(requests >= 10)
        let payloads = try await pullAll(client, subscription: subscription, expected: 100)
        #expect(Set(payloads) == Set((0..<100).map { "blk-\($0)" }))
    }

    @Test("an empty, a 101-attribute and an 11 MB message are rejected at once, nothing sent")
    func invalidMessagesRejected() async throws {
        let proxy = try await startProxy()
        defer { proxy.stop() }
        let client = proxiedClient(proxy)
        let (topic, _) = try await makeTopic(client)
        let publisher = try Publisher(client: client, topic: topic)
        let attributes = Dictionary(uniqueKeysWithValues: (0..<101).map { ("k\($0)", "v") })
        let invalid = [
            PubSubMessage(data: Data()),
            PubSubMessage("x", attributes: attributes),
            PubSubMessage(data: Data(repeating: 0x61, count: 11_000_000)),
            PubSubMessage("keyed", orderingKey: "key"),  // ordering is not enabled
        ]
        let started = ContinuousClock.now
        for message in invalid {
            let error = await #expect(throws: PubSubError.self) { try await publisher.publish(message) }
            #expect(error?.kind == .invalidArgument)
        }
        #expect(ContinuousClock.now - started < .seconds(10))  // rejected at once, not after a send
        #expect(publisher.outstandingMessages == 0)
        await publisher.shutdown()
        #expect(try await proxy.stats().requests["POST /v1/projects/test-project/topics/\(topic):publish"] == nil)
        #expect(throws: PubSubError.self) { try Publisher(client: client, topic: "bad topic name!") }
    }

    @Test("shutdown sends all 500 accepted messages, then refuses new ones")
    func shutdownFlushesEverything() async throws {
        let client = try await Emulator.shared().client()
        let (topic, subscription) = try await makeTopic(client)
        // Neither threshold would send these for 60 s: only shutdown does.
        let publisher = try Publisher(client: client, topic: topic, settings: .init(countThreshold: 1000, delayThreshold: .seconds(60)))
        let tasks = (0..<500).map { index in Task { try await publisher.publish(PubSubMessage("s-\(index)")) } }
        #expect(try await eventually { publisher.outstandingMessages == 500 })
        let started = ContinuousClock.now
        await publisher.shutdown()
        #expect(ContinuousClock.now - started < .seconds(30))
        var ids: [String] = []
        for task in tasks { ids.append(try await task.value) }
        #expect(Set(ids).count == 500)
        #expect(publisher.outstandingMessages == 0)

        let error = await #expect(throws: PubSubError.self) { try await publisher.publish(PubSubMessage("late")) }
        #expect(error?.kind == .shutdown)
        #expect(error?.message == "the publisher was shut down")
        await publisher.shutdown()  // idempotent

        let payloads = try await pullAll(client, subscription: subscription, expected: 500)
        #expect(Set(payloads) == Set((0..<500).map { "s-\($0)" }))
    }

    @Test("flush sends a partial batch at once and waits for it")
    func flushSendsPartialBatch() async throws {
        let client = try await Emulator.shared().client()
        let (topic, _) = try await makeTopic(client)
        let publisher = try Publisher(client: client, topic: topic, settings: .init(countThreshold: 1000, delayThreshold: .seconds(60)))
        let tasks = (0..<20).map { index in Task { try await publisher.publish(PubSubMessage("fl-\(index)")) } }
        #expect(try await eventually { publisher.outstandingMessages == 20 })
        let started = ContinuousClock.now
        await publisher.flush()
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(publisher.outstandingMessages == 0)
        for task in tasks { #expect(try await !task.value.isEmpty) }
        await publisher.flush()  // nothing outstanding: returns at once
        await publisher.shutdown()
    }
}
