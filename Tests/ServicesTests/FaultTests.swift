import DaemonSupport
import Foundation
import PubSubREST
import PubSubTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Bad input and Pub/Sub outages against the real executables.
@Suite struct FaultTests {
    func env(_ emulatorHost: String, _ extra: [String: String]) -> [String: String] {
        ["PUBSUB_EMULATOR_HOST": emulatorHost, "PROJECT_ID": "test-project"].merging(extra) { $1 }
    }

    @Test func malformedAndOversizedRequestsOverTheWire() async throws {
        let emulator = try await Emulator.shared()
        let port = try freePort()
        let service = try DaemonProcess("ReservationsService", environment: env(emulator.host, ["PORT": "\(port)", "TOPIC_ID": uniqueName("bad-input")]))
        try await service.waitForLog("Listening")

        let oversized = "POST /reservations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(2 * 1024 * 1024)\r\n\r\n"
        #expect(try rawExchange(port: port, Array(oversized.utf8)).hasPrefix("HTTP/1.1 413"))
        #expect(try rawExchange(port: port, Array("GARBAGE\r\n\r\n".utf8)).hasPrefix("HTTP/1.1 400"))
        #expect(try rawExchange(port: port, [0x16, 0x03, 0x01, 0x00, 0xff, 0x0d, 0x0a, 0x0d, 0x0a]).hasPrefix("HTTP/1.1 400"))

        let http = HTTP(port: port)
        let invalid = try await http.request("POST", "/reservations", body: "{\"guests\":")
        #expect(invalid.status == 400)
        #expect(String(decoding: invalid.body, as: UTF8.self).contains("\"error\""))
        #expect(try await http.request("POST", "/reservations", body: "[1]").status == 400)
        #expect(try await http.request("POST", "/reservations").status == 201, "still serving after bad input")

        let outcome = await service.terminate()
        #expect(outcome.status == 0)
    }

    @Test func configurationErrorIsOneLineAndExit1() async throws {
        let bad = try DaemonProcess("ReservationsService", environment: ["PROJECT_ID": "test-project", "PORT": "abc"])
        #expect(await bad.waitForExit(timeout: .seconds(10)) == 1)
        try await Task.sleep(for: .milliseconds(100))
        #expect(bad.errors.count == 1, "\(bad.errors)")
        #expect(bad.errors.first == "reservations-service: configuration error: PORT is 'abc': expected a TCP port number from 1 to 65535")

        let missing = try DaemonProcess("ReportingService", environment: ["LOG_FORMAT": "json"])
        #expect(await missing.waitForExit(timeout: .seconds(10)) == 1)
        try await Task.sleep(for: .milliseconds(100))
        #expect(missing.errors.count == 1)
        #expect(missing.errors.first?.contains("PROJECT_ID is not set") == true)
    }

    @Test func missingSubscriptionExits1() async throws {
        let emulator = try await Emulator.shared()
        let name = uniqueName("no-such-sub")
        let service = try DaemonProcess("ReportingService", environment: env(emulator.host, ["SUBSCRIPTION_ID": name, "PUBSUB_AUTO_CREATE": "false"]))
        #expect(await service.waitForExit(timeout: .seconds(20)) == 1)
        try await Task.sleep(for: .milliseconds(100))
        #expect(service.errors.count == 1, "\(service.errors)")
        let line = try #require(service.errors.first)
        #expect(line.contains("SUBSCRIPTION_ID"))
        #expect(line.contains(name))
        #expect(line.contains("does not exist"))
    }

