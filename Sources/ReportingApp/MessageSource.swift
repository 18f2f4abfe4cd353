import Foundation
import Logging
import PubSubREST
import Synchronization

/// One delivery, as the handler sees it.
public struct Delivery: Sendable {
    public var data: Data
    public var messageID: String
    public var deliveryAttempt: Int?

    public init(data: Data, messageID: String, deliveryAttempt: Int?) {
        self.data = data
        self.messageID = messageID
        self.deliveryAttempt = deliveryAttempt
    }
}

/// Where deliveries come from: `Subscriber` in production. `run` calls `handler` per message
/// and acks it when the handler returns `.ack`, nacks it on `.nack` or a thrown error; it
/// returns after ``shutdown()`` once in-flight handlers finished and acks were flushed.
public protocol MessageSource: Sendable {
    func run(handler: @escaping @Sendable (Delivery) async throws -> Disposition) async throws
    func shutdown() async
}

/// Stand-in until `Subscriber` lands on main: a single pull loop with capped backoff, acks in
/// one request per batch, nack (ack deadline 0) for what was not handled at shutdown.
/// TODO: replace with `Subscriber` (lease extension, concurrent handlers, flow control).
final class PullLoopSource: MessageSource {
    let client: PubSubClient
    let subscriptionID: String
    let logger: Logger
    private let stopping = Atomic<Bool>(false)
    private let runTask = Mutex<Task<Void, any Error>?>(nil)
    private let finished = Mutex<[CheckedContinuation<Void, Never>]?>([])

    init(client: PubSubClient, subscriptionID: String, logger: Logger) {
        self.client = client
        self.subscriptionID = subscriptionID
        self.logger = logger
    }

    func run(handler: @escaping @Sendable (Delivery) async throws -> Disposition) async throws {
        let task = Task { try await self.loop(handler: handler) }
        runTask.withLock { $0 = task }
        defer {
            let waiters = finished.withLock { waiters -> [CheckedContinuation<Void, Never>] in
                let all = waiters ?? []
                waiters = nil
                return all
            }
            for waiter in waiters { waiter.resume() }
        }
        try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            self.stopping.store(true, ordering: .releasing)
            task.cancel()
        }
    }

    func shutdown() async {
        stopping.store(true, ordering: .releasing)
        runTask.withLock { $0?.cancel() }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = finished.withLock { waiters -> Bool in
                if waiters == nil { return true }
                if runTask.withLock({ $0 == nil }) { return true }
                waiters!.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    private func loop(handler: @escaping @Sendable (Delivery) async throws -> Disposition) async throws {
        var failures = 0
        let fast = RetrySettings(maxAttempts: 1)
        while !stopping.load(ordering: .acquiring) {
            let messages: [ReceivedMessage]
            do {
                messages = try await client.pull(subscription: subscriptionID, maxMessages: 50, retry: fast)
                if failures > 0 { logger.info("Pulling again", metadata: ["after_failures": "\(failures)"]) }
                failures = 0
            } catch {
                if stopping.load(ordering: .acquiring) || Task.isCancelled { break }
                if let error = error as? PubSubError, error.kind == .api, !error.isRetryable {
                    throw error
                }
                failures += 1
                let delay = min(Double(1 << min(failures, 5)) * 0.25, 5.0)
                logger.warning("Pull failed; retrying", metadata: ["error": "\(error)", "retry_in_s": "\(delay)"])
                try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))
                continue
            }
            var acks: [String] = []
            var nacks: [String] = []
            for message in messages {
                if stopping.load(ordering: .acquiring) {
                    nacks.append(message.ackID)
                    continue
                }
                let delivery = Delivery(data: message.message.data, messageID: message.messageID, deliveryAttempt: message.deliveryAttempt)
                let disposition = (try? await handler(delivery)) ?? .nack
                if disposition == .ack { acks.append(message.ackID) } else { nacks.append(message.ackID) }
            }
            // Settle even when cancelled: these calls run in an unstructured child that ignores it.
            let client = client, subscriptionID = subscriptionID, logger = logger
            let settle = Task.detached {
                if !acks.isEmpty {
                    do { try await client.acknowledge(subscription: subscriptionID, ackIDs: acks) } catch {
                        logger.error("Ack failed", metadata: ["error": "\(error)", "count": "\(acks.count)"])
                    }
                }
                if !nacks.isEmpty {
                    try? await client.modifyAckDeadline(subscription: subscriptionID, ackIDs: nacks, seconds: 0)
                }
            }
            await settle.value
        }
    }
}
