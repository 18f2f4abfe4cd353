import Foundation
import Logging
import Synchronization

/// Receives messages from a subscription with several long-poll pulls in flight, hands them to
/// a handler with bounded concurrency and flow control, keeps their leases alive while the
/// handler runs, and acknowledges in batches.
///
/// ```swift
/// let subscriber = Subscriber(client: client, subscription: "reservations-worker")
/// try await subscriber.run { message in
///     try await process(message.data)      // returns: acked; throws: nacked (redelivered)
/// }
/// ```
///
/// `run` keeps receiving until `shutdown()` is called or its task is cancelled; both shut down
/// gracefully, in this order:
/// 1. no new pull starts; messages pulled but not yet handed to a handler are nacked at once;
/// 2. running handlers get `Settings.shutdownTimeout` to finish (then they are cancelled and
///    their messages nacked); leases stay extended meanwhile;
/// 3. pulls still in flight are cancelled once nothing happened for 1 s, or 5 s once a nack
///    went out during shutdown (what they bring back meanwhile is nacked at once). They are
///    not cancelled earlier because the emulator keeps a cancelled long-poll open and hands
///    it the next available messages (the ones just nacked, seconds after the nack under
///    load), which then stay invisible until their ack deadline;
/// 4. the last acks and nacks are flushed, and `run` returns.
///
/// Nothing acked is lost and nothing held is dropped silently: every message is acked, or
/// nacked, or (only after `maxExtension`, logged) let go to expire.
///
/// Inside, a task group holds the pullers, the handler tasks, the lease ticker and the ack
/// flusher. Because a cancelled task group cancels every child at once, the group runs in
/// a task of its own, which `run` awaits: cancelling `run`'s task starts the graceful
/// shutdown instead of killing handlers mid-message.
public final class Subscriber: Sendable {
    /// The subscription ID (or full name) given to `init`.
    public let subscription: String
    public let settings: Settings
    let client: PubSubClient
    let logger: Logger
    let core: SubscriberCore

