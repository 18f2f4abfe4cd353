import Foundation

extension Subscriber {
    /// How a `Subscriber` pulls, leases, acknowledges and shuts down. The names are those of
    /// Google's client libraries (Go `ReceiveSettings`, Python `FlowControl`) where one exists.
    /// Every field states its default and unit; `Settings.default` holds the defaults.
    public struct Settings: Sendable, Equatable {
        /// Flow control: at most this many messages are held at once (pulled and neither acked,
        /// nacked nor let go), queued or in a handler. Pulling pauses at the limit, and a pull
        /// asks only for what is left. Default 1000 messages.
        public var maxOutstandingMessages: Int
        /// Flow control: pulling pauses while the held messages add up to this many bytes
        /// (data, attribute keys and values, ordering key), and no handler starts on a message
        /// that would take the bytes in handlers past it (unless no handler runs). Default
        /// 100 MiB (104,857,600 bytes).
        public var maxOutstandingBytes: Int
        /// At most this many handlers run at once: a fixed pool of handler tasks reads the local
        /// queue. Default 100 handlers.
        public var maxConcurrentHandlers: Int
        /// Pull requests kept in flight at once (long-polls, `returnImmediately` false). The
        /// emulator answers at most 100 messages per pull, so throughput comes from several.
        /// Google's name for the streaming equivalent is `NumGoroutines`. Default 4 pulls.
        public var numPullers: Int
        /// The most messages one pull asks for (1 to 1000, the API's cap). A pull asks for
        /// `min(maxMessagesPerPull, what flow control allows)`. Default 1000 messages.
        public var maxMessagesPerPull: Int
        /// A message's lease is extended for at most this long after it was pulled; then it is
        /// let go (no more extensions, logged at warning) and the server redelivers it when its
        /// deadline passes. Default 60 minutes.
        public var maxExtension: Duration
        /// The shortest deadline one lease extension sets. Each extension asks for the
        /// subscription's `ackDeadlineSeconds` clamped to `minDurationPerLeaseExtension ...
        /// maxDurationPerLeaseExtension`, whole seconds, 10 to 600. Default 10 s.
        public var minDurationPerLeaseExtension: Duration
        /// The longest deadline one lease extension sets (see `minDurationPerLeaseExtension`).
        /// Default 600 s.
        public var maxDurationPerLeaseExtension: Duration
        /// The least time before a lease would expire at which it is extended. The margin used
        /// is this or half the extension length, whichever is longer (but leaving at least
        /// half a second, at most 1 s, between extensions): a 10 s lease is extended 5 s
        /// after the last extension was sent, a 60 s lease after 30 s. Expiry is counted from
        /// when the last successful extension request was sent. Besides, every pulled message
        /// gets a "receipt modack" to the full extension length within 500 ms of arriving, as
        /// Google's clients do. An extension request is one attempt timed out after the
        /// margin; while no answer came, another is sent every third of the margin (at least
        /// every second). Default 5 s.
        public var leaseExtensionGrace: Duration
        /// Acks and nacks are sent in batches at least this often. Default 100 ms.
        public var ackFlushInterval: Duration
        /// A batch of ack IDs (or of nack IDs) is sent as soon as it holds this many, and one
        /// request carries at most this many (1 to 1000). Default 1000 IDs.
        public var maxAckBatchSize: Int
        /// On shutdown, handlers already running get this long to finish; then they are
        /// cancelled and their messages nacked. Default 30 s.
        public var shutdownTimeout: Duration
        /// The first wait before retrying a pull that failed with a retryable error; each
        /// following wait doubles (with jitter) up to `maxPullRetryDelay`. Default 100 ms.
        public var initialPullRetryDelay: Duration
        /// Cap on the wait between retries of a failing pull. Default 10 s.
        public var maxPullRetryDelay: Duration

