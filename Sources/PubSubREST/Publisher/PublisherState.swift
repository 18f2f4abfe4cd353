/// How one accepted message's outcome is reported: called once, outside the state lock.
typealias PublishCompletion = @Sendable (Result<String, PubSubError>) -> Void

/// A first-in, first-out queue with amortized O(1) `popFirst`.
struct FIFO<Element> {
    private var storage: [Element] = []
    private var head = 0

    var isEmpty: Bool { head == storage.count }
    var count: Int { storage.count - head }
    var first: Element? { isEmpty ? nil : storage[head] }

    mutating func append(_ element: Element) { storage.append(element) }

    mutating func popFirst() -> Element? {
        guard head < storage.count else { return nil }
        let element = storage[head]
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return element
    }

    mutating func removeAll() -> [Element] {
        let elements = Array(storage[head...])
        storage.removeAll()
        head = 0
        return elements
    }
}

/// A message accepted by the publisher, with what is needed to batch and resolve it.
struct QueuedMessage {
    var message: PubSubMessage
    var completion: PublishCompletion
    /// `message.byteSize`: counted against `byteThreshold` and `maxOutstandingBytes`.
    var size: Int
    /// An upper estimate of the message's share of the JSON request body.
    var requestSize: Int
}

/// Messages sent in one publish request.
struct Batch: Sendable {
    let id: UInt64
    /// The ordering key, or nil for messages without one.
    let key: String?
    /// The flush generation: `flush()` waits for every batch of its generation or older.
    let generation: UInt64
    var messages: [PubSubMessage] = []
    var completions: [PublishCompletion] = []
    /// Sum of `byteSize`.
    var bytes = 0
    /// Estimated request body size.
    var requestBytes = 0

    var count: Int { messages.count }
}

/// The limits the state machine works with, derived once from `Publisher.Settings`.
struct PublisherLimits: Sendable {
    var countThreshold: Int
    var byteThreshold: Int
    /// The estimated request size a batch never exceeds (unless one message alone does).
    var requestCap: Int
    var delayThreshold: Duration
    var maxConcurrentBatches: Int
    var maxOutstandingMessages: Int
    var maxOutstandingBytes: Int
    var behavior: Publisher.LimitExceededBehavior

    init(_ settings: Publisher.Settings) {
        countThreshold = min(settings.countThreshold, PubSubClient.Limits.maxMessagesPerPublish)
        // Headroom under 10 MB for the JSON framing of the request.
        requestCap = PubSubClient.Limits.maxPublishRequestBytes - 10_000
        byteThreshold = min(settings.byteThreshold, requestCap)
        delayThreshold = settings.delayThreshold
        maxConcurrentBatches = settings.maxConcurrentBatches
        maxOutstandingMessages = settings.maxOutstandingMessages
        maxOutstandingBytes = settings.maxOutstandingBytes
        behavior = settings.limitExceededBehavior
    }

    /// An upper estimate of one message's bytes in the JSON body: base64 data, attributes with
    /// quotes and separators, ordering key, field names.
    static func requestSize(of message: PubSubMessage) -> Int {
        var size = (message.data.count + 2) / 3 * 4 + 48
        for (key, value) in message.attributes { size += key.utf8.count + value.utf8.count + 6 }
        if let key = message.orderingKey { size += key.utf8.count + 16 }
        if !message.attributes.isEmpty { size += 16 }
        return size
    }
}

/// Work decided under the lock and done after releasing it.
struct PublisherEffects {
    var launch: [Batch] = []
    var outcomes: [(PublishCompletion, Result<String, PubSubError>)] = []
    var resume: [CheckedContinuation<Void, Never>] = []
    var startTimer = false
    var paused: [(key: String, error: PubSubError)] = []
}

/// The per-ordering-key queue.
struct KeyState {
    /// The batch being filled.
    var current: Batch?
    /// Full batches waiting for the batch in flight.
    var closed = FIFO<Batch>()
    /// A batch of this key is in flight (or waiting for a concurrency slot).
    var dispatched = false
    /// Set after a failed batch; new messages fail until `resumePublish(orderingKey:)`.
    var paused: PubSubError?

    var isIdle: Bool { current == nil && closed.isEmpty && !dispatched && paused == nil }
}

/// The publisher's shared mutable state, always used under its `Mutex`.
struct PublisherState {
    let limits: PublisherLimits

    var unordered: Batch?
    var keys: [String: KeyState] = [:]
    /// Batches ready to send, waiting for a concurrency slot.
    var ready = FIFO<Batch>()
    var inFlight = 0

    var outstandingMessages = 0
    var outstandingBytes = 0
    /// Callers suspended by `.block` flow control, first come, first served.
    var blocked = FIFO<QueuedMessage>()

    /// Batch deadlines, in creation order (so in deadline order, the delay being constant).
    var deadlines = FIFO<(deadline: ContinuousClock.Instant, id: UInt64, key: String?)>()
    var timerTask: Task<Void, Never>?

