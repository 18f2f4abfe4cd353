import Foundation
import Synchronization

/// The shared state of one `Subscriber`: leases, the local queue, flow control, pending acks
/// and nacks, counters. Everything sits behind one `Mutex`; no `await` happens while it is
/// held. Continuations are resumed after the lock is released.
final class SubscriberCore: Sendable {
    struct Lease {
        var bytes: Int
        var receivedAt: ContinuousClock.Instant
        /// A conservative estimate of when the server's deadline for this delivery passes.
        var expiresAt: ContinuousClock.Instant
        /// When the lease ticker next sends an extension: at once after the pull (the receipt
        /// modack), then `grace` before `expiresAt`, or sooner again while no answer came.
        var nextExtensionAt: ContinuousClock.Instant
        var dispatched: Bool
    }

    /// The server starts a delivery's ack deadline when it hands the message out, which is
    /// before the pull response reaches us (and before a loaded process gets to run): the
    /// first expiry estimate counts the deadline from the response's arrival minus this.
    static let pulledLeaseMargin = Duration.seconds(2)

    /// A message taken from the queue for a handler, with the bytes it counts for.
    struct Work: Sendable {
        var message: ReceivedMessage
        var bytes: Int
    }

    struct State {
        var leases: [String: Lease] = [:]
        var queue: [ReceivedMessage?] = []
        var queueHead = 0
        var outstandingBytes = 0
        /// Messages asked for by pulls in flight.
        var reserved = 0
        var runningCount = 0
        var runningBytes = 0
        var idleWorkers: [CheckedContinuation<Work?, Never>] = []
        var waitingPullers: [CheckedContinuation<Int?, Never>] = []
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
        var finishWaiters: [CheckedContinuation<Void, Never>] = []
        var stopping = false
        var started = false
        var finished = false
        var acceptingAcks = true
        var pendingAcks: [String] = []
        var pendingNacks: [String] = []
        var ackWaiters: [String: CheckedContinuation<Void, any Error>] = [:]
        var stats = Subscriber.Statistics()
        var pullsFailing = false
        var lastShutdownActivity = ContinuousClock.now
        var nackFlushInFlight = false
        /// A nack went out during shutdown: the emulator may hand the message back to one of
        /// the pulls in flight, seconds later under load.
        var nackedWhileStopping = false
        var handlersDone = false
        var fatalError: PubSubError?
        /// The subscription's ack deadline, set once `run` fetched the subscription.
        var ackDeadlineSeconds = 10
        var exactlyOnce = false
        /// Extension requests in flight, by ack ID: a nack waits for them (briefly), so that
        /// a late extension does not hide a nacked message for a whole deadline.
        var extending: [String: Int] = [:]
    }

    /// Continuations to resume once the lock is released.
    struct Wakeups {
        var workers: [(CheckedContinuation<Work?, Never>, Work?)] = []
        var pullers: [(CheckedContinuation<Int?, Never>, Int?)] = []
        var others: [CheckedContinuation<Void, Never>] = []

        func resume() {
            for (continuation, work) in workers { continuation.resume(returning: work) }
            for (continuation, count) in pullers { continuation.resume(returning: count) }
            for continuation in others { continuation.resume() }
        }
    }

    let settings: Subscriber.Settings
    private let state = Mutex(State())
    /// Wakes the ack flusher: every `ackFlushInterval`, when a batch is full, on stop.
    let flushSignal: AsyncStream<Void>.Continuation
    let flushSignals: AsyncStream<Void>

