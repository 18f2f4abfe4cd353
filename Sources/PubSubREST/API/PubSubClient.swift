import Foundation
import Logging

/// A client for the Pub/Sub v1 REST API: topics, subscriptions, publish, pull, acknowledge and
/// modifyAckDeadline.
///
/// Create one per process and share it: it is `Sendable`, and its transport keeps connections
/// alive across calls. Every call checks resource names before sending anything, retries
/// retryable failures with `Configuration.retry` (or `publishRetry`), and throws `PubSubError`.
///
/// ```swift
/// let client = try await PubSubClient.fromEnvironment()
/// let ids = try await client.publish(topic: "reservation-created", messages: [PubSubMessage("hello")])
/// ```
public struct PubSubClient: Sendable {
    /// Client settings. Every field states its default.
    public struct Configuration: Sendable {
        /// The API root. Default `https://pubsub.googleapis.com`. Must be `https`, except for a
        /// loopback host (127.0.0.1, localhost, ::1), which tests use.
        public var endpoint: String
        /// `host:port` of the Pub/Sub emulator (what `PUBSUB_EMULATOR_HOST` holds). When set,
        /// requests go to `http://<emulatorHost>` with no `Authorization` header, as Google's
        /// clients do. Default nil.
        public var emulatorHost: String?
        /// Retries of every call but publish. Default `RetrySettings.default`
        /// (100 ms initial delay, x1.3, 60 s cap, 600 s total).
        public var retry: RetrySettings
        /// Retries of publish. Default `RetrySettings.publishDefault` (100 ms, x4, 60 s cap, 600 s total).
        public var publishRetry: RetrySettings
        /// Time allowed for one long-poll pull request. The service holds an empty pull up to
        /// about 90 s, so this must be longer. Default 100 s.
        public var pullTimeout: Duration
        /// Settings of the libcurl transport used when no transport is passed to `init`.
        public var transport: CurlTransport.Configuration

        public init(
            endpoint: String = "https://pubsub.googleapis.com",
            emulatorHost: String? = nil,
            retry: RetrySettings = .default,
            publishRetry: RetrySettings = .publishDefault,
            pullTimeout: Duration = .seconds(100),
            transport: CurlTransport.Configuration = .default
        ) {
            self.endpoint = endpoint
            self.emulatorHost = emulatorHost
            self.retry = retry
            self.publishRetry = publishRetry
            self.pullTimeout = pullTimeout
            self.transport = transport
        }

        public static let `default` = Configuration()
    }

    /// The project that short resource IDs belong to.
    public let projectID: String
    public let configuration: Configuration
    let transport: any HTTPTransport
    let tokenProvider: any AccessTokenProvider
    let logger: Logger
    let baseURL: String

