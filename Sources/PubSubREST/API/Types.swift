import Foundation

/// A message to publish, or the content of a received one. Bytes are raw here; they travel
/// base64-encoded in JSON.
public struct PubSubMessage: Sendable, Equatable {
    /// The payload.
    public var data: Data
    /// Key-value attributes (at most 100).
    public var attributes: [String: String]
    /// Messages with the same non-empty ordering key are delivered in publish order to
    /// subscriptions with message ordering enabled.
    public var orderingKey: String?

    public init(data: Data, attributes: [String: String] = [:], orderingKey: String? = nil) {
        self.data = data
        self.attributes = attributes
        self.orderingKey = orderingKey
    }

    public init(_ text: String, attributes: [String: String] = [:], orderingKey: String? = nil) {
        self.init(data: Data(text.utf8), attributes: attributes, orderingKey: orderingKey)
    }

    /// The size Pub/Sub counts against its request limits: data, attribute keys and values,
    /// and the ordering key.
    public var byteSize: Int {
        data.count + attributes.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count } + (orderingKey?.utf8.count ?? 0)
    }
}

/// A message delivered by `pull`.
public struct ReceivedMessage: Sendable, Equatable {
    /// The ID to acknowledge or modify the deadline with.
    public var ackID: String
    /// The content.
    public var message: PubSubMessage
    /// The server-assigned message ID.
    public var messageID: String
    /// When the server accepted the message (RFC 3339 text as sent by the server).
    public var publishTime: String
    /// How many times delivery was attempted; only set when the subscription has a dead-letter
    /// or retry policy.
    public var deliveryAttempt: Int?
}

/// A topic, as the API returns it.
public struct Topic: Codable, Sendable, Equatable {
    /// Full name, `projects/P/topics/T`.
    public var name: String
    public var labels: [String: String]?
    /// How long messages are kept after publishing, e.g. `"604800s"`.
    public var messageRetentionDuration: String?
    public var kmsKeyName: String?

    public init(name: String, labels: [String: String]? = nil, messageRetentionDuration: String? = nil, kmsKeyName: String? = nil) {
        self.name = name
        self.labels = labels
        self.messageRetentionDuration = messageRetentionDuration
        self.kmsKeyName = kmsKeyName
    }
}

/// Where messages that cannot be delivered go.
public struct DeadLetterPolicy: Codable, Sendable, Equatable {
    /// Full topic name, `projects/P/topics/T`.
    public var deadLetterTopic: String
    /// 5 to 100 delivery attempts before a message is moved. The API's default is 5.
    public var maxDeliveryAttempts: Int?

    public init(deadLetterTopic: String, maxDeliveryAttempts: Int? = nil) {
        self.deadLetterTopic = deadLetterTopic
        self.maxDeliveryAttempts = maxDeliveryAttempts
    }
}

/// How quickly a nacked or expired message is redelivered.
public struct RetryPolicy: Codable, Sendable, Equatable {
    /// e.g. `"10s"`; the API's default is 10 s.
    public var minimumBackoff: String?
    /// e.g. `"600s"`; the API's default is 600 s.
    public var maximumBackoff: String?

    public init(minimumBackoff: String? = nil, maximumBackoff: String? = nil) {
        self.minimumBackoff = minimumBackoff
        self.maximumBackoff = maximumBackoff
    }
}

/// A subscription, as created and returned by the API. Unset fields take the API's defaults.
public struct Subscription: Codable, Sendable, Equatable {
    /// Full name, `projects/P/subscriptions/S`.
    public var name: String
    /// Full topic name, `projects/P/topics/T`.
    public var topic: String
    /// 10 to 600 seconds; the API's default is 10.
    public var ackDeadlineSeconds: Int?
    public var retainAckedMessages: Bool?
    /// e.g. `"604800s"` (the API's default, 7 days).
    public var messageRetentionDuration: String?
    public var labels: [String: String]?
    public var enableMessageOrdering: Bool?
    /// A filter expression on attributes, e.g. `attributes.type = "reservation_created"`.
    public var filter: String?
    public var deadLetterPolicy: DeadLetterPolicy?
    public var retryPolicy: RetryPolicy?
    public var enableExactlyOnceDelivery: Bool?
    public var state: String?

    public init(
        name: String = "",
        topic: String,
        ackDeadlineSeconds: Int? = nil,
        retainAckedMessages: Bool? = nil,
        messageRetentionDuration: String? = nil,
        labels: [String: String]? = nil,
        enableMessageOrdering: Bool? = nil,
        filter: String? = nil,
        deadLetterPolicy: DeadLetterPolicy? = nil,
        retryPolicy: RetryPolicy? = nil,
        enableExactlyOnceDelivery: Bool? = nil
    ) {
        self.name = name
        self.topic = topic
        self.ackDeadlineSeconds = ackDeadlineSeconds
        self.retainAckedMessages = retainAckedMessages
        self.messageRetentionDuration = messageRetentionDuration
        self.labels = labels
        self.enableMessageOrdering = enableMessageOrdering
        self.filter = filter
        self.deadLetterPolicy = deadLetterPolicy
        self.retryPolicy = retryPolicy
        self.enableExactlyOnceDelivery = enableExactlyOnceDelivery
        self.state = nil
    }
}

/// One page of a list call.
public struct Page<Element: Sendable>: Sendable {
    public var items: [Element]
    /// Pass to the next call to continue; nil on the last page.
    public var nextPageToken: String?
}

// MARK: - Wire types (the JSON of the REST API)

struct WireMessage: Codable {
    var data: String?
    var attributes: [String: String]?
    var messageId: String?
    var publishTime: String?
    var orderingKey: String?

    init(_ message: PubSubMessage) {
        data = message.data.base64EncodedString()
        attributes = message.attributes.isEmpty ? nil : message.attributes
        orderingKey = (message.orderingKey?.isEmpty ?? true) ? nil : message.orderingKey
    }
}

struct PublishRequest: Encodable {
    var messages: [WireMessage]
}

struct PublishResponse: Decodable {
    var messageIds: [String]?
}

struct PullRequest: Encodable {
    var maxMessages: Int
    var returnImmediately: Bool?
}

struct WireReceivedMessage: Decodable {
    var ackId: String
    var message: WireMessage
    var deliveryAttempt: Int?
}

struct PullResponse: Decodable {
    var receivedMessages: [WireReceivedMessage]?
}

struct AcknowledgeRequest: Encodable {
    var ackIds: [String]
}

struct ModifyAckDeadlineRequest: Encodable {
    var ackIds: [String]
    var ackDeadlineSeconds: Int
}

struct ListTopicsResponse: Decodable {
    var topics: [Topic]?
    var nextPageToken: String?
}

struct ListSubscriptionsResponse: Decodable {
    var subscriptions: [Subscription]?
    var nextPageToken: String?
}

struct EmptyResponse: Decodable {}
