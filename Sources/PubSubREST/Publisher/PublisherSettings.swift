extension Publisher {
    /// What a publisher does when publishing would exceed `maxOutstandingMessages` or
    /// `maxOutstandingBytes` (Google's `LimitExceededBehavior`).
    public enum LimitExceededBehavior: Sendable, Hashable {
        /// `publish` suspends until enough earlier messages are resolved; waiting callers are
        /// admitted first come, first served.
        case block
        /// `publish` throws a `.flowControl` error at once.
        case failFast
        /// No limit: every message is accepted (memory grows with the backlog).
        case ignore
    }

    /// Batching, flow control, ordering and timeout settings, with the names and (mostly) the
    /// defaults of Google's client libraries (Go `PublishSettings`, Java `BatchingSettings` and
    /// `FlowControlSettings`).
    public struct Settings: Sendable, Equatable {
        /// A batch is sent once it holds this many messages. Default 100. Capped at 1000, the
        /// API's limit on one publish request (`PubSubClient.Limits.maxMessagesPerPublish`).
        public var countThreshold: Int
        /// A batch is sent once its messages (data, attributes and ordering keys) reach this many
        /// bytes. Default 1_000_000 bytes. Whatever this is, a request never exceeds the API's
        /// 10 MB (`PubSubClient.Limits.maxPublishRequestBytes`).
        public var byteThreshold: Int
        /// A batch is sent at most this long after its first message arrived, even if it is not
        /// full. Default 10 ms.
        public var delayThreshold: Duration
        /// At most this many messages accepted but not yet resolved (sent and acknowledged by the
        /// server, or failed). Default 1000.
        public var maxOutstandingMessages: Int
        /// At most this many bytes of messages (as counted by `PubSubMessage.byteSize`) accepted
        /// but not yet resolved. Default 100_000_000 bytes (100 MB).
        public var maxOutstandingBytes: Int
        /// What `publish` does when a limit above would be exceeded. Default `.block`, so that
        /// memory stays bounded however fast callers publish. (Google's clients default to
        /// `.ignore`.)
        public var limitExceededBehavior: LimitExceededBehavior
        /// At most this many publish requests in flight at once. Default 10.
        public var maxConcurrentBatches: Int
        /// How long a batch may take in all, retries included: the client's publish
        /// `RetrySettings` (`PubSubClient.Configuration.publishRetry`) are used with
        /// `totalTimeout` set to this, and no single attempt longer than this. Default 60 s.
        public var timeout: Duration
        /// Whether messages may carry an ordering key. When true, messages with the same key are
        /// published in order, one batch per key at a time, and a failure pauses the key until
        /// `resumePublish(orderingKey:)`. When false, publishing a message with an ordering key
        /// fails with `.invalidArgument`. Default false.
        public var enableMessageOrdering: Bool

        public init(
            countThreshold: Int = 100,
            byteThreshold: Int = 1_000_000,
            delayThreshold: Duration = .milliseconds(10),
            maxOutstandingMessages: Int = 1000,
            maxOutstandingBytes: Int = 100_000_000,
            limitExceededBehavior: LimitExceededBehavior = .block,
            maxConcurrentBatches: Int = 10,
            timeout: Duration = .seconds(60),
            enableMessageOrdering: Bool = false
        ) {
            self.countThreshold = countThreshold
            self.byteThreshold = byteThreshold
            self.delayThreshold = delayThreshold
            self.maxOutstandingMessages = maxOutstandingMessages
            self.maxOutstandingBytes = maxOutstandingBytes
            self.limitExceededBehavior = limitExceededBehavior
            self.maxConcurrentBatches = maxConcurrentBatches
            self.timeout = timeout
            self.enableMessageOrdering = enableMessageOrdering
        }

        /// All defaults.
        public static let `default` = Settings()

        /// Throws `.invalidArgument` naming the first setting out of range.
        func validate() throws(PubSubError) {
            func check(_ ok: Bool, _ message: String) throws(PubSubError) {
                if !ok { throw PubSubError(kind: .invalidArgument, message: "invalid Publisher.Settings: \(message)") }
            }
            try check(countThreshold >= 1, "countThreshold must be at least 1, not \(countThreshold)")
            try check(byteThreshold >= 1, "byteThreshold must be at least 1, not \(byteThreshold)")
            try check(delayThreshold >= .zero, "delayThreshold must not be negative, not \(delayThreshold)")
            try check(maxOutstandingMessages >= 1, "maxOutstandingMessages must be at least 1, not \(maxOutstandingMessages)")
            try check(maxOutstandingBytes >= 1, "maxOutstandingBytes must be at least 1, not \(maxOutstandingBytes)")
            try check(maxConcurrentBatches >= 1, "maxConcurrentBatches must be at least 1, not \(maxConcurrentBatches)")
            try check(timeout > .zero, "timeout must be positive, not \(timeout)")
        }
    }
}
