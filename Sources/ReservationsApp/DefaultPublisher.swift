import DaemonSupport
import Logging
import PubSubREST

/// The one batching `Publisher` every request shares.
extension Publisher: EventPublisher {}

/// A batching `Publisher` on `config.topicID` whose whole-batch timeout (retries included) is
/// `config.publishTimeout`, so a message Pub/Sub does not acknowledge in that time fails.
func makeDefaultPublisher(client: PubSubClient, config: ReservationsConfig, logger: Logger) throws -> any EventPublisher {
    var settings = Publisher.Settings.default
    settings.timeout = config.publishTimeout
    settings.delayThreshold = config.publishDelayThreshold
    return try Publisher(client: client, topic: config.topicID, settings: settings, logger: logger)
}
