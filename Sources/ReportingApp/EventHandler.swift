import DaemonSupport
import Foundation
import Logging

/// What to do with a delivered message.
public enum Disposition: Sendable, Equatable {
    case ack
    /// Give it back to Pub/Sub (another delivery, or the dead-letter topic after max attempts).
    case nack
}

/// Handles one delivery: decodes the event, logs "Received event", counts it. Pure apart
/// from logging and metrics, so tests call it without a subscription.
public struct EventHandler: Sendable {
    /// Whether the subscription has a dead-letter policy (checked once at start): invalid
    /// messages are then nacked so Pub/Sub moves them to the dead-letter topic after the
    /// maximum attempts; without one they are acked, since redelivering cannot fix them.
    public let hasDeadLetterPolicy: Bool
    let window: DuplicateWindow
    let metrics: DaemonMetrics
    let logger: Logger

    public init(hasDeadLetterPolicy: Bool, window: DuplicateWindow, metrics: DaemonMetrics, logger: Logger) {
        self.hasDeadLetterPolicy = hasDeadLetterPolicy
        self.window = window
        self.metrics = metrics
        self.logger = logger
    }

    public func handle(data: Data, messageID: String, deliveryAttempt: Int?) -> Disposition {
        metrics.counter("reporting_messages_received_total").increment()
        let duplicate = window.observe(messageID)
        if duplicate {
            metrics.counter("reporting_duplicates_total").increment()
        }
        let event: ReservationCreatedEvent
        do {
            event = try ReservationCreatedEvent.decode(data)
        } catch {
            metrics.counter("reporting_invalid_messages_total").increment()
            let disposition: Disposition = hasDeadLetterPolicy ? .nack : .ack
            logger.error("Invalid event", metadata: [
                "message_id": "\(messageID)",
                "reason": "\(error)",
                "delivery_attempt": "\(deliveryAttempt.map(String.init) ?? "")",
                "bytes": "\(data.count)",
                "action": "\(disposition == .ack ? "ack (no dead-letter policy)" : "nack (dead-letter policy)")",
            ])
            return disposition
        }
        var metadata: Logger.Metadata = [
            "message_id": "\(messageID)",
            "reservation_id": "\(event.reservationID)",
            "event_time": "\(event.time)",
            "type": "\(ReservationCreatedEvent.type)",
            "data": "\(String(decoding: event.encoded(), as: UTF8.self))",
        ]
        if let deliveryAttempt { metadata["delivery_attempt"] = "\(deliveryAttempt)" }
        if duplicate { metadata["duplicate"] = "true" }
        logger.info("Received event", metadata: metadata)
        metrics.counter("reporting_events_processed_total").increment()
        return .ack
    }
}