    /// - Parameters:
    ///   - client: the REST client; its `retry` settings apply to acknowledge and
    ///     modifyAckDeadline, its `pullTimeout` to each long-poll.
    ///   - subscription: a subscription ID of the client's project, or a full name.
    ///   - settings: flow control, leasing, batching, shutdown. Default `Settings.default`.
    ///   - logger: where the subscriber logs (state changes at info and warning, failed
    ///     exactly-once acks at error, details at debug). Default: no logging.
    public init(
        client: PubSubClient,
        subscription: String,
        settings: Settings = .default,
        logger: Logger = Logger(label: "PubSubREST.Subscriber", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.client = client
        self.subscription = subscription
        self.settings = settings
        var logger = logger
        logger[metadataKey: "subscription"] = "\(subscription)"
        self.logger = logger
        self.core = SubscriberCore(settings: settings)
    }

    /// Counters since `run` started, and what is held now.
    public var statistics: Statistics { core.statistics }

    /// Receives messages and calls `handler` for each until `shutdown()` is called or the
    /// task is cancelled, then shuts down gracefully and returns.
    ///
    /// The handler's return acks the message, a thrown error nacks it, unless the handler
    /// settled it itself (`Message.ack()`, `ackWithResult()`, `nack()`). Up to
    /// `Settings.maxConcurrentHandlers` handlers run at once.
    ///
    /// Throws `PubSubError` when the subscription does not exist (`code == .notFound`), the
    /// caller may not use it (`.permissionDenied`), a pull fails with another error that
    /// retrying cannot fix, the settings are invalid, or `run` was already called on this
    /// subscriber. Retryable pull failures are retried with backoff for as long as it takes.
    public func run(handler: @escaping @Sendable (Message) async throws -> Void) async throws {
        try settings.validate()
        guard core.markStarted() else {
            throw PubSubError(kind: .shutdown, message: "run was already called on this Subscriber; create a new Subscriber to receive again")
        }
        defer { core.markFinished() }
        let core = self.core
        let engine = Task { try await self.engine(handler: handler) }
        try await withTaskCancellationHandler {
            try await engine.value
        } onCancel: {
            core.stop()
        }
    }

    /// Shuts down gracefully (see `run`) and returns once `run` has returned. Calling it
    /// before `run` makes `run` return at once; calling it again does nothing more.
    public func shutdown() async {
        core.stop()
        await core.waitForFinish()
    }

    // MARK: - Engine

    private func engine(handler: @escaping @Sendable (Message) async throws -> Void) async throws {
        guard try await fetchSubscription() else { return }
        logger.info("Subscriber started", metadata: [
            "ack_deadline_s": "\(core.ackDeadlineSeconds)", "exactly_once": "\(core.exactlyOnce)",
            "pullers": "\(settings.numPullers)", "handlers": "\(settings.maxConcurrentHandlers)",
        ])
        await withTaskGroup(of: Void.self) { outer in
            outer.addTask { await self.flushLoop() }
            await withTaskGroup(of: Void.self) { inner in
                inner.addTask { await self.leaseLoop() }
                inner.addTask { await self.flushTimer() }
                await withTaskGroup(of: Void.self) { work in
                    work.addTask { await self.pullPhase() }
                    work.addTask {
                        await self.handlerPhase(handler)
                        let held = self.core.handlersFinished()
                        if held > 0 {
                            self.logger.info("Nacked held messages on shutdown", metadata: ["count": "\(held)"])
                        }
                    }
                }
                let held = core.nackAllHeld()
                if held > 0 {
                    logger.info("Nacked held messages on shutdown", metadata: ["count": "\(held)"])
                }
                inner.cancelAll()
            }
            core.stopAccepting()
        }
        let stats = core.statistics
        logger.info("Subscriber stopped", metadata: [
            "received": "\(stats.received)", "acked": "\(stats.acked)", "nacked": "\(stats.nacked)",
            "ack_failures": "\(stats.ackFailures)",
        ])
        if let fatal = core.fatalError { throw fatal }
    }

    /// Reads the subscription's ack deadline and exactly-once flag. False when shutdown came
    /// first.
    private func fetchSubscription() async throws -> Bool {
        do {
            let fetched = try await client.getSubscription(subscription)
            core.configure(ackDeadlineSeconds: fetched.ackDeadlineSeconds ?? 10, exactlyOnce: fetched.enableExactlyOnceDelivery ?? false)
        } catch let error as PubSubError {
            if core.isStopping { return false }
            if error.code == .permissionDenied {
                // Pulling may still be allowed; the first pull tells.
                logger.warning("Could not read the subscription; assuming a 10 s ack deadline", metadata: ["error": "\(error)"])
            } else {
                throw Self.fatal(error, subscription: subscription)
            }
        }
        return !core.isStopping
    }

    /// The error that ends `run`, saying what to do.
    static func fatal(_ error: PubSubError, subscription: String) -> PubSubError {
        let advice: String
        switch error.code {
        case .notFound?:
            advice = "subscription '\(subscription)' was not found: create it, or check its name and project"
        case .permissionDenied?:
            advice = "permission denied on subscription '\(subscription)': grant the caller roles/pubsub.subscriber on it"
        default:
            advice = "receiving from subscription '\(subscription)' failed with an error that retrying cannot fix"
        }
        return PubSubError(
            kind: error.kind,
            message: "\(advice); the subscriber stopped. The server said: \(error.message)",
            httpStatus: error.httpStatus, code: error.code, operation: error.operation
        )
    }

    // MARK: Pulling

    private enum PullEvent { case puller, stopped, quiet }

    /// Runs the pullers until stop. In-flight pulls are then left running while handlers
    /// finish and shutdown's nacks are flushed, and cancelled once all is quiet (see `pullsMayBeCancelled`): an
    /// empty long-poll would hold for ~90 s.
    private func pullPhase() async {
        await withTaskGroup(of: PullEvent.self) { group in
            for index in 0..<settings.numPullers {
                group.addTask {
                    await self.puller(index)
                    return .puller
                }
            }
            group.addTask {
                await self.core.waitForStop()
                return .stopped
            }
            var pullers = settings.numPullers
            var stopped = false
            while let event = await group.next() {
                switch event {
                case .puller:
                    pullers -= 1
                case .stopped:
                    stopped = true
                    group.addTask {
                        // Bounded, in case nacks keep failing or messages keep coming back.
                        let deadline = ContinuousClock.now + self.settings.shutdownTimeout + .seconds(25)
                        while !self.core.pullsMayBeCancelled(quiet: .seconds(1), quietAfterNack: .seconds(5)) && ContinuousClock.now < deadline {
                            do {
                                try await Task.sleep(for: .milliseconds(20))
                            } catch {
                                break
                            }
                        }
                        return .quiet
                    }
                case .quiet:
                    group.cancelAll()
                }
                if stopped && pullers == 0 {
                    group.cancelAll()
                }
            }
        }
    }

    private func puller(_ index: Int) async {
        var failures = 0
        while let count = await core.reserve() {
            do {
                let messages = try await client.pull(subscription: subscription, maxMessages: count, returnImmediately: false, retry: RetrySettings.none)
                core.register(messages, reserved: count, at: .now)
                if failures > 0, core.pullSucceeded() {
                    logger.info("Pulls recovered", metadata: ["failed_attempts": "\(failures)"])
                }
                failures = 0
            } catch {
                core.releaseReservation(count)
                if core.isStopping || Task.isCancelled { return }
                guard let error = error as? PubSubError else {
                    core.stop(fatal: PubSubError(kind: .transport, message: "a pull failed: \(error)"))
                    return
                }
                if error.kind == .cancelled { return }
                guard error.isRetryable else {
                    let fatal = Self.fatal(error, subscription: subscription)
                    logger.error("Subscriber stopping on a pull error", metadata: ["error": "\(fatal)"])
                    core.stop(fatal: fatal)
                    return
                }
                failures += 1
                if core.pullFailed() {
                    logger.warning("Pulls are failing; retrying with backoff", metadata: ["error": "\(error)", "puller": "\(index)"])
                }
                try? await Task.sleep(for: pullRetryDelay(failures: failures))
            }
        }
    }

    private func pullRetryDelay(failures: Int) -> Duration {
        var delay = settings.initialPullRetryDelay
        var step = 1
        while step < failures && delay < settings.maxPullRetryDelay {
            delay *= 2
            step += 1
        }
        return min(delay, settings.maxPullRetryDelay) * Double.random(in: 0.5...1.0)
    }

    // MARK: Handlers

    private enum HandlerEvent { case worker, timedOut }

    /// Runs `maxConcurrentHandlers` handler tasks until stop; after stop, handlers still
    /// running get `shutdownTimeout`, then are cancelled and their messages nacked.
    private func handlerPhase(_ handler: @escaping @Sendable (Message) async throws -> Void) async {
        let workers = settings.maxConcurrentHandlers
        await withTaskGroup(of: HandlerEvent.self) { group in
            for _ in 0..<workers {
                group.addTask {
                    await self.worker(handler)
                    return .worker
                }
            }
            group.addTask {
                await self.core.waitForStop()
                try? await Task.sleep(for: self.settings.shutdownTimeout)
                return .timedOut
            }
            var remaining = workers
            while let event = await group.next() {
                switch event {
                case .worker:
                    remaining -= 1
                    if remaining == 0 { group.cancelAll() }
                case .timedOut:
                    guard remaining > 0 else { break }
                    let held = core.nackAllHeld()
                    logger.warning("Handlers did not finish within the shutdown timeout; cancelling them", metadata: [
                        "running": "\(remaining)", "nacked": "\(held)",
                    ])
                    flushNow()
                    group.cancelAll()
                }
            }
        }
    }

    private func worker(_ handler: @escaping @Sendable (Message) async throws -> Void) async {
        while let work = await core.nextWork() {
            let message = Message(work.message, core: core)
            do {
                try await handler(message)
                message.ack()
            } catch {
                if !message.isSettled {
                    logger.debug("Handler failed; nacking", metadata: ["message.id": "\(message.messageID)", "error": "\(error)"])
                }
                message.nack()
            }
            core.handlerFinished(bytes: work.bytes)
        }
    }

    // MARK: Leases

    /// Every 500 ms, sends the lease extensions that are due: the receipt modack of messages
    /// pulled since the last tick (to the full extension length, as Google's clients do), and
    /// the extensions of leases within `grace` of expiry. Each request runs in a task of its
    /// own, once, bounded by the grace, so a slow or failing request neither delays the ticker
    /// nor the other leases; a lease with no answer is due again after `retryAfter`.
    private func leaseLoop() async {
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: .milliseconds(500))
                } catch {
                    return
                }
                let (batches, letGo) = core.dueExtensions(now: .now)
                if letGo > 0 {
                    logger.warning("Leases let go after maxExtension; the messages will be redelivered", metadata: [
                        "count": "\(letGo)", "max_extension": "\(settings.maxExtension)",
                    ])
                }
                for (seconds, ackIDs) in batches {
                    for chunk in ackIDs.chunks(of: PubSubClient.Limits.maxAckIDsPerRequest) {
                        group.addTask { await self.extend(chunk, seconds: seconds) }
                    }
                }
            }
        }
    }

    /// One extension request, one attempt, timed out after the lease's grace.
    private func extend(_ chosen: [String], seconds: Int) async {
        // Under load this task may start late: what was nacked meanwhile is left out (the
        // nack waits for the requests that did go out, see `flushPending`).
        let ackIDs = core.stillLeased(chosen)
        if ackIDs.isEmpty { return }
        var retry = client.configuration.retry
        retry.maxAttempts = 1
        retry.rpcTimeout = min(retry.rpcTimeout, max(.seconds(1), SubscriberCore.grace(.seconds(seconds), settings)))
        let sentAt = ContinuousClock.now
        do {
            try await client.modifyAckDeadline(subscription: subscription, ackIDs: ackIDs, seconds: seconds, retry: retry)
            let late = core.extensionFinished(ackIDs, seconds: seconds, sentAt: sentAt, succeeded: true)
            if late > 0 {
                logger.warning("Lease extensions were sent after the leases had probably expired; the messages may be redelivered", metadata: [
                    "count": "\(late)", "seconds": "\(seconds)",
                ])
            }
            logger.debug("Extended leases", metadata: ["count": "\(ackIDs.count)", "seconds": "\(seconds)"])
        } catch {
            core.extensionFinished(ackIDs, seconds: seconds, sentAt: sentAt, succeeded: false)
            if Task.isCancelled { return }
            logger.warning("Extending leases failed; retrying", metadata: ["count": "\(ackIDs.count)", "error": "\(error)"])
        }
    }

    // MARK: Acks

    private func flushTimer() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: settings.ackFlushInterval)
            } catch {
                return
            }
            core.flushSignal.yield()
        }
    }

    private func flushNow() {
        core.flushSignal.yield()
    }

    /// The single ack flusher: on every signal, sends what is pending; after the last
    /// signal (`stopAccepting`), sends the rest and returns. It is never cancelled, so no
    /// batch is abandoned mid-request.
    private func flushLoop() async {
        for await _ in core.flushSignals {
            await flushPending()
        }
        await flushPending()
    }

    private func flushPending() async {
        while true {
            let (acks, nacks) = core.takePending()
            if acks.isEmpty && nacks.isEmpty { return }
            for batch in acks.chunks(of: settings.maxAckBatchSize) {
                do {
                    try await client.acknowledge(subscription: subscription, ackIDs: batch)
                    core.acknowledged(batch, error: nil)
                } catch {
                    let failure = error as? PubSubError ?? PubSubError(kind: .transport, message: "\(error)")
                    core.acknowledged(batch, error: failure)
                    if core.exactlyOnce {
                        logger.error("Acknowledgements failed on an exactly-once subscription", metadata: ["count": "\(batch.count)", "error": "\(failure)"])
                    } else {
                        logger.warning("Acknowledgements failed; the messages will be redelivered", metadata: ["count": "\(batch.count)", "error": "\(failure)"])
                    }
                }
            }
            let nackBatches = nacks.chunks(of: settings.maxAckBatchSize)
            for (index, batch) in nackBatches.enumerated() {
                let last = index == nackBatches.count - 1
                // An extension still in flight could reach the server after the nack and hide
                // the message for a whole deadline: let it finish first. Its own timeout
                // bounds it; the bound here is only a guard.
                let waitUntil = ContinuousClock.now + client.configuration.retry.rpcTimeout + .seconds(5)
                while core.isExtending(any: batch) && ContinuousClock.now < waitUntil {
                    try? await Task.sleep(for: .milliseconds(10))
                }
                do {
                    try await client.modifyAckDeadline(subscription: subscription, ackIDs: batch, seconds: 0)
                    core.nacked(batch.count, failed: false, last: last)
                } catch {
                    core.nacked(batch.count, failed: true, last: last)
                    logger.warning("Nacks failed; the messages will be redelivered when their deadline passes", metadata: ["count": "\(batch.count)", "error": "\(error)"])
                }
            }
        }
    }
}