    /// - Parameters:
    ///   - projectID: the project of short topic and subscription IDs.
    ///   - configuration: endpoint, emulator, retries, timeouts.
    ///   - transport: how requests are sent; default a new `CurlTransport`.
    ///   - tokenProvider: the `Authorization` header source; ignored (no header) with an
    ///     emulator. Required otherwise: see `GoogleCredentials.applicationDefault`.
    ///   - logger: where retries are logged (debug level). Default: no logging.
    public init(
        projectID: String,
        configuration: Configuration = .default,
        transport: (any HTTPTransport)? = nil,
        tokenProvider: (any AccessTokenProvider)? = nil,
        logger: Logger = Logger(label: "PubSubREST", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.projectID = projectID
        self.configuration = configuration
        self.transport = transport ?? CurlTransport(configuration: configuration.transport)
        self.logger = logger
        if let emulator = configuration.emulatorHost, !emulator.isEmpty {
            self.baseURL = "http://\(emulator)/v1"
            self.tokenProvider = EmulatorTokenProvider()
        } else {
            var endpoint = configuration.endpoint
            while endpoint.hasSuffix("/") { endpoint.removeLast() }
            self.baseURL = endpoint + "/v1"
            self.tokenProvider = tokenProvider ?? MissingTokenProvider()
        }
    }

    // MARK: - Names

    /// `projects/<project>/topics/<id>`, after checking the ID (a full name is accepted too).
    public func topicName(_ id: String) throws -> String {
        try ResourceName.fullName(id, project: projectID, collection: "topics", kind: "topic")
    }

    /// `projects/<project>/subscriptions/<id>`, after checking the ID (a full name is accepted too).
    public func subscriptionName(_ id: String) throws -> String {
        try ResourceName.fullName(id, project: projectID, collection: "subscriptions", kind: "subscription")
    }

    // MARK: - Topics

    /// Creates a topic. Throws `ALREADY_EXISTS` (HTTP 409) when it exists.
    @discardableResult
    public func createTopic(_ id: String, labels: [String: String]? = nil, messageRetentionDuration: String? = nil) async throws -> Topic {
        let name = try topicName(id)
        let body = Topic(name: name, labels: labels, messageRetentionDuration: messageRetentionDuration)
        return try await call("PUT", name, body: body, retry: configuration.retry)
    }

    /// Creates the topic unless it exists; returns it either way.
    @discardableResult
    public func ensureTopic(_ id: String) async throws -> Topic {
        do {
            return try await createTopic(id)
        } catch let error as PubSubError where error.code == .alreadyExists {
            return try await getTopic(id)
        }
    }

    /// Gets a topic. Throws `NOT_FOUND` (HTTP 404) when there is none.
    public func getTopic(_ id: String) async throws -> Topic {
        try await call("GET", try topicName(id), retry: configuration.retry)
    }

    /// Lists one page of the project's topics.
    public func listTopics(pageSize: Int? = nil, pageToken: String? = nil) async throws -> Page<Topic> {
        try ResourceName.validateProjectID(projectID)
        let path = "projects/\(projectID)/topics" + Self.pageQuery(pageSize: pageSize, pageToken: pageToken)
        let response: ListTopicsResponse = try await call("GET", path, retry: configuration.retry)
        return Page(items: response.topics ?? [], nextPageToken: Self.nonEmpty(response.nextPageToken))
    }

    /// Lists every topic of the project, following page tokens.
    public func allTopics() async throws -> [Topic] {
        var result: [Topic] = []
        var token: String?
        repeat {
            let page = try await listTopics(pageSize: 1000, pageToken: token)
            result += page.items
            token = page.nextPageToken
        } while token != nil
        return result
    }

    /// Deletes a topic. Its subscriptions stay, detached.
    public func deleteTopic(_ id: String) async throws {
        let _: EmptyResponse = try await call("DELETE", try topicName(id), retry: configuration.retry)
    }

    // MARK: - Subscriptions

    /// Creates subscription `id` with the settings of `subscription` (its `name` is ignored;
    /// its `topic` may be a short ID). Throws `ALREADY_EXISTS` when it exists.
    @discardableResult
    public func createSubscription(_ id: String, _ subscription: Subscription) async throws -> Subscription {
        var body = subscription
        body.name = try subscriptionName(id)
        body.topic = try topicName(subscription.topic)
        if let deadLetter = body.deadLetterPolicy {
            body.deadLetterPolicy?.deadLetterTopic = try topicName(deadLetter.deadLetterTopic)
        }
        if let seconds = body.ackDeadlineSeconds, !(10...600).contains(seconds) {
            throw PubSubError(kind: .invalidArgument, message: "ackDeadlineSeconds must be 10 to 600, not \(seconds)")
        }
        if let attempts = body.deadLetterPolicy?.maxDeliveryAttempts, !(5...100).contains(attempts) {
            throw PubSubError(kind: .invalidArgument, message: "deadLetterPolicy.maxDeliveryAttempts must be 5 to 100, not \(attempts)")
        }
        return try await call("PUT", body.name, body: body, retry: configuration.retry)
    }

    /// Creates the subscription unless it exists; returns it either way (an existing one keeps
    /// its settings).
    @discardableResult
    public func ensureSubscription(_ id: String, _ subscription: Subscription) async throws -> Subscription {
        do {
            return try await createSubscription(id, subscription)
        } catch let error as PubSubError where error.code == .alreadyExists {
            return try await getSubscription(id)
        }
    }

    /// Gets a subscription. Throws `NOT_FOUND` (HTTP 404) when there is none.
    public func getSubscription(_ id: String) async throws -> Subscription {
        try await call("GET", try subscriptionName(id), retry: configuration.retry)
    }

    /// Lists one page of the project's subscriptions.
    public func listSubscriptions(pageSize: Int? = nil, pageToken: String? = nil) async throws -> Page<Subscription> {
        try ResourceName.validateProjectID(projectID)
        let path = "projects/\(projectID)/subscriptions" + Self.pageQuery(pageSize: pageSize, pageToken: pageToken)
        let response: ListSubscriptionsResponse = try await call("GET", path, retry: configuration.retry)
        return Page(items: response.subscriptions ?? [], nextPageToken: Self.nonEmpty(response.nextPageToken))
    }

    /// Lists every subscription of the project, following page tokens.
    public func allSubscriptions() async throws -> [Subscription] {
        var result: [Subscription] = []
        var token: String?
        repeat {
            let page = try await listSubscriptions(pageSize: 1000, pageToken: token)
            result += page.items
            token = page.nextPageToken
        } while token != nil
        return result
    }

    /// Deletes a subscription. Its unacknowledged messages are gone with it.
    public func deleteSubscription(_ id: String) async throws {
        let _: EmptyResponse = try await call("DELETE", try subscriptionName(id), retry: configuration.retry)
    }

    // MARK: - Publish, pull, ack

    /// The API's limits on one publish request.
    public enum Limits {
        /// Messages in one publish request.
        public static let maxMessagesPerPublish = 1000
        /// Bytes of one publish request.
        public static let maxPublishRequestBytes = 10_000_000
        /// Attributes on one message.
        public static let maxAttributes = 100
        /// Ack IDs in one acknowledge or modifyAckDeadline request (keeps it under 512 KiB).
        public static let maxAckIDsPerRequest = 1000
    }

    /// Checks one message against the API's rules: not empty, at most 100 attributes, no empty
    /// attribute key, fits in one request.
    public static func validate(_ message: PubSubMessage) throws {
        if message.data.isEmpty && message.attributes.isEmpty {
            throw PubSubError(kind: .invalidArgument, message: "a message needs data or at least one attribute; this one is empty")
        }
        if message.attributes.count > Limits.maxAttributes {
            throw PubSubError(kind: .invalidArgument, message: "a message may have at most \(Limits.maxAttributes) attributes; this one has \(message.attributes.count)")
        }
        if message.attributes.keys.contains("") {
            throw PubSubError(kind: .invalidArgument, message: "attribute keys must not be empty")
        }
        // base64 grows data by 4/3; keep headroom for JSON framing.
        let encoded = (message.data.count + 2) / 3 * 4 + message.byteSize - message.data.count + 200
        if encoded > Limits.maxPublishRequestBytes {
            throw PubSubError(kind: .invalidArgument, message: "the message is \(message.byteSize) bytes, more than fits in one \(Limits.maxPublishRequestBytes)-byte publish request")
        }
    }

    /// Publishes messages to a topic in one request and returns their IDs, in order.
    /// For batching, flow control and ordering keys, use `Publisher`.
    public func publish(topic: String, messages: [PubSubMessage], retry: RetrySettings? = nil) async throws -> [String] {
        let name = try topicName(topic)
        guard !messages.isEmpty else {
            throw PubSubError(kind: .invalidArgument, message: "publish needs at least one message")
        }
        guard messages.count <= Limits.maxMessagesPerPublish else {
            throw PubSubError(kind: .invalidArgument, message: "one publish request takes at most \(Limits.maxMessagesPerPublish) messages, not \(messages.count)")
        }
        for message in messages { try Self.validate(message) }
        let response: PublishResponse = try await call(
            "POST", name + ":publish", body: PublishRequest(messages: messages.map(WireMessage.init)),
            retry: retry ?? configuration.publishRetry
        )
        let ids = response.messageIds ?? []
        guard ids.count == messages.count else {
            throw PubSubError(kind: .invalidResponse, message: "publish returned \(ids.count) message IDs for \(messages.count) messages", operation: "POST \(name):publish")
        }
        return ids
    }

    /// Pulls up to `maxMessages` messages. With `returnImmediately` false (the default) the
    /// server holds the request until messages arrive or about 90 s pass, then answers empty.
    public func pull(subscription: String, maxMessages: Int = 100, returnImmediately: Bool = false, retry: RetrySettings? = nil) async throws -> [ReceivedMessage] {
        let name = try subscriptionName(subscription)
        guard maxMessages > 0 else {
            throw PubSubError(kind: .invalidArgument, message: "maxMessages must be positive, not \(maxMessages)")
        }
        var settings = retry ?? configuration.retry
        settings.rpcTimeout = configuration.pullTimeout
        let response: PullResponse = try await call(
            "POST", name + ":pull",
            body: PullRequest(maxMessages: maxMessages, returnImmediately: returnImmediately ? true : nil),
            retry: settings
        )
        return try (response.receivedMessages ?? []).map { received in
            var data = Data()
            if let encoded = received.message.data, !encoded.isEmpty {
                guard let decoded = Data(base64Encoded: encoded) else {
                    throw PubSubError(kind: .invalidResponse, message: "message \(received.message.messageId ?? "?") has data that is not base64", operation: "POST \(name):pull")
                }
                data = decoded
            }
            return ReceivedMessage(
                ackID: received.ackId,
                message: PubSubMessage(
                    data: data,
                    attributes: received.message.attributes ?? [:],
                    orderingKey: Self.nonEmpty(received.message.orderingKey)
                ),
                messageID: received.message.messageId ?? "",
                publishTime: received.message.publishTime ?? "",
                deliveryAttempt: received.deliveryAttempt
            )
        }
    }

    /// Acknowledges messages, so they are not delivered again. Takes any number of ack IDs and
    /// sends them in requests of at most 1000.
    public func acknowledge(subscription: String, ackIDs: [String], retry: RetrySettings? = nil) async throws {
        let name = try subscriptionName(subscription)
        for chunk in ackIDs.chunks(of: Limits.maxAckIDsPerRequest) {
            let _: EmptyResponse = try await call("POST", name + ":acknowledge", body: AcknowledgeRequest(ackIds: chunk), retry: retry ?? configuration.retry)
        }
    }

    /// Sets the ack deadline of messages to `seconds` from now (0 to 600). 0 is a nack: the
    /// message becomes available for redelivery at once.
    public func modifyAckDeadline(subscription: String, ackIDs: [String], seconds: Int, retry: RetrySettings? = nil) async throws {
        let name = try subscriptionName(subscription)
        guard (0...600).contains(seconds) else {
            throw PubSubError(kind: .invalidArgument, message: "an ack deadline must be 0 to 600 seconds, not \(seconds)")
        }
        for chunk in ackIDs.chunks(of: Limits.maxAckIDsPerRequest) {
            let _: EmptyResponse = try await call(
                "POST", name + ":modifyAckDeadline",
                body: ModifyAckDeadlineRequest(ackIds: chunk, ackDeadlineSeconds: seconds),
                retry: retry ?? configuration.retry
            )
        }
    }

    // MARK: - Requests

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }()