    init(settings: Subscriber.Settings) {
        self.settings = settings
        (flushSignals, flushSignal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    // MARK: - Configuration and lifecycle

    func configure(ackDeadlineSeconds: Int, exactlyOnce: Bool) {
        state.withLock {
            $0.ackDeadlineSeconds = ackDeadlineSeconds
            $0.exactlyOnce = exactlyOnce
        }
    }

    var exactlyOnce: Bool { state.withLock { $0.exactlyOnce } }
    var ackDeadlineSeconds: Int { state.withLock { $0.ackDeadlineSeconds } }
    var isStopping: Bool { state.withLock { $0.stopping } }
    var fatalError: PubSubError? { state.withLock { $0.fatalError } }

    var statistics: Subscriber.Statistics {
        state.withLock { s in
            var stats = s.stats
            stats.outstandingMessages = s.leases.count
            stats.outstandingBytes = s.outstandingBytes
            return stats
        }
    }

    /// Stops pulling and dispatching: idle handler tasks and waiting pullers are released,
    /// and queued messages are nacked at once, while the pulls in flight can still take them
    /// back (see `pullsMayBeCancelled`). Later calls only record `fatal` when none is yet.
    func stop(fatal: PubSubError? = nil) {
        let wakeups = state.withLock { s -> Wakeups in
            if let fatal, s.fatalError == nil { s.fatalError = fatal }
            guard !s.stopping else { return Wakeups() }
            s.stopping = true
            s.lastShutdownActivity = .now
            var wakeups = Wakeups()
            wakeups.workers = s.idleWorkers.map { ($0, nil) }
            wakeups.pullers = s.waitingPullers.map { ($0, nil) }
            wakeups.others = s.stopWaiters
            s.idleWorkers = []
            s.waitingPullers = []
            s.stopWaiters = []
            for case let message? in s.queue[s.queueHead...] where s.leases[message.ackID]?.dispatched == false {
                s.removeLease(message.ackID)
                s.pendingNacks.append(message.ackID)
                s.stats.nackedOnShutdown += 1
            }
            s.queue = []
            s.queueHead = 0
            return wakeups
        }
        wakeups.resume()
        flushSignal.yield()
    }

    /// Whether the pulls still in flight during shutdown may be cancelled now.
    ///
    /// The emulator does not notice a cancelled long-poll: it keeps it, and hands it the next
    /// messages that become available, which are then lost until their ack deadline passes.
    /// So pulls are left running while the nacks of shutdown are flushed (the nacked messages
    /// come back through them, and are nacked again), and only cancelled once nothing has
    /// happened for `quiet`: handlers are done (their messages acked or nacked), no pull
    /// brought messages and no nack is pending or in flight. Once a nack went out during
    /// shutdown, the quiet lasts `quietAfterNack`: the emulator hands a nacked message to a
    /// waiting pull asynchronously, seen up to 2 s after the nack's answer on a loaded
    /// machine, and a pull cancelled just before that swallows it for a whole ack deadline.
    func pullsMayBeCancelled(quiet: Duration, quietAfterNack: Duration) -> Bool {
        state.withLock { s in
            let needed = s.nackedWhileStopping ? quietAfterNack : quiet
            return s.handlersDone && s.pendingNacks.isEmpty && !s.nackFlushInFlight && ContinuousClock.now - s.lastShutdownActivity >= needed
        }
    }

    /// Returns once `stop` was called.
    func waitForStop() async {
        await withCheckedContinuation { continuation in
            let stopped = state.withLock { s -> Bool in
                if s.stopping { return true }
                s.stopWaiters.append(continuation)
                return false
            }
            if stopped { continuation.resume() }
        }
    }

    /// Marks `run` as started; false when it already was.
    func markStarted() -> Bool {
        state.withLock { s in
            defer { s.started = true }
            return !s.started
        }
    }

    /// Marks `run` as returned and releases `shutdown()` callers.
    func markFinished() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.finished = true
            defer { s.finishWaiters = [] }
            return s.finishWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once `run` returned, at once when it never started.
    func waitForFinish() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { s -> Bool in
                if s.finished || !s.started { return true }
                s.finishWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    // MARK: - Handlers

    /// The next message for a handler task, waiting when none may start; nil once stopping.
    func nextWork() async -> Work? {
        let immediate = state.withLock { s -> Work?? in
            if s.stopping { return .some(nil) }
            if let work = s.takeNext(maxBytes: settings.maxOutstandingBytes) { return .some(work) }
            return .none
        }
        if let immediate { return immediate }
        return await withCheckedContinuation { continuation in
            let immediate = state.withLock { s -> Work?? in
                if s.stopping { return .some(nil) }
                if let work = s.takeNext(maxBytes: settings.maxOutstandingBytes) { return .some(work) }
                s.idleWorkers.append(continuation)
                return .none
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    /// A handler finished with a message of `bytes` bytes.
    func handlerFinished(bytes: Int) {
        let wakeups = state.withLock { s -> Wakeups in
            s.runningCount -= 1
            s.runningBytes -= bytes
            return s.pump(settings)
        }
        wakeups.resume()
    }

    // MARK: - Pulling

    /// How many messages the next pull may ask for, waiting while flow control allows too few;
    /// nil once stopping. The caller must `register` or `releaseReservation` the count.
    func reserve() async -> Int? {
        let immediate = state.withLock { s -> Int?? in
            if s.stopping { return .some(nil) }
            if let count = s.reservation(settings) { return .some(count) }
            return .none
        }
        if let immediate { return immediate }
        return await withCheckedContinuation { continuation in
            let immediate = state.withLock { s -> Int?? in
                if s.stopping { return .some(nil) }
                if let count = s.reservation(settings) { return .some(count) }
                s.waitingPullers.append(continuation)
                return .none
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    func releaseReservation(_ count: Int) {
        let wakeups = state.withLock { s -> Wakeups in
            s.reserved -= count
            return s.pump(settings)
        }
        wakeups.resume()
    }

    /// Takes pulled messages under lease and into the local queue.
    func register(_ messages: [ReceivedMessage], reserved: Int, at now: ContinuousClock.Instant) {
        let wakeups = state.withLock { s -> Wakeups in
            s.reserved -= reserved
            s.stats.pulls += 1
            // The receipt modack is due at once; the deadline the pull set is estimated
            // from the response's arrival minus a margin (see `pulledLeaseMargin`).
            let expiresAt = now - Self.pulledLeaseMargin + .seconds(s.ackDeadlineSeconds)
            if s.stopping {
                // Shutting down: give them back at once.
                s.stats.received += messages.count
                s.stats.nackedOnShutdown += messages.count
                s.pendingNacks += messages.map(\.ackID)
                if !messages.isEmpty { s.lastShutdownActivity = .now }
                return Wakeups()
            }
            for message in messages {
                guard s.leases[message.ackID] == nil else { continue }
                let bytes = message.message.byteSize
                s.leases[message.ackID] = Lease(bytes: bytes, receivedAt: now, expiresAt: expiresAt, nextExtensionAt: now, dispatched: false)
                s.outstandingBytes += bytes
                s.queue.append(message)
                s.stats.received += 1
            }
            return s.pump(settings)
        }
        wakeups.resume()
        if !messages.isEmpty && isStopping { flushSignal.yield() }
    }

    /// Records a failed pull; true when pulls were succeeding until now.
    func pullFailed() -> Bool {
        state.withLock { s in
            s.stats.pullFailures += 1
            defer { s.pullsFailing = true }
            return !s.pullsFailing
        }
    }

    /// Records a successful pull; true when pulls were failing until now.
    func pullSucceeded() -> Bool {
        state.withLock { s in
            defer { s.pullsFailing = false }
            return s.pullsFailing
        }
    }

    // MARK: - Acks and nacks

    func ack(_ ackID: String) {
        let (wakeups, full) = state.withLock { s -> (Wakeups, Bool) in
            guard s.acceptingAcks else { return (Wakeups(), false) }
            s.removeLease(ackID)
            s.pendingAcks.append(ackID)
            return (s.pump(settings), s.pendingAcks.count >= settings.maxAckBatchSize)
        }
        wakeups.resume()
        if full { flushSignal.yield() }
    }

    func nack(_ ackID: String) {
        let (wakeups, full) = state.withLock { s -> (Wakeups, Bool) in
            guard s.acceptingAcks else { return (Wakeups(), false) }
            s.removeLease(ackID)
            s.pendingNacks.append(ackID)
            return (s.pump(settings), s.pendingNacks.count >= settings.maxAckBatchSize)
        }
        wakeups.resume()
        if full { flushSignal.yield() }
    }

    func ackWithResult(_ ackID: String) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let result = state.withLock { s -> (Wakeups, Bool)? in
                guard s.acceptingAcks else { return nil }
                s.removeLease(ackID)
                s.pendingAcks.append(ackID)
                s.ackWaiters[ackID] = continuation
                return (s.pump(settings), s.pendingAcks.count >= settings.maxAckBatchSize)
            }
            guard let (wakeups, full) = result else {
                continuation.resume(throwing: PubSubError(
                    kind: .shutdown,
                    message: "the subscriber has shut down and sent its last acknowledgements; this message will be redelivered"
                ))
                return
            }
            wakeups.resume()
            if full { flushSignal.yield() }
        }
    }

    /// Takes every pending ack and nack ID.
    func takePending() -> (acks: [String], nacks: [String]) {
        state.withLock { s in
            defer {
                s.pendingAcks = []
                s.pendingNacks = []
            }
            if !s.pendingNacks.isEmpty { s.nackFlushInFlight = true }
            return (s.pendingAcks, s.pendingNacks)
        }
    }

    /// Records the outcome of an acknowledge request and answers `ackWithResult` callers.
    func acknowledged(_ ackIDs: [String], error: PubSubError?) {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, any Error>] in
            if error == nil { s.stats.acked += ackIDs.count } else { s.stats.ackFailures += ackIDs.count }
            guard !s.ackWaiters.isEmpty else { return [] }
            return ackIDs.compactMap { s.ackWaiters.removeValue(forKey: $0) }
        }
        for waiter in waiters {
            if let error {
                waiter.resume(throwing: PubSubError(
                    kind: .ackFailed,
                    message: "the acknowledgement was not accepted (\(error.message)); the message may be delivered again",
                    httpStatus: error.httpStatus, code: error.code, operation: error.operation
                ))
            } else {
                waiter.resume()
            }
        }
    }

    func nacked(_ count: Int, failed: Bool, last: Bool) {
        state.withLock { s in
            if failed { s.stats.ackFailures += count } else { s.stats.nacked += count }
            if last {
                s.nackFlushInFlight = false
                if s.stopping {
                    s.lastShutdownActivity = .now
                    s.nackedWhileStopping = true
                }
            }
        }
    }

    /// Stops taking acks and nacks: the flusher sends what is pending and ends.
    func stopAccepting() {
        state.withLock { $0.acceptingAcks = false }
        flushSignal.finish()
    }

    // MARK: - Shutdown sweeps

    /// Every handler task has ended: nacks what is still held and allows cancelling pulls.
    /// Returns how many were nacked.
    func handlersFinished() -> Int {
        let held = nackAllHeld()
        state.withLock {
            $0.handlersDone = true
            $0.lastShutdownActivity = .now
        }
        flushSignal.yield()
        return held
    }

    /// Nacks every message still held (queued, or in a handler that did not finish in time).
    /// Returns how many.
    func nackAllHeld() -> Int {
        state.withLock { s in
            let ids = Array(s.leases.keys)
            for id in ids {
                s.removeLease(id)
                s.pendingNacks.append(id)
            }
            s.stats.nackedOnShutdown += ids.count
            s.queue = []
            s.queueHead = 0
            return ids.count
        }
    }

    // MARK: - Leases

    /// The lease extensions due now, by deadline in seconds, and how many leases were let go
    /// after `maxExtension`. Each returned ID counts as in flight until `extensionFinished`,
    /// and is due again after `retryAfter` unless an answer comes first.
    func dueExtensions(now: ContinuousClock.Instant) -> (batches: [Int: [String]], letGo: Int) {
        state.withLock { s in
            let deadline = Self.extensionSeconds(ackDeadlineSeconds: s.ackDeadlineSeconds, settings)
            var batches: [Int: [String]] = [:]
            var letGo: [String] = []
            for (id, lease) in s.leases where lease.nextExtensionAt <= now {
                let age = now - lease.receivedAt
                let remaining = settings.maxExtension - age
                if remaining < .seconds(1) {
                    letGo.append(id)
                    continue
                }
                let seconds = min(deadline, Int(remaining.seconds.rounded(.down)))
                s.leases[id]?.nextExtensionAt = now + Self.retryAfter(.seconds(seconds), settings)
                s.extending[id, default: 0] += 1
                batches[seconds, default: []].append(id)
            }
            for id in letGo { s.removeLease(id) }
            s.stats.expired += letGo.count
            return (batches, letGo.count)
        }
    }

    /// Records the outcome of one extension request of `seconds`, sent at `sentAt`. Returns
    /// how many of its leases had probably expired before it was sent (0 when it failed).
    @discardableResult
    func extensionFinished(_ ackIDs: [String], seconds: Int, sentAt: ContinuousClock.Instant, succeeded: Bool) -> Int {
        state.withLock { s in
            var late = 0
            for id in ackIDs {
                if let count = s.extending[id] {
                    s.extending[id] = count > 1 ? count - 1 : nil
                }
                guard succeeded, let lease = s.leases[id] else { continue }
                if sentAt > lease.expiresAt { late += 1 }
                let length = Duration.seconds(seconds)
                // The server set the deadline when it processed the request, after `sentAt`.
                let expiresAt = max(lease.expiresAt, sentAt + length)
                s.leases[id]?.expiresAt = expiresAt
                s.leases[id]?.nextExtensionAt = expiresAt - Self.grace(length, settings)
            }
            s.stats.leaseExtensionRequests += 1
            if succeeded { s.stats.leaseExtensions += ackIDs.count }
            return late
        }
    }

    /// Called just before an extension request goes out: the IDs of `ackIDs` still leased.
    /// The others were acked or nacked since `dueExtensions` chose them: they are released
    /// from `extending` and must not be extended, or the extension could reach the server
    /// after the nack and hide the message for a whole deadline.
    func stillLeased(_ ackIDs: [String]) -> [String] {
        state.withLock { s in
            var live: [String] = []
            live.reserveCapacity(ackIDs.count)
            for id in ackIDs {
                if s.leases[id] != nil {
                    live.append(id)
                } else if let count = s.extending[id] {
                    s.extending[id] = count > 1 ? count - 1 : nil
                }
            }
            return live
        }
    }

    /// Whether an extension request for one of `ackIDs` is in flight.
    func isExtending(any ackIDs: [String]) -> Bool {
        state.withLock { s in
            guard !s.extending.isEmpty else { return false }
            return ackIDs.contains { s.extending[$0] != nil }
        }
    }

    /// The deadline one extension asks for: the subscription's ack deadline clamped to the
    /// settings' range and the API's 1...600 s.
    static func extensionSeconds(ackDeadlineSeconds: Int, _ settings: Subscriber.Settings) -> Int {
        let low = Int(settings.minDurationPerLeaseExtension.seconds.rounded(.up))
        let high = Int(settings.maxDurationPerLeaseExtension.seconds.rounded(.down))
        return min(max(min(max(ackDeadlineSeconds, low), high), 1), 600)
    }

    /// How long before expiry a lease of `length` is extended: `leaseExtensionGrace` or half
    /// of `length`, whichever is longer, but leaving at least half a second (at most 1 s) of
    /// the lease before the next extension.
    static func grace(_ length: Duration, _ settings: Subscriber.Settings) -> Duration {
        min(max(settings.leaseExtensionGrace, length / 2), length - min(.seconds(1), length / 2))
    }

    /// How long an extension of `length` waits for its answer before the lease is due again
    /// (a second request then goes out while the first may still succeed): a third of the
    /// grace, at least 1 s.
    static func retryAfter(_ length: Duration, _ settings: Subscriber.Settings) -> Duration {
        max(.seconds(1), grace(length, settings) / 3)
    }
}

extension SubscriberCore.State {
    /// Removes a lease, releasing its flow-control share. No-op when there is none.
    mutating func removeLease(_ ackID: String) {
        if let lease = leases.removeValue(forKey: ackID) {
            outstandingBytes -= lease.bytes
        }
    }

    /// The next queued message a handler may start on, or nil.
    mutating func takeNext(maxBytes: Int) -> SubscriberCore.Work? {
        defer { compactQueue() }
        while queueHead < queue.count {
            guard let message = queue[queueHead], let lease = leases[message.ackID], !lease.dispatched else {
                queue[queueHead] = nil
                queueHead += 1
                continue
            }
            if runningCount > 0 && runningBytes + lease.bytes > maxBytes { return nil }
            queue[queueHead] = nil
            queueHead += 1
            leases[message.ackID]?.dispatched = true
            runningCount += 1
            runningBytes += lease.bytes
            stats.handlersStarted += 1
            return SubscriberCore.Work(message: message, bytes: lease.bytes)
        }
        return nil
    }

    mutating func compactQueue() {
        if queueHead == queue.count {
            if queueHead > 0 {
                queue.removeAll(keepingCapacity: true)
                queueHead = 0
            }
        } else if queueHead >= 1024 && queueHead * 2 >= queue.count {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
    }

    /// How many messages a pull may ask for now (reserving them), or nil when too few.
    mutating func reservation(_ settings: Subscriber.Settings) -> Int? {
        guard outstandingBytes < settings.maxOutstandingBytes else { return nil }
        let free = settings.maxOutstandingMessages - leases.count - reserved
        // Wait for a worthwhile amount rather than pulling one message at a time.
        let threshold = max(1, min(settings.maxMessagesPerPull, settings.maxOutstandingMessages / (2 * settings.numPullers)))
        guard free >= threshold else { return nil }
        let share = (free + settings.numPullers - 1) / settings.numPullers
        let count = min(settings.maxMessagesPerPull, free, max(threshold, share))
        reserved += count
        return count
    }

    /// Hands queued messages to idle handler tasks and capacity to waiting pullers.
    mutating func pump(_ settings: Subscriber.Settings) -> SubscriberCore.Wakeups {
        var wakeups = SubscriberCore.Wakeups()
        guard !stopping else { return wakeups }
        while !idleWorkers.isEmpty, let work = takeNext(maxBytes: settings.maxOutstandingBytes) {
            wakeups.workers.append((idleWorkers.removeLast(), work))
        }
        while !waitingPullers.isEmpty, let count = reservation(settings) {
            wakeups.pullers.append((waitingPullers.removeLast(), count))
        }
        return wakeups
    }
}