        public init(
            maxOutstandingMessages: Int = 1000,
            maxOutstandingBytes: Int = 100 * 1024 * 1024,
            maxConcurrentHandlers: Int = 100,
            numPullers: Int = 4,
            maxMessagesPerPull: Int = 1000,
            maxExtension: Duration = .seconds(3600),
            minDurationPerLeaseExtension: Duration = .seconds(10),
            maxDurationPerLeaseExtension: Duration = .seconds(600),
            leaseExtensionGrace: Duration = .seconds(5),
            ackFlushInterval: Duration = .milliseconds(100),
            maxAckBatchSize: Int = 1000,
            shutdownTimeout: Duration = .seconds(30),
            initialPullRetryDelay: Duration = .milliseconds(100),
            maxPullRetryDelay: Duration = .seconds(10)
        ) {
            self.maxOutstandingMessages = maxOutstandingMessages
            self.maxOutstandingBytes = maxOutstandingBytes
            self.maxConcurrentHandlers = maxConcurrentHandlers
            self.numPullers = numPullers
            self.maxMessagesPerPull = maxMessagesPerPull
            self.maxExtension = maxExtension
            self.minDurationPerLeaseExtension = minDurationPerLeaseExtension
            self.maxDurationPerLeaseExtension = maxDurationPerLeaseExtension
            self.leaseExtensionGrace = leaseExtensionGrace
            self.ackFlushInterval = ackFlushInterval
            self.maxAckBatchSize = maxAckBatchSize
            self.shutdownTimeout = shutdownTimeout
            self.initialPullRetryDelay = initialPullRetryDelay
            self.maxPullRetryDelay = maxPullRetryDelay
        }

        public static let `default` = Settings()

        /// Throws `invalidArgument` naming the first setting out of range.
        func validate() throws {
            func check(_ ok: Bool, _ text: String) throws {
                if !ok { throw PubSubError(kind: .invalidArgument, message: "Subscriber.Settings: \(text)") }
            }
            try check(maxOutstandingMessages >= 1, "maxOutstandingMessages must be at least 1, not \(maxOutstandingMessages)")
            try check(maxOutstandingBytes >= 1, "maxOutstandingBytes must be at least 1, not \(maxOutstandingBytes)")
            try check(maxConcurrentHandlers >= 1, "maxConcurrentHandlers must be at least 1, not \(maxConcurrentHandlers)")
            try check(numPullers >= 1, "numPullers must be at least 1, not \(numPullers)")
            try check((1...1000).contains(maxMessagesPerPull), "maxMessagesPerPull must be 1 to 1000, not \(maxMessagesPerPull)")
            try check(maxExtension > .zero, "maxExtension must be positive, not \(maxExtension)")
            try check(minDurationPerLeaseExtension <= maxDurationPerLeaseExtension,
                      "minDurationPerLeaseExtension (\(minDurationPerLeaseExtension)) must not exceed maxDurationPerLeaseExtension (\(maxDurationPerLeaseExtension))")
            try check(leaseExtensionGrace >= .zero, "leaseExtensionGrace must not be negative")
            try check(ackFlushInterval > .zero, "ackFlushInterval must be positive, not \(ackFlushInterval)")
            try check((1...1000).contains(maxAckBatchSize), "maxAckBatchSize must be 1 to 1000, not \(maxAckBatchSize)")
            try check(shutdownTimeout >= .zero, "shutdownTimeout must not be negative")
            try check(initialPullRetryDelay > .zero && maxPullRetryDelay >= initialPullRetryDelay,
                      "pull retry delays must be positive, the cap at least the initial delay")
        }
    }

    /// Counters since `run` started, for tests and metrics.
    public struct Statistics: Sendable, Equatable {
        /// Messages received by pulls.
        public var received: Int = 0
        /// Ack IDs the server accepted in acknowledge requests.
        public var acked: Int = 0
        /// Ack IDs nacked (modifyAckDeadline 0) successfully: thrown handlers, explicit nacks,
        /// and messages given back on shutdown.
        public var nacked: Int = 0
        /// Messages given back (nacked) by shutdown: pulled but never handed to a handler, or
        /// in a handler that outlived `shutdownTimeout`.
        public var nackedOnShutdown: Int = 0
        /// Ack IDs whose acknowledge or nack request failed for good.
        public var ackFailures: Int = 0
        /// Ack IDs whose lease was extended (one per ID per successful extension, the receipt
        /// modack sent after each pull included).
        public var leaseExtensions: Int = 0
        /// modifyAckDeadline requests sent to extend leases (receipt modacks included),
        /// successful or not.
        public var leaseExtensionRequests: Int = 0
        /// Messages let go after `maxExtension`.
        public var expired: Int = 0
        /// Pull requests that completed (with or without messages).
        public var pulls: Int = 0
        /// Pull requests that failed and were retried.
        public var pullFailures: Int = 0
        /// Handlers started.
        public var handlersStarted: Int = 0
        /// Messages held now (queued or in a handler, not yet acked, nacked or let go).
        public var outstandingMessages: Int = 0
        /// Bytes of the messages held now.
        public var outstandingBytes: Int = 0
    }
}
