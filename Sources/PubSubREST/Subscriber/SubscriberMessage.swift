import Foundation
import Synchronization

extension Subscriber {
    /// A message handed to the handler of `Subscriber.run`.
    ///
    /// When the handler returns, the message is acked; when it throws, the message is nacked
    /// (redelivered soon). A handler may settle it itself with `ack()`, `ackWithResult()` or
    /// `nack()`: the first of these calls wins, later ones do nothing, and the automatic ack or
    /// nack is skipped.
    public struct Message: Sendable {
        /// The payload.
        public let data: Data
        /// Key-value attributes.
        public let attributes: [String: String]
        /// The ordering key, nil when the message has none.
        public let orderingKey: String?
        /// The server-assigned message ID.
        public let messageID: String
        /// When the server accepted the message (RFC 3339 text as sent by the server).
        public let publishTime: String
        /// How many times delivery was attempted (1 the first time); only set when the
        /// subscription has a dead-letter or retry policy.
        public let deliveryAttempt: Int?
        /// The ID this delivery is acknowledged with.
        public let ackID: String

        let settlement: Settlement

        init(_ received: ReceivedMessage, core: SubscriberCore) {
            data = received.message.data
            attributes = received.message.attributes
            orderingKey = received.message.orderingKey
            messageID = received.messageID
            publishTime = received.publishTime
            deliveryAttempt = received.deliveryAttempt
            ackID = received.ackID
            settlement = Settlement(core: core, ackID: received.ackID)
        }

        /// Acknowledges the message: it is sent in the next ack batch and not delivered again.
        /// Does nothing when the message was already acked or nacked.
        public func ack() {
            guard settlement.settle() else { return }
            settlement.core.ack(ackID)
        }

        /// Acknowledges the message and waits until the server answered the batch it went in.
        /// Throws a `PubSubError` of kind `.ackFailed` when the acknowledgement was rejected
        /// (with exactly-once delivery, the message may then be delivered again), `.shutdown`
        /// when the subscriber already stopped, and `.invalidArgument` when the message was
        /// already acked or nacked.
        public func ackWithResult() async throws {
            guard settlement.settle() else {
                throw PubSubError(kind: .invalidArgument, message: "message \(messageID) was already acked or nacked; ackWithResult must be the first settlement")
            }
            try await settlement.core.ackWithResult(ackID)
        }

        /// Nacks the message (modifyAckDeadline 0, batched): the server redelivers it soon.
        /// Does nothing when the message was already acked or nacked.
        public func nack() {
            guard settlement.settle() else { return }
            settlement.core.nack(ackID)
        }

        /// Whether `ack`, `ackWithResult` or `nack` was called (or the handler finished).
        public var isSettled: Bool { settlement.isSettled }
    }
}

/// First-call-wins settlement of one delivery.
final class Settlement: Sendable {
    let core: SubscriberCore
    let ackID: String
    private let settled = Atomic<Bool>(false)

    init(core: SubscriberCore, ackID: String) {
        self.core = core
        self.ackID = ackID
    }

    /// True for the first caller only.
    func settle() -> Bool {
        settled.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }

    var isSettled: Bool { settled.load(ordering: .acquiring) }
}
