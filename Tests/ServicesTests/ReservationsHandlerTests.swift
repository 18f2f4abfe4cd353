import DaemonSupport
import Foundation
import Logging
import MiniHTTP
import PubSubREST
import PubSubTestSupport
import ReservationsApp
import Testing

/// Handler tests: the router is called with request values, no socket; Pub/Sub is the emulator.
@Suite struct ReservationsHandlerTests {
    struct Fixture {
        let app: ReservationsApplication
        let client: PubSubClient
        let topic: String
        let logs: LineCollector
    }

    func makeApp() async throws -> Fixture {
        let emulator = try await Emulator.shared()
        let topic = uniqueName("res-topic")
        let logs = LineCollector()
        let logger = Logger(label: "test") { _ in JSONLogHandler(service: "reservations-service", sink: logs.sink) }
        let config = ReservationsConfig(
            pubSub: PubSubSettings(projectID: "test-project", emulatorHost: emulator.host),
            topicID: topic, host: "127.0.0.1", port: 0, publishTimeout: .seconds(60)
        )
        let app = try await buildApplication(config, logger: logger)
        return Fixture(app: app, client: emulator.client(), topic: topic, logs: logs)
    }

    func post(_ body: String?) -> HTTPServerRequest {
        HTTPServerRequest(method: "POST", path: "/reservations", query: nil, version: "HTTP/1.1", headers: HTTPHeaders(), body: Array((body ?? "").utf8), remoteAddress: nil)
    }

    func get(_ path: String) -> HTTPServerRequest {
        HTTPServerRequest(method: "GET", path: path, query: nil, version: "HTTP/1.1", headers: HTTPHeaders(), body: [], remoteAddress: nil)
    }

    func json(_ response: HTTPServerResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
    }

    @Test func postWithoutBodyPublishes() async throws {
        let fixture = try await makeApp()
        let response = await fixture.app.handle(post(nil))
        #expect(response.status == 201)
        #expect(response.headers["Content-Type"]?.hasPrefix("application/json") == true)
        let body = try json(response)
        let id = try #require(body["reservation_id"] as? String)
        #expect(UUID(uuidString: id) != nil)
        #expect(id == id.lowercased())
        #expect((body["message_id"] as? String)?.isEmpty == false)
        #expect(Set(body.keys) == ["reservation_id", "message_id"])
        let lines = fixture.logs.all
        #expect(lines.contains { $0.contains("\"message\":\"Publishing event\"") && $0.contains(id) })
        #expect(lines.contains { $0.contains("\"message\":\"Message published successfully\"") && $0.contains("\"message_id\":\"\(body["message_id"]!)\"") })
    }

    @Test func bodyFieldsLandInData() async throws {
        let fixture = try await makeApp()
        let subscription = uniqueName("res-sub")
        try await fixture.client.createSubscription(subscription, Subscription(topic: fixture.topic, ackDeadlineSeconds: 30))
        let response = await fixture.app.handle(post(#"{"guests": 4, "name": "Ada", "reservation_id": "forged"}"#))
        #expect(response.status == 201)
        let id = try #require(try json(response)["reservation_id"] as? String)
        #expect(id != "forged")

        var received: [ReceivedMessage] = []
        let deadline = ContinuousClock.now + .seconds(20)
        while received.isEmpty && ContinuousClock.now < deadline {
            received = try await fixture.client.pull(subscription: subscription, maxMessages: 10, returnImmediately: true)
            if received.isEmpty { try await Task.sleep(for: .milliseconds(200)) }
        }
        let message = try #require(received.first)
        let event = try ReservationCreatedEvent.decode(message.message.data)
        #expect(event.reservationID == id)
        #expect(event.data["guests"] == .number(4))
        #expect(event.data["name"] == .string("Ada"))
        #expect(event.data["reservation_id"] == .string(id))
        #expect(event.time.hasSuffix("Z"))
        #expect(message.message.attributes["type"] == "reservation_created")
    }

    @Test(arguments: ["[1, 2, 3]", "{not json", "\"a string\"", "42"])
    func nonObjectBodiesAreRejected(body: String) async throws {
        let fixture = try await makeApp()
        let response = await fixture.app.handle(post(body))
        #expect(response.status == 400)
        let error = try #require(try json(response)["error"] as? [String: Any])
        #expect((error["message"] as? String)?.isEmpty == false)
        #expect(!fixture.logs.all.contains { $0.contains("Publishing event") }, "nothing is published for a bad body")
    }

    @Test func healthReadinessMetricsAndRouting() async throws {
        let fixture = try await makeApp()
        #expect(await fixture.app.handle(get("/healthz")).status == 200)
        #expect(await fixture.app.handle(get("/readyz")).status == 200)
        _ = await fixture.app.handle(post(nil))
        #expect(await fixture.app.handle(get("/nope")).status == 404)
        let wrongMethod = await fixture.app.handle(get("/reservations"))
        #expect(wrongMethod.status == 405)
        #expect(wrongMethod.headers["Allow"]?.contains("POST") == true)
        let metrics = await fixture.app.handle(get("/metrics"))
        #expect(metrics.status == 200)
        let text = String(decoding: metrics.body, as: UTF8.self)
        #expect(text.contains(#"http_requests_total{method="POST",path="/reservations",status="201"} 1"#), "\(text)")
        #expect(text.contains(#"http_requests_total{method="GET",path="other",status="404"} 1"#))
        #expect(text.contains("publish_duration_seconds_bucket"))
    }

    @Test func readinessFailsForMissingTopic() async throws {
        let emulator = try await Emulator.shared()
        let config = ReservationsConfig(
            pubSub: PubSubSettings(projectID: "test-project", emulatorHost: emulator.host, autoCreate: false),
            topicID: uniqueName("missing"), host: "127.0.0.1", port: 0, publishTimeout: .seconds(60)
        )
        let app = try await buildApplication(config, logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() })
        #expect(await app.handle(get("/readyz")).status == 503)
        let response = await app.handle(post(nil))
        #expect(response.status == 502, "NOT_FOUND is a permanent error")
    }
}
