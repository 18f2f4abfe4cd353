import Foundation
import PubSubREST
import PubSubTestSupport
import Testing

let fixturesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

/// A client behind the fault proxy, whose retries are quick so the tests stay short.
func faultyClient(_ proxy: FaultProxy, retry: RetrySettings = RetrySettings(initialRetryDelay: .milliseconds(20), maxRetryDelay: .milliseconds(200), totalTimeout: .seconds(20), rpcTimeout: .seconds(5))) -> PubSubClient {
    var configuration = PubSubClient.Configuration.default
    configuration.emulatorHost = proxy.host
    configuration.retry = retry
    configuration.publishRetry = retry
    return PubSubClient(projectID: "test-project", configuration: configuration)
}

@Suite("REST client under injected faults")
struct ClientFaultTests {
    @Test("503, 429, 500 and a reset connection are retried until the call succeeds")
    func retriesTransientFailures() async throws {
        let emulator = try await Emulator.shared()
        let proxy = try await FaultProxy(upstream: emulator.host, script: fixturesDirectory.appendingPathComponent("fault_proxy.py").path)
        defer { proxy.stop() }
        let client = faultyClient(proxy)
        let topic = uniqueName("topic")
        try await client.createTopic(topic)
        try await proxy.add([
            .status(503, match: ":publish"), .status(429, match: ":publish"),
            .status(500, match: ":publish"), .reset(match: ":publish"),
        ])
        let ids = try await client.publish(topic: topic, messages: [PubSubMessage("survives")])
        #expect(ids.count == 1)
        let stats = try await proxy.stats()
        #expect(stats.requests["POST /v1/projects/test-project/topics/\(topic):publish"] == 5)
        #expect(stats.faults["status"] == 3)
        #expect(stats.faults["reset"] == 1)
        // The emulator needs no credentials: no Authorization header was ever sent.
        #expect(stats.authorization.isEmpty)
    }

    @Test("400 and 404 are not retried")
    func permanentFailuresAreNotRetried() async throws {
        let emulator = try await Emulator.shared()
        let proxy = try await FaultProxy(upstream: emulator.host, script: fixturesDirectory.appendingPathComponent("fault_proxy.py").path)
        defer { proxy.stop() }
        let client = faultyClient(proxy)
        let topic = uniqueName("topic")
        try await proxy.add([.status(400, match: "PUT")])
        let error = await #expect(throws: PubSubError.self) { try await client.createTopic(topic) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message == "injected 400")
        #expect(try await proxy.stats().requests["PUT /v1/projects/test-project/topics/\(topic)"] == 1)
    }

    @Test("a non-JSON error body gives a clear error with the status and an excerpt")
    func nonJSONErrorBody() async throws {
        let emulator = try await Emulator.shared()
        let proxy = try await FaultProxy(upstream: emulator.host, script: fixturesDirectory.appendingPathComponent("fault_proxy.py").path)
        defer { proxy.stop() }
        let client = faultyClient(proxy, retry: .none)
        try await proxy.add([.garbage(502, match: "GET")])
        let error = await #expect(throws: PubSubError.self) { try await client.getTopic("some-topic") }
        #expect(error?.httpStatus == 502)
        #expect(error?.kind == .api)
        #expect(error?.message.contains("<html>Bad Gateway</html>") == true)
        #expect(error?.isRetryable == true)
    }

    @Test("an answer slower than the attempt timeout is a timeout, retried, then succeeds")
    func slowAnswerTimesOut() async throws {
        let emulator = try await Emulator.shared()
        let proxy = try await FaultProxy(upstream: emulator.host, script: fixturesDirectory.appendingPathComponent("fault_proxy.py").path)
        defer { proxy.stop() }
        let topic = uniqueName("topic")
        let fast = faultyClient(proxy)
        try await fast.createTopic(topic)

        let once = faultyClient(proxy, retry: RetrySettings(rpcTimeout: .seconds(2), maxAttempts: 1))
        try await proxy.add([.delay(12, match: "GET")])
        let error = await #expect(throws: PubSubError.self) { try await once.getTopic(topic) }
        #expect(error?.kind == .timeout)
        #expect(error?.isRetryable == true)

        let retrying = faultyClient(proxy, retry: RetrySettings(initialRetryDelay: .milliseconds(10), totalTimeout: .seconds(60), rpcTimeout: .seconds(4)))
        try await proxy.add([.delay(12, match: "GET")])
        #expect(try await retrying.getTopic(topic).name.hasSuffix(topic))
    }

    @Test("a connection refused is a transport error naming curl's reason")
    func connectionRefused() async throws {
        let port = try freePort()
        var configuration = PubSubClient.Configuration.default
        configuration.emulatorHost = "127.0.0.1:\(port)"
        configuration.retry = RetrySettings(initialRetryDelay: .milliseconds(10), totalTimeout: .seconds(30), maxAttempts: 3)
        let client = PubSubClient(projectID: "test-project", configuration: configuration)
        let error = await #expect(throws: PubSubError.self) { try await client.getTopic("some-topic") }
        #expect(error?.kind == .transport)
        #expect(error?.message.contains("connect") == true)
        #expect(error?.message.contains("gave up after 3 attempts") == true)
    }

    @Test("cancelling the task stops a blocked long-poll pull promptly")
    func cancellationStopsLongPoll() async throws {
        let client = try await Emulator.shared().client()
        let topic = uniqueName("topic")
        let sub = uniqueName("sub")
        try await client.createTopic(topic)
        try await client.createSubscription(sub, Subscription(topic: topic))
        let started = ContinuousClock.now
        let task = Task { try await client.pull(subscription: sub, maxMessages: 10) }
        try await Task.sleep(for: .milliseconds(500))
        task.cancel()
        let result = await task.result
        let elapsed = ContinuousClock.now - started
        #expect(throws: PubSubError.self) { try result.get() }
        if case .failure(let error as PubSubError) = result { #expect(error.kind == .cancelled) }
        // The emulator holds an empty pull for ~90 s: returning within seconds proves the cancel.
        #expect(elapsed < .seconds(30))
    }
}
