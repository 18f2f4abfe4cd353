import DaemonSupport
import Logging
import PubSubREST

/// `Subscriber` as the application's ``MessageSource``: the handler's `.ack` returns (the
/// subscriber acks), `.nack` nacks explicitly; a thrown error nacks.
struct SubscriberSource: MessageSource {
    let subscriber: Subscriber

    func run(handler: @escaping @Sendable (Delivery) async throws -> Disposition) async throws {
        try await subscriber.run { message in
            let delivery = Delivery(data: message.data, messageID: message.messageID, deliveryAttempt: message.deliveryAttempt)
            if try await handler(delivery) == .nack {
                message.nack()
            }
        }
    }

    func shutdown() async {
        await subscriber.shutdown()
    }
}

func makeDefaultSource(client: PubSubClient, config: ReportingConfig, logger: Logger) -> any MessageSource {
    var settings = Subscriber.Settings.default
    settings.maxOutstandingMessages = config.maxOutstandingMessages
    settings.maxMessagesPerPull = min(settings.maxMessagesPerPull, config.maxOutstandingMessages)
    settings.shutdownTimeout = config.shutdownTimeout
    return SubscriberSource(subscriber: Subscriber(client: client, subscription: config.subscriptionID, settings: settings, logger: logger))
}