    private func call<Response: Decodable>(_ method: String, _ path: String, retry: RetrySettings) async throws -> Response {
        try await call(method, path, bodyData: nil, retry: retry)
    }

    private func call<Response: Decodable>(_ method: String, _ path: String, body: some Encodable, retry: RetrySettings) async throws -> Response {
        let data: Data
        do {
            data = try Self.encoder.encode(body)
        } catch {
            throw PubSubError(kind: .invalidArgument, message: "could not encode the request body: \(error)", operation: "\(method) \(path)")
        }
        return try await call(method, path, bodyData: data, retry: retry)
    }

    private func call<Response: Decodable>(_ method: String, _ path: String, bodyData: Data?, retry: RetrySettings) async throws -> Response {
        let operation = "\(method) \(path)"
        let response = try await send(method: method, path: path, body: bodyData, retry: retry, operation: operation)
        do {
            return try JSONDecoder().decode(Response.self, from: response.body.isEmpty ? Data("{}".utf8) : response.body)
        } catch {
            throw PubSubError(
                kind: .invalidResponse,
                message: "the answer is not the expected JSON (\(error)): \(PubSubError.printableExcerpt(response.body))",
                httpStatus: response.status, operation: operation
            )
        }
    }

    /// Sends one call, retrying retryable failures until `retry` says stop.
    private func send(method: String, path: String, body: Data?, retry: RetrySettings, operation: String) async throws -> HTTPResponse {
        try checkEndpoint()
        let start = ContinuousClock.now
        var attempt = 0
        while true {
            do {
                return try await attemptOnce(method: method, path: path, body: body, timeout: retry.rpcTimeout, operation: operation)
            } catch let error as PubSubError {
                attempt += 1
                let elapsed = ContinuousClock.now - start
                let delay = retry.delay(afterAttempt: attempt - 1)
                guard error.isRetryable, attempt < retry.maxAttempts, elapsed + delay < retry.totalTimeout else {
                    if error.isRetryable {
                        // Retrying stopped (attempts or time ran out): say so, even after one attempt.
                        let attempts = attempt == 1 ? "1 attempt" : "\(attempt) attempts"
                        throw PubSubError(
                            kind: error.kind,
                            message: "\(error.message) (gave up after \(attempts) in \(Self.format(elapsed)))",
                            httpStatus: error.httpStatus, code: error.code, operation: error.operation ?? operation
                        )
                    }
                    throw error.with(operation: operation)
                }
                logger.debug("Retrying Pub/Sub call", metadata: [
                    "operation": "\(operation)", "attempt": "\(attempt)",
                    "delay_ms": "\(Int(delay.seconds * 1000))", "error": "\(error)",
                ])
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    throw PubSubError(kind: .cancelled, message: "cancelled while waiting to retry after: \(error)", operation: operation)
                }
            }
        }
    }

    private func attemptOnce(method: String, path: String, body: Data?, timeout: Duration, operation: String) async throws -> HTTPResponse {
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        let authorization: String?
        do {
            authorization = try await tokenProvider.authorizationHeaderValue()
        } catch let error as PubSubError {
            throw error.with(operation: operation)
        }
        if let authorization { headers.append(("Authorization", authorization)) }
        let request = HTTPRequest(method: method, url: "\(baseURL)/\(path)", headers: headers, body: body, timeout: timeout)
        let response: HTTPResponse
        do {
            response = try await transport.execute(request)
        } catch let error as PubSubError {
            throw error.with(operation: operation)
        } catch is CancellationError {
            throw PubSubError(kind: .cancelled, message: "the request was cancelled", operation: operation)
        }
        guard (200..<300).contains(response.status) else {
            throw PubSubError.fromHTTP(status: response.status, body: response.body, operation: operation)
        }
        return response
    }

    private func checkEndpoint() throws {
        if configuration.emulatorHost?.isEmpty == false { return }
        guard let url = URLComponents(string: configuration.endpoint), let scheme = url.scheme?.lowercased(), let host = url.host else {
            throw PubSubError(kind: .invalidArgument, message: "the endpoint '\(configuration.endpoint)' is not a URL")
        }
        let loopback = ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host.lowercased())
        guard scheme == "https" || (scheme == "http" && loopback) else {
            throw PubSubError(
                kind: .invalidArgument,
                message: "the endpoint '\(configuration.endpoint)' must use https (plain http is only for the emulator: set PUBSUB_EMULATOR_HOST)"
            )
        }
    }

    private static func pageQuery(pageSize: Int?, pageToken: String?) -> String {
        var items: [String] = []
        if let pageSize { items.append("pageSize=\(pageSize)") }
        if let pageToken, let encoded = pageToken.addingPercentEncoding(withAllowedCharacters: .alphanumerics) {
            items.append("pageToken=\(encoded)")
        }
        return items.isEmpty ? "" : "?" + items.joined(separator: "&")
    }

    private static func nonEmpty(_ string: String?) -> String? {
        guard let string, !string.isEmpty else { return nil }
        return string
    }

    static func format(_ duration: Duration) -> String {
        String(format: "%.1f s", duration.seconds)
    }
}

/// No `Authorization` header: the emulator.
struct EmulatorTokenProvider: AccessTokenProvider {
    func authorizationHeaderValue() async throws -> String? { nil }
    var credentialDescription: String { "none (Pub/Sub emulator)" }
}

/// Used when a client for the real service was made without credentials.
struct MissingTokenProvider: AccessTokenProvider {
    func authorizationHeaderValue() async throws -> String? {
        throw PubSubError(
            kind: .credentials,
            message: "no credentials were given to PubSubClient: pass a tokenProvider (see GoogleCredentials.applicationDefault), or set PUBSUB_EMULATOR_HOST for the emulator"
        )
    }
    var credentialDescription: String { "none" }
}

extension Array {
    func chunks(of size: Int) -> [[Element]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}
