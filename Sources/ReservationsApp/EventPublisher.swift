import PubSubREST

/// What the HTTP handler needs from a publisher: publish one message and get its ID once
/// Pub/Sub acknowledged it; flush and stop at shutdown. `Publisher` (batching, flow control)
/// is the implementation; tests may pass another.
public protocol EventPublisher: Sendable {
    func publish(_ message: PubSubMessage) async throws -> String
    /// Publishes what is pending and stops accepting messages.
    func shutdown() async
}
