import Foundation
import PubSubREST
import Testing

@Suite("Resource names")
struct ResourceNameTests {
    @Test("valid IDs pass", arguments: ["abc", "reservation-created", "A.b_c~d+e%f", String(repeating: "x", count: 255)])
    func validIDs(_ id: String) throws {
        try ResourceName.validateID(id, kind: "topic")
    }

    @Test("invalid IDs are rejected with the reason", arguments: [
        ("ab", "at least 3"),
        (String(repeating: "x", count: 256), "at most 255"),
        ("1abc", "start with a letter"),
        ("-abc", "start with a letter"),
        ("google-topic", "goog"),
        ("GOOGle", "goog"),
        ("has space", "' ' is not allowed"),
        ("slash/inside", "'/' is not allowed"),
        ("ümlaut", "start with a letter"),
    ])
    func invalidIDs(_ id: String, _ reason: String) {
        let error = #expect(throws: PubSubError.self) { try ResourceName.validateID(id, kind: "topic") }
        #expect(error?.kind == .invalidArgument)
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("topic") == true)
    }

    @Test("full names are accepted and checked; names are checked before any request")
    func fullNames() async throws {
        let client = PubSubClient(projectID: "my-project", configuration: .init(emulatorHost: "127.0.0.1:1"))
        #expect(try client.topicName("orders") == "projects/my-project/topics/orders")
        #expect(try client.topicName("projects/other/topics/orders") == "projects/other/topics/orders")
        #expect(try client.subscriptionName("orders-sub") == "projects/my-project/subscriptions/orders-sub")
        #expect(throws: PubSubError.self) { try client.topicName("projects/other/subscriptions/orders") }
        #expect(throws: PubSubError.self) { try client.topicName("projects/other/topics/go") }
        // Port 1 refuses connections: an invalidArgument (not a transport error) proves nothing was sent.
        let error = await #expect(throws: PubSubError.self) { try await client.createTopic("x") }
        #expect(error?.kind == .invalidArgument)
    }
}

@Suite("Backoff")
struct RetrySettingsTests {
    @Test("the schedule grows by the multiplier up to the cap")
    func schedule() {
        let settings = RetrySettings(initialRetryDelay: .milliseconds(100), retryDelayMultiplier: 2, maxRetryDelay: .seconds(1))
        let delays = (0..<6).map { settings.baseDelay(afterAttempt: $0) }
        let millis = delays.map { Int(($0 / .milliseconds(1)).rounded()) }
        #expect(millis == [100, 200, 400, 800, 1000, 1000])
    }

    @Test("Google's defaults")
    func defaults() {
        #expect(RetrySettings.default.initialRetryDelay == .milliseconds(100))
        #expect(RetrySettings.default.retryDelayMultiplier == 1.3)
        #expect(RetrySettings.default.maxRetryDelay == .seconds(60))
        #expect(RetrySettings.default.totalTimeout == .seconds(600))
        #expect(RetrySettings.publishDefault.retryDelayMultiplier == 4)
        #expect(RetrySettings.none.maxAttempts == 1)
    }

    @Test("jitter stays between half and all of the base delay")
    func jitter() {
        let settings = RetrySettings(initialRetryDelay: .seconds(1), retryDelayMultiplier: 1)
        #expect(settings.delay(afterAttempt: 0, random: 0) == .milliseconds(500))
        #expect(settings.delay(afterAttempt: 0, random: 1) == .seconds(1))
        for _ in 0..<100 {
            let delay = settings.delay(afterAttempt: 0)
            #expect(delay >= .milliseconds(500) && delay <= .seconds(1))
        }
    }
}

