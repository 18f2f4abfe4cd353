import Foundation

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

/// Where deliveries come from: `Subscriber` in production (``SubscriberSource``). `run` calls
/// `handler` per message and acks it when the handler returns `.ack`, nacks it on `.nack` or a
/// thrown error; it returns after ``shutdown()`` once in-flight handlers finished and acks were
/// flushed (what was pulled but not handled is nacked).
public protocol MessageSource: Sendable {
    func run(handler: @escaping @Sendable (Delivery) async throws -> Disposition) async throws
    func shutdown() async
}
