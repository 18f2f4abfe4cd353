import DaemonSupport
import Logging
import PubSubREST

/// Stand-in until `Publisher` lands on main: publishes each message with one client call.
/// TODO: replace with the batching `Publisher` (settings.timeout = config.publishTimeout).
struct ClientPublisher: EventPublisher {
    let client: PubSubClient
    let topicID: String

    func publish(_ message: PubSubMessage) async throws -> String {
        try await client.publish(topic: topicID, messages: [message]).first ?? ""
    }

    func shutdown() async {}
}

func makeDefaultPublisher(client: PubSubClient, config: ReservationsConfig, logger: Logger) throws -> any EventPublisher {
    ClientPublisher(client: client, topicID: config.topicID)
}