@Suite("Error mapping")
struct ErrorMappingTests {
    @Test("a google.rpc.Status body gives the status name and message", arguments: [
        (404, #"{"error":{"code":404,"message":"Topic not found","status":"NOT_FOUND"}}"#, "NOT_FOUND", "Topic not found", false),
        (409, #"{"error":{"code":409,"message":"Resource already exists in the project (resource=t).","status":"ALREADY_EXISTS"}}"#, "ALREADY_EXISTS", "Resource already exists in the project (resource=t).", false),
        (503, #"{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}"#, "UNAVAILABLE", "The service is currently unavailable.", true),
        (429, #"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[]}}"#, "RESOURCE_EXHAUSTED", "Quota exceeded", true),
        (403, #"{"error":{"code":403,"message":"User not authorized to perform this action.","status":"PERMISSION_DENIED"}}"#, "PERMISSION_DENIED", "User not authorized to perform this action.", false),
        (400, #"{"error":{"code":400,"message":"Invalid [topics] name","status":"INVALID_ARGUMENT"}}"#, "INVALID_ARGUMENT", "Invalid [topics] name", false),
    ])
    func statusBodies(_ status: Int, _ body: String, _ code: String, _ message: String, _ retryable: Bool) {
        let error = PubSubError.fromHTTP(status: status, body: Data(body.utf8), operation: "GET projects/p/topics/t")
        #expect(error.kind == .api)
        #expect(error.httpStatus == status)
        #expect(error.code?.rawValue == code)
        #expect(error.message == message)
        #expect(error.isRetryable == retryable)
        #expect(error.description.contains(code))
        #expect(error.description.contains("GET projects/p/topics/t"))
    }

    @Test("a body that is not JSON falls back to the HTTP status and an excerpt")
    func nonJSON() {
        let error = PubSubError.fromHTTP(status: 502, body: Data("<html>\n<body>Bad Gateway</body></html>".utf8))
        #expect(error.code == .internal)
        #expect(error.isRetryable)
        #expect(error.message.contains("<body>Bad Gateway</body>"))
        let empty = PubSubError.fromHTTP(status: 404, body: Data())
        #expect(empty.code == .notFound)
        #expect(empty.message.contains("empty body"))
        let long = PubSubError.fromHTTP(status: 500, body: Data(String(repeating: "x", count: 10_000).utf8))
        #expect(long.message.count < 400)
    }

    @Test("transport failures and timeouts are retryable; argument errors are not")
    func retryability() {
        #expect(PubSubError(kind: .transport, message: "reset").isRetryable)
        #expect(PubSubError(kind: .timeout, message: "slow").isRetryable)
        #expect(!PubSubError(kind: .invalidArgument, message: "bad").isRetryable)
        #expect(!PubSubError(kind: .credentials, message: "no key").isRetryable)
        for code in ["UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "INTERNAL", "UNKNOWN", "ABORTED"] {
            #expect(PubSubError(kind: .api, message: "", httpStatus: 500, code: .init(rawValue: code)).isRetryable, "\(code)")
        }
        for code in ["NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "INVALID_ARGUMENT", "FAILED_PRECONDITION", "UNAUTHENTICATED"] {
            #expect(!PubSubError(kind: .api, message: "", httpStatus: 400, code: .init(rawValue: code)).isRetryable, "\(code)")
        }
    }
}

@Suite("Message validation")
struct MessageValidationTests {
    @Test("empty, too many attributes, too large: rejected before sending")
    func rejects() {
        #expect(throws: PubSubError.self) { try PubSubClient.validate(PubSubMessage(data: Data())) }
        let attributes = Dictionary(uniqueKeysWithValues: (0...100).map { ("k\($0)", "v") })
        #expect(throws: PubSubError.self) { try PubSubClient.validate(PubSubMessage("x", attributes: attributes)) }
        #expect(throws: PubSubError.self) { try PubSubClient.validate(PubSubMessage(data: Data(count: 8_000_000))) }
        #expect(throws: Never.self) { try PubSubClient.validate(PubSubMessage(data: Data(), attributes: ["only": "attributes"])) }
        #expect(throws: Never.self) { try PubSubClient.validate(PubSubMessage(data: Data(count: 7_000_000))) }
    }
}