    var nextBatchID: UInt64 = 0
    var generation: UInt64 = 0
    /// Unresolved accepted messages per flush generation.
    var unresolved: [UInt64: Int] = [:]
    var flushWaiters: [(generation: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
    var idleWaiters: [CheckedContinuation<Void, Never>] = []
    var isShutdown = false

    init(limits: PublisherLimits) {
        self.limits = limits
    }

    var isIdle: Bool { outstandingMessages == 0 && blocked.isEmpty }

    // MARK: - Accepting

    /// Accepts a valid message, or throws why not. The caller checked it with
    /// `PubSubClient.validate` and the ordering setting.
    mutating func submit(_ queued: QueuedMessage, effects: inout PublisherEffects) throws(PubSubError) {
        if isShutdown { throw Publisher.shutdownError }
        if let key = queued.message.orderingKey, let error = keys[key]?.paused {
            throw Publisher.pausedError(key: key, cause: error)
        }
        switch limits.behavior {
        case .ignore:
            break
        case .failFast:
            if !hasRoom(for: queued) {
                throw flowControlError(for: queued)
            }
        case .block:
            if queued.size > limits.maxOutstandingBytes {
                throw flowControlError(for: queued)
            }
            if !blocked.isEmpty || !hasRoom(for: queued) {
                blocked.append(queued)
                return
            }
        }
        accept(queued, effects: &effects)
        pump(effects: &effects)
    }

    private func hasRoom(for queued: QueuedMessage) -> Bool {
        outstandingMessages + 1 <= limits.maxOutstandingMessages
            && outstandingBytes + queued.size <= limits.maxOutstandingBytes
    }

    private func flowControlError(for queued: QueuedMessage) -> PubSubError {
        PubSubError(
            kind: .flowControl,
            message: "publisher flow control limits reached: \(outstandingMessages) messages and \(outstandingBytes) bytes outstanding "
                + "(maxOutstandingMessages \(limits.maxOutstandingMessages), maxOutstandingBytes \(limits.maxOutstandingBytes)), "
                + "this message has \(queued.size) bytes; wait for earlier publishes or raise the limits"
        )
    }

    /// Adds an admitted message to its batch, cutting batches at the thresholds.
    private mutating func accept(_ queued: QueuedMessage, effects: inout PublisherEffects) {
        outstandingMessages += 1
        outstandingBytes += queued.size
        if let key = queued.message.orderingKey {
            var state = keys.removeValue(forKey: key) ?? KeyState()
            if let current = state.current, !fits(queued, in: current) {
                state.closed.append(current)
                state.current = nil
            }
            var batch = state.current ?? newBatch(key: key, effects: &effects)
            append(queued, to: &batch)
            if isFull(batch) {
                state.closed.append(batch)
                state.current = nil
            } else {
                state.current = batch
            }
            keys[key] = state
            dispatchKey(key)
        } else {
            if let current = unordered, !fits(queued, in: current) {
                ready.append(current)
                unordered = nil
            }
            var batch = unordered ?? newBatch(key: nil, effects: &effects)
            unordered = nil
            append(queued, to: &batch)
            if isFull(batch) {
                ready.append(batch)
            } else {
                unordered = batch
            }
        }
    }

    private func fits(_ queued: QueuedMessage, in batch: Batch) -> Bool {
        batch.count + 1 <= limits.countThreshold && batch.requestBytes + queued.requestSize <= limits.requestCap
    }

    private func isFull(_ batch: Batch) -> Bool {
        batch.count >= limits.countThreshold || batch.bytes >= limits.byteThreshold
    }

    private mutating func append(_ queued: QueuedMessage, to batch: inout Batch) {
        batch.messages.append(queued.message)
        batch.completions.append(queued.completion)
        batch.bytes += queued.size
        batch.requestBytes += queued.requestSize
        unresolved[batch.generation, default: 0] += 1
    }

    private mutating func newBatch(key: String?, effects: inout PublisherEffects) -> Batch {
        nextBatchID += 1
        let batch = Batch(id: nextBatchID, key: key, generation: generation)
        if isShutdown || limits.delayThreshold == .zero {
            // Cut right after this round of admissions (see `cutAll`); no timer needed.
        } else {
            deadlines.append((ContinuousClock.now + limits.delayThreshold, batch.id, key))
            if timerTask == nil { effects.startTimer = true }
        }
        return batch
    }

    // MARK: - Sending

    /// Hands ready batches to senders while concurrency allows.
    mutating func pump(effects: inout PublisherEffects) {
        if isShutdown || limits.delayThreshold == .zero { cutAll() }
        while inFlight < limits.maxConcurrentBatches, let batch = ready.popFirst() {
            inFlight += 1
            effects.launch.append(batch)
        }
    }

    /// Moves the key's first closed batch to `ready` when none of its batches is in flight.
    private mutating func dispatchKey(_ key: String) {
        guard var state = keys[key], !state.dispatched, state.paused == nil, let next = state.closed.popFirst() else { return }
        state.dispatched = true
        keys[key] = state
        ready.append(next)
    }

    /// Cuts every batch being filled (flush, shutdown, zero delay).
    mutating func cutAll() {
        if let batch = unordered {
            ready.append(batch)
            unordered = nil
        }
        for key in Array(keys.keys) {
            if let current = keys[key]?.current {
                keys[key]?.closed.append(current)
                keys[key]?.current = nil
            }
            dispatchKey(key)
        }
    }

    /// Cuts the batches whose delay passed; returns the next deadline, nil when none is left
    /// (the timer then stops, and `timerTask` is cleared).
    mutating func expire(now: ContinuousClock.Instant, effects: inout PublisherEffects) -> ContinuousClock.Instant? {
        while let first = deadlines.first, first.deadline <= now {
            _ = deadlines.popFirst()
            if let key = first.key {
                if let current = keys[key]?.current, current.id == first.id {
                    keys[key]?.closed.append(current)
                    keys[key]?.current = nil
                    dispatchKey(key)
                }
            } else if let current = unordered, current.id == first.id {
                ready.append(current)
                unordered = nil
            }
        }
        pump(effects: &effects)
        if let next = deadlines.first { return next.deadline }
        timerTask = nil
        return nil
    }

    // MARK: - Resolving

    /// Records the outcome of a sent batch: resolves its messages, frees flow control room,
    /// pauses its ordering key on failure, and starts what can start now.
    mutating func complete(_ batch: Batch, result: Result<[String], PubSubError>, effects: inout PublisherEffects) {
        inFlight -= 1
        switch result {
        case .success(let ids) where ids.count == batch.count:
            for (index, completion) in batch.completions.enumerated() {
                effects.outcomes.append((completion, .success(ids[index])))
            }
        case .success(let ids):
            let error = PubSubError(kind: .invalidResponse, message: "publish returned \(ids.count) message IDs for \(batch.count) messages")
            for completion in batch.completions {
                effects.outcomes.append((completion, .failure(error)))
            }
        case .failure(let error):
            for completion in batch.completions {
                effects.outcomes.append((completion, .failure(error)))
            }
        }
        resolve(count: batch.count, bytes: batch.bytes, generation: batch.generation)

        if let key = batch.key {
            if var state = keys.removeValue(forKey: key) {
                state.dispatched = false
                if case .failure(let error) = result {
                    state.paused = error
                    effects.paused.append((key, error))
                    let pausedError = Publisher.pausedError(key: key, cause: error)
                    var dropped = state.closed.removeAll()
                    if let current = state.current { dropped.append(current) }
                    state.current = nil
                    for queued in dropped {
                        for completion in queued.completions {
                            effects.outcomes.append((completion, .failure(pausedError)))
                        }
                        resolve(count: queued.count, bytes: queued.bytes, generation: queued.generation)
                    }
                }
                if !state.isIdle { keys[key] = state }
                dispatchKey(key)
            }
        }
        admitBlocked(effects: &effects)
        pump(effects: &effects)
        wakeWaiters(effects: &effects)
    }

    private mutating func resolve(count: Int, bytes: Int, generation: UInt64) {
        outstandingMessages -= count
        outstandingBytes -= bytes
        let left = (unresolved[generation] ?? 0) - count
        unresolved[generation] = left > 0 ? left : nil
    }

    /// Admits blocked callers, in order, while there is room.
    private mutating func admitBlocked(effects: inout PublisherEffects) {
        while let first = blocked.first, hasRoom(for: first) {
            _ = blocked.popFirst()
            if let key = first.message.orderingKey, let error = keys[key]?.paused {
                effects.outcomes.append((first.completion, .failure(Publisher.pausedError(key: key, cause: error))))
                continue
            }
            accept(first, effects: &effects)
        }
    }

    /// Resumes `flush()` calls whose generation is resolved, and `shutdown()` calls once idle.
    mutating func wakeWaiters(effects: inout PublisherEffects) {
        if !flushWaiters.isEmpty {
            let oldest = unresolved.keys.min() ?? .max
            flushWaiters.removeAll { waiter in
                guard waiter.generation < oldest else { return false }
                effects.resume.append(waiter.continuation)
                return true
            }
        }
        if isIdle && !idleWaiters.isEmpty {
            effects.resume += idleWaiters
            idleWaiters.removeAll()
        }
    }

    /// Starts a flush: cuts every batch and returns the generation to wait for.
    mutating func beginFlush(effects: inout PublisherEffects) -> UInt64 {
        let flushed = generation
        generation += 1
        cutAll()
        pump(effects: &effects)
        return flushed
    }

    /// Lets an ordering key publish again after a failure.
    mutating func resume(key: String) {
        guard var state = keys.removeValue(forKey: key) else { return }
        state.paused = nil
        if !state.isIdle { keys[key] = state }
    }
}