    /// A message that is not an event is logged with its ID and acked (no dead-letter policy):
    /// it is not delivered again, and the service keeps running.
    @Test func poisonMessageIsAckedWithoutDeadLetterPolicy() async throws {
        let emulator = try await Emulator.shared()
        let client = emulator.client()
        let topic = uniqueName("poison"), subscription = uniqueName("poison-sub")
        try await client.createTopic(topic)
        try await client.createSubscription(subscription, Subscription(topic: topic, ackDeadlineSeconds: 10))
        let service = try DaemonProcess("ReportingService", environment: env(emulator.host, ["SUBSCRIPTION_ID": subscription, "TOPIC_ID": topic]))
        try await service.waitForLog("Subscribing to topic")

        let ids = try await client.publish(topic: topic, messages: [PubSubMessage("{not json"), PubSubMessage(#"{"type":"other"}"#)])
        for id in ids {
            let line = try await service.waitForLog("Invalid event", timeout: .seconds(20)) { $0["message_id"] as? String == id }
            #expect(line["level"] as? String == "error")
        }
        let good = ReservationCreatedEvent(reservationID: "after-poison").encoded()
        _ = try await client.publish(topic: topic, messages: [PubSubMessage(data: good)])
        try await service.waitForLog("Received event", timeout: .seconds(20)) { $0["reservation_id"] as? String == "after-poison" }
        #expect(service.isRunning)

        #expect(await service.terminate().status == 0)
        try await Task.sleep(for: .seconds(1))
        let left = try await client.pull(subscription: subscription, maxMessages: 10, returnImmediately: true)
        #expect(left.isEmpty, "the poison messages were acked: \(left.map(\.messageID))")
        #expect(service.logs(message: "Invalid event").count == 2, "each poison message is handled once")
    }

    /// With a dead-letter policy, invalid messages are nacked until Pub/Sub moves them to the
    /// dead-letter topic.
    @Test func poisonMessageReachesDeadLetterTopic() async throws {
        let emulator = try await Emulator.shared()
        let client = emulator.client()
        let topic = uniqueName("dlq-src"), deadTopic = uniqueName("dlq-dead")
        let subscription = uniqueName("dlq-sub"), deadSubscription = uniqueName("dlq-dead-sub")
        try await client.createTopic(topic)
        try await client.createTopic(deadTopic)
        try await client.createSubscription(deadSubscription, Subscription(topic: deadTopic))
        try await client.createSubscription(subscription, Subscription(
            topic: topic, ackDeadlineSeconds: 10,
            deadLetterPolicy: DeadLetterPolicy(deadLetterTopic: deadTopic, maxDeliveryAttempts: 5)
        ))
        let service = try DaemonProcess("ReportingService", environment: env(emulator.host, ["SUBSCRIPTION_ID": subscription, "TOPIC_ID": topic]))
        let subscribed = try await service.waitForLog("Subscribing to topic")
        #expect(subscribed["dead_letter_policy"] as? String == "true")
        let id = try #require(try await client.publish(topic: topic, messages: [PubSubMessage("poison")]).first)

        var dead: [ReceivedMessage] = []
        let deadline = ContinuousClock.now + .seconds(40)
        while dead.isEmpty && ContinuousClock.now < deadline {
            dead = try await client.pull(subscription: deadSubscription, maxMessages: 10, returnImmediately: true)
            if dead.isEmpty { try await Task.sleep(for: .milliseconds(300)) }
        }
        #expect(dead.first.map { String(decoding: $0.message.data, as: UTF8.self) } == "poison")
        let attempts = service.logs(message: "Invalid event").filter { $0["message_id"] as? String == id }
        #expect(attempts.count >= 1)
        #expect(attempts.allSatisfy { ($0["action"] as? String)?.hasPrefix("nack") == true })
        #expect(service.isRunning)
        #expect(await service.terminate().status == 0)
    }

    /// Pub/Sub unreachable from the start: alive, not ready, POST answers 503 with Retry-After
    /// within PUBLISH_TIMEOUT, and the process stays up.
    @Test func unreachablePubSubAtStart() async throws {
        let closedPort = try freePort()
        let port = try freePort()
        let service = try DaemonProcess("ReservationsService", environment: env("127.0.0.1:\(closedPort)", ["PORT": "\(port)", "PUBLISH_TIMEOUT": "2"]))
        let http = HTTP(port: port)
        try await http.waitFor("/healthz", timeout: .seconds(30))
        #expect(try await http.request("GET", "/readyz").status == 503)

        let started = ContinuousClock.now
        let response = try await http.request("POST", "/reservations")
        let took = ContinuousClock.now - started
        #expect(response.status == 503)
        #expect(response.headers.first { $0.key.lowercased() == "retry-after" }?.value == "5")
        #expect(String(decoding: response.body, as: UTF8.self).contains("\"error\""))
        // The publisher retries the refused connection within PUBLISH_TIMEOUT (100 ms, x4, with
        // jitter: at least ~1 s of attempts) and the request is answered by the 2 s bound.
        #expect(took >= .seconds(0.9) && took < .seconds(15), "answered after retrying within the publish timeout: \(took)")
        let logged = try await service.waitForLog("Publishing failed", timeout: .seconds(5))
        #expect(logged["level"] as? String == "error")
        #expect(try await http.request("GET", "/healthz").status == 200)
        #expect(service.isRunning)
        #expect(await service.terminate().status == 0)
    }

    /// Pulls fail mid-run (the proxy answers 503 to every pull): the service logs, keeps
    /// running, and receives again once Pub/Sub is back.
    @Test func reportingRecoversFromPullOutage() async throws {
        let emulator = try await Emulator.shared()
        let client = emulator.client()
        let topic = uniqueName("outage"), subscription = uniqueName("outage-sub")
        try await client.createTopic(topic)
        try await client.createSubscription(subscription, Subscription(topic: topic, ackDeadlineSeconds: 30))
        let proxy = try await FaultProxy(upstream: emulator.host, script: faultProxyScript)
        defer { proxy.stop() }
        try await proxy.add([.status(503, match: ":pull", count: -1)])

        let service = try DaemonProcess("ReportingService", environment: env(proxy.host, ["SUBSCRIPTION_ID": subscription, "TOPIC_ID": topic]))
        try await service.waitForLog("Subscribing to topic")
        // Wait for failing pulls to be noticed (logged), then publish while Pub/Sub is "down".
        let deadline = ContinuousClock.now + .seconds(30)
        while (try await proxy.stats()).faults["status", default: 0] < 2 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(try await proxy.stats().faults["status", default: 0] >= 2)
        let event = ReservationCreatedEvent(reservationID: "after-outage").encoded()
        _ = try await client.publish(topic: topic, messages: [PubSubMessage(data: event)])
        try await Task.sleep(for: .seconds(1))
        #expect(service.isRunning)
        #expect(service.logs(message: "Received event").isEmpty)

        try await proxy.clear()
        try await service.waitForLog("Received event", timeout: .seconds(30)) { $0["reservation_id"] as? String == "after-outage" }
        #expect(service.output.contains { $0.contains("\"level\":\"warning\"") || $0.contains("\"level\":\"error\"") }, "the outage was logged")
        #expect(await service.terminate().status == 0)
    }

    /// SIGTERM while a request waits for a slow publish: the request still gets its 201, the
    /// port stops accepting, and the process exits 0.
    @Test func sigtermFinishesInFlightRequests() async throws {
        let emulator = try await Emulator.shared()
        let proxy = try await FaultProxy(upstream: emulator.host, script: faultProxyScript)
        defer { proxy.stop() }
        let port = try freePort()
        let service = try DaemonProcess("ReservationsService", environment: env(proxy.host, ["PORT": "\(port)", "TOPIC_ID": uniqueName("inflight")]))
        try await service.waitForLog("Listening")
        try await proxy.add([.delay(2, match: ":publish", count: 1)])

        let http = HTTP(port: port)
        let request = Task { try await http.request("POST", "/reservations") }
        try await service.waitForLog("Publishing event", timeout: .seconds(10))
        kill(service.pid, SIGTERM)
        let response = try await request.value
        #expect(response.status == 201, "the in-flight request completes: \(String(decoding: response.body, as: UTF8.self))")
        #expect(await service.waitForExit(timeout: .seconds(15)) == 0)
        #expect(service.logs(message: "Message published successfully").count == 1)
        #expect((try? rawExchange(port: port, Array("GET /healthz HTTP/1.1\r\n\r\n".utf8), timeoutSeconds: 2)) == nil, "no longer listening")
    }
}
