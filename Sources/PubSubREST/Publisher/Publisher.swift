import Logging
import Synchronization

/// Publishes messages to one topic with batching, flow control, ordering keys and retries, as
/// Google's client libraries do.
///
/// Create one per topic and share it: it is `Sendable`, and `publish` may be called from many
/// tasks at once. Messages accumulate into batches; a batch is sent when it reaches
/// `countThreshold` messages or `byteThreshold` bytes, or `delayThreshold` after its first
/// message, with up to `maxConcurrentBatches` requests in flight. Call `shutdown()` before
/// dropping the publisher so that nothing accepted is lost.
///
/// ```swift
/// let publisher = try Publisher(client: client, topic: "reservation-created")
/// let id = try await publisher.publish(PubSubMessage("hello"))
/// await publisher.shutdown()
/// ```
public final class Publisher: Sendable {
    /// The full topic name, `projects/P/topics/T`.
    public let topic: String
    /// The settings this publisher was made with.
    public let settings: Settings

    let client: PubSubClient
    let logger: Logger
    let retry: RetrySettings
    let state: Mutex<PublisherState>

    /// - Parameters:
    ///   - client: sends the publish requests; its `publishRetry` settings are used, bounded by
    ///     `settings.timeout`.
    ///   - topic: a topic ID of the client's project, or a full topic name.
    ///   - settings: batching, flow control, ordering and timeout.
    ///   - logger: batches, failures and paused keys are logged at debug and info. Default: no logging.
    /// - Throws: `.invalidArgument` for a malformed topic name or settings out of range.
    public init(
        client: PubSubClient,
        topic: String,
        settings: Settings = .default,
        logger: Logger = Logger(label: "PubSubREST.Publisher", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws {
        self.topic = try client.topicName(topic)
        try settings.validate()
        self.settings = settings
        self.client = client
        self.logger = logger
        var retry = client.configuration.publishRetry
        retry.totalTimeout = settings.timeout
        retry.rpcTimeout = min(retry.rpcTimeout, settings.timeout)
        self.retry = retry
        self.state = Mutex(PublisherState(limits: PublisherLimits(settings)))
    }

    // MARK: - Publishing

    /// Publishes one message and returns its server-assigned ID once the server has accepted it.
    ///
    /// Throws at once, with nothing sent: `.invalidArgument` for a message the API would reject
    /// (empty, more than 100 attributes, too big for one request, an ordering key without
    /// `enableMessageOrdering`), `.shutdown` after `shutdown()`, `.orderingKeyPaused` while the
    /// message's ordering key is paused, `.flowControl` when a limit is reached and the behaviour
    /// is `.failFast`. With `.block`, waits for room first. Otherwise throws the `PubSubError`
    /// of the failed publish request (after retries, within `settings.timeout`).
    ///
    /// Once accepted, a message is published even if the calling task is cancelled.
    public func publish(_ message: PubSubMessage) async throws -> String {
        let queuedSizes = try check(message)
        return try await withCheckedThrowingContinuation { continuation in
            let queued = QueuedMessage(
                message: message, completion: { continuation.resume(with: $0) },
                size: queuedSizes.size, requestSize: queuedSizes.requestSize
            )
            do {
                try submit(queued)
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    /// Publishes several messages and returns their IDs, in order. Each message is handled
    /// exactly as by `publish(_:)` (batched with others, flow controlled in order); the call
    /// returns when all are resolved and throws the first message's error, if any failed (the
    /// others may have been published). Invalid messages are rejected before any is accepted.
    public func publish(_ messages: [PubSubMessage]) async throws -> [String] {
        let sizes = try messages.map { try check($0) }
        if messages.isEmpty { return [] }
        let collector = Collector(count: messages.count)
        return try await withCheckedThrowingContinuation { continuation in
            collector.start(continuation)
            for (index, message) in messages.enumerated() {
                let queued = QueuedMessage(
                    message: message, completion: { collector.record(index, $0) },
                    size: sizes[index].size, requestSize: sizes[index].requestSize
                )
                do {
                    try submit(queued)
                } catch {
                    collector.record(index, Result<String, any Error>.failure(error))
                }
            }
        }
    }

    /// Messages accepted and not yet resolved (sent and acknowledged, or failed). Callers
    /// blocked by flow control are not counted.
    public var outstandingMessages: Int { state.withLock { $0.outstandingMessages } }

    /// Bytes (`PubSubMessage.byteSize`) of the messages in `outstandingMessages`.
    public var outstandingBytes: Int { state.withLock { $0.outstandingBytes } }

    /// Lets messages with `orderingKey` be published again after a failed publish paused the key.
    /// Does nothing for a key that is not paused.
    public func resumePublish(orderingKey: String) {
        state.withLock { $0.resume(key: orderingKey) }
        logger.info("Resumed ordering key", metadata: ["topic": "\(topic)", "ordering_key": "\(orderingKey)"])
    }

    /// Sends every message accepted so far at once (without waiting for the thresholds) and
    /// returns when all of them are resolved. Messages accepted meanwhile are batched as usual.
    public func flush() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            var effects = PublisherEffects()
            state.withLock { state in
                let generation = state.beginFlush(effects: &effects)
                state.flushWaiters.append((generation, continuation))
                state.wakeWaiters(effects: &effects)
            }
            perform(effects)
        }
    }

    /// Refuses new messages (they fail with `.shutdown`), sends everything accepted (and every
    /// caller blocked by flow control), and returns once all is resolved and the publisher's
    /// timer has stopped. Idempotent: later calls wait the same way and return.
    public func shutdown() async {
        let first = state.withLock { state -> Bool in
            defer { state.isShutdown = true }
            return !state.isShutdown
        }
        if first { logger.info("Shutting down publisher", metadata: ["topic": "\(topic)"]) }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            var effects = PublisherEffects()
            state.withLock { state in
                state.pump(effects: &effects)
                state.idleWaiters.append(continuation)
                state.wakeWaiters(effects: &effects)
            }
            perform(effects)
        }
        let timer = state.withLock { state -> Task<Void, Never>? in
            defer { state.timerTask = nil }
            return state.timerTask
        }
        timer?.cancel()
        await timer?.value
    }

    // MARK: - Internals

    static let shutdownError = PubSubError(kind: .shutdown, message: "the publisher was shut down")

    static func pausedError(key: String, cause: PubSubError) -> PubSubError {
        PubSubError(
            kind: .orderingKeyPaused,
            message: "publishing with ordering key '\(key)' is paused after a failed publish (\(cause.message)); "
                + "call resumePublish(orderingKey:) to publish with it again",
            httpStatus: cause.httpStatus, code: cause.code, operation: cause.operation
        )
    }

    /// Checks a message before it is accepted; returns its sizes.
    private func check(_ message: PubSubMessage) throws -> (size: Int, requestSize: Int) {
        try PubSubClient.validate(message)
        if let key = message.orderingKey, !key.isEmpty, !settings.enableMessageOrdering {
            throw PubSubError(
                kind: .invalidArgument,
                message: "the message has ordering key '\(key)' but message ordering is not enabled: "
                    + "set Publisher.Settings.enableMessageOrdering to true"
            )
        }
        return (message.byteSize, PublisherLimits.requestSize(of: message))
    }

    private func submit(_ queued: QueuedMessage) throws {
        var queued = queued
        if queued.message.orderingKey?.isEmpty == true { queued.message.orderingKey = nil }
        var effects = PublisherEffects()
        try state.withLock { state throws(PubSubError) in
            try state.submit(queued, effects: &effects)
        }
        perform(effects)
    }

    /// Does what the state machine decided, outside the lock.
    private func perform(_ effects: PublisherEffects) {
        if effects.startTimer { startTimer() }
        for batch in effects.launch {
            Task { await self.send(batch) }
        }
        for (key, error) in effects.paused {
            logger.info("Paused ordering key after a failed publish", metadata: [
                "topic": "\(topic)", "ordering_key": "\(key)", "error": "\(error)",
            ])
        }
        for (completion, result) in effects.outcomes { completion(result) }
        for continuation in effects.resume { continuation.resume() }
    }

    private func startTimer() {
        state.withLock { state in
            guard state.timerTask == nil, !state.deadlines.isEmpty else { return }
            state.timerTask = Task { await self.runTimer() }
        }
    }

    /// Cuts batches when their delay passes; stops (clearing `timerTask`) when no batch waits
    /// for its delay, or when `shutdown()` cancels it.
    private func runTimer() async {
        var next = state.withLock { state -> ContinuousClock.Instant? in
            if let first = state.deadlines.first { return first.deadline }
            state.timerTask = nil
            return nil
        }
        while let deadline = next {
            do {
                try await Task.sleep(until: deadline, clock: .continuous)
            } catch {
                return  // cancelled by shutdown, which clears `timerTask`
            }
            var effects = PublisherEffects()
            next = state.withLock { $0.expire(now: .now, effects: &effects) }
            perform(effects)
        }
    }

    /// Sends one batch and records the outcome.
    private func send(_ batch: Batch) async {
        logger.debug("Publishing batch", metadata: [
            "topic": "\(topic)", "messages": "\(batch.count)", "bytes": "\(batch.bytes)",
            "ordering_key": "\(batch.key ?? "")",
        ])
        let result: Result<[String], PubSubError>
        let operation = "POST \(topic):publish"
        do {
            result = .success(try await client.publish(topic: topic, messages: batch.messages, retry: retry))
        } catch let error as PubSubError {
            result = .failure(error.with(operation: operation))
        } catch {
            result = .failure(PubSubError(kind: .transport, message: "publish failed: \(error)", operation: operation))
        }
        if case .failure(let error) = result {
            logger.debug("Publish batch failed", metadata: [
                "topic": "\(topic)", "messages": "\(batch.count)", "error": "\(error)",
            ])
        }
        var effects = PublisherEffects()
        state.withLock { $0.complete(batch, result: result, effects: &effects) }
        perform(effects)
    }
}

/// Gathers the outcomes of `publish(_ messages:)` and resumes its caller once all are in.
private final class Collector: Sendable {
    private struct State {
        var ids: [String]
        var firstError: (index: Int, error: any Error)?
        var remaining: Int
        var continuation: CheckedContinuation<[String], any Error>?
    }
    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(ids: Array(repeating: "", count: count), firstError: nil, remaining: count, continuation: nil))
    }

    func start(_ continuation: CheckedContinuation<[String], any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    func record(_ index: Int, _ result: Result<String, some Error>) {
        let finished = state.withLock { state -> (CheckedContinuation<[String], any Error>, Result<[String], any Error>)? in
            switch result {
            case .success(let id):
                state.ids[index] = id
            case .failure(let error):
                if state.firstError.map({ index < $0.index }) ?? true { state.firstError = (index, error) }
            }
            state.remaining -= 1
            guard state.remaining == 0, let continuation = state.continuation else { return nil }
            state.continuation = nil
            return (continuation, state.firstError.map { .failure($0.error) } ?? .success(state.ids))
        }
        if let finished { finished.0.resume(with: finished.1) }
    }
}
