import DaemonSupport
import Foundation
import Logging
import MiniHTTP
import PubSubREST
import ServiceLifecycle

/// ReservationsService: `POST /reservations` publishes a `reservation_created` event through
/// one shared batching publisher and answers once Pub/Sub acknowledged it.
///
/// Build it with ``buildApplication(_:logger:metrics:publisher:)``; tests call ``handle(_:)``
/// with no socket, the executable calls ``run()``.
public final class ReservationsApplication: Sendable {
    public let config: ReservationsConfig
    public let client: PubSubClient
    public let publisher: any EventPublisher
    public let metrics: DaemonMetrics
    let logger: Logger
    let readiness: TopicReadiness
    let handler: @Sendable (HTTPServerRequest) async -> HTTPServerResponse

    /// Seconds a client should wait before retrying after a 503.
    static let retryAfterSeconds = 5

    init(config: ReservationsConfig, client: PubSubClient, publisher: any EventPublisher, metrics: DaemonMetrics, logger: Logger) {
        self.config = config
        self.client = client
        self.publisher = publisher
        self.metrics = metrics
        self.logger = logger
        // Ready means the topic answers within the time a request would wait for its publish.
        let readiness = TopicReadiness(client: client, topicID: config.topicID, probeTimeout: config.publishTimeout)
        self.readiness = readiness

        var router = Router()
        let routes = Routes(config: config, publisher: publisher, metrics: metrics, logger: logger)
        router.on("POST", "/reservations") { request in await routes.createReservation(request) }
        DaemonRoutes.install(on: &router, metrics: metrics) { await readiness.check() }
        self.handler = DaemonRoutes.instrumented(
            router, knownPaths: ["/reservations", "/healthz", "/readyz", "/metrics"], metrics: metrics
        )
    }

    /// Answers one request, as the server would (routing, 404/405, request metrics).
    public func handle(_ request: HTTPServerRequest) async -> HTTPServerResponse {
        await handler(request)
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully: the server stops accepting
    /// and finishes in-flight requests, then the publisher flushes. Returns when all is done.
    public func run() async throws {
        let serverService = try HTTPServerService.listening(host: config.host, port: config.port, logger: logger, handler: handler)
        // ServiceGroup shuts services down in reverse order: the server first, the publisher last.
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: PublisherService(publisher: publisher, logger: logger)),
                    .init(service: serverService),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
        logger.info("Stopped")
    }
}

/// Creates the client, ensures the topic when auto-creation is on, and builds the application.
///
/// - Parameter publisher: for tests; by default a batching `Publisher` on `config.topicID`
///   whose per-message timeout is `config.publishTimeout`.
/// - Throws: ``StartupError`` for credential problems or a failed topic creation.
public func buildApplication(
    _ config: ReservationsConfig,
    logger: Logger,
    metrics: DaemonMetrics = DaemonMetrics(),
    publisher: (any EventPublisher)? = nil
) async throws -> ReservationsApplication {
    let client = try await config.pubSub.makeClient()
    logger.info(
        "Starting reservations service",
        metadata: [
            "project": "\(client.projectID)",
            "topic": "\(config.topicID)",
            "credentials": "\(client.credentialDescription)",
            "publish_timeout": "\(config.publishTimeout)",
            "auto_create": "\(config.pubSub.autoCreate)",
        ]
    )
    if config.pubSub.autoCreate {
        do {
            _ = try await withTimeout(config.publishTimeout) { try await client.ensureTopic(config.topicID) }
            logger.info("Topic ready", metadata: ["topic": "\(config.topicID)"])
        } catch {
            // Not fatal: Pub/Sub may come up later; /readyz says 503 until the topic answers.
            logger.error("Could not ensure the topic", metadata: ["topic": "\(config.topicID)", "error": "\(error)"])
        }
    }
    let publisher = try publisher ?? makeDefaultPublisher(client: client, config: config, logger: logger)
    return ReservationsApplication(config: config, client: client, publisher: publisher, metrics: metrics, logger: logger)
}

/// Waits for graceful shutdown, then flushes and stops the publisher.
struct PublisherService: Service {
    let publisher: any EventPublisher
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.info("Flushing the publisher")
        await publisher.shutdown()
    }
}

/// The HTTP handlers, with what they need and nothing else.
struct Routes: Sendable {
    let config: ReservationsConfig
    let publisher: any EventPublisher
    let metrics: DaemonMetrics
    let logger: Logger

    struct Created: Encodable {
        var reservation_id: String
        var message_id: String
    }

    func createReservation(_ request: HTTPServerRequest) async -> HTTPServerResponse {
        var extra: [String: JSONValue] = [:]
        if request.body.contains(where: { !($0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D) }) {
            guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(request.body)) else {
                return .error(400, "the request body is not valid JSON")
            }
            guard let object = value.objectValue else {
                return .error(400, "the request body must be a JSON object")
            }
            extra = object
        }
        let reservationID = UUID().uuidString.lowercased()
        let event = ReservationCreatedEvent(reservationID: reservationID, extra: extra)
        let payload = event.encoded()
        logger.info("Publishing event", metadata: [
            "data": "\(String(decoding: payload, as: UTF8.self))",
            "reservation_id": "\(reservationID)",
        ])
        let message = PubSubMessage(data: payload, attributes: ["type": ReservationCreatedEvent.type])
        let started = ContinuousClock.now
        do {
            let publisher = publisher
            let messageID = try await withTimeout(config.publishTimeout) { try await publisher.publish(message) }
            metrics.timer("publish_duration_seconds").recordNanoseconds(nanoseconds(ContinuousClock.now - started))
            logger.info("Message published successfully", metadata: [
                "message_id": "\(messageID)",
                "reservation_id": "\(reservationID)",
            ])
            return .json(201, Created(reservation_id: reservationID, message_id: messageID))
        } catch {
            metrics.timer("publish_duration_seconds").recordNanoseconds(nanoseconds(ContinuousClock.now - started))
            return publishFailed(error, reservationID: reservationID)
        }
    }

    private func publishFailed(_ error: any Error, reservationID: String) -> HTTPServerResponse {
        let (status, reason) = Self.classify(error)
        metrics.counter("publish_errors_total", [("reason", reason)]).increment()
        logger.error("Publishing failed", metadata: [
            "reservation_id": "\(reservationID)",
            "reason": "\(reason)",
            "status": "\(status)",
            "error": "\(error)",
        ])
        switch status {
        case 503:
            var response = HTTPServerResponse.error(503, "Pub/Sub is unavailable: the reservation was not confirmed within \(config.publishTimeout); retry later")
            response.headers.replaceOrAdd(name: "Retry-After", value: String(ReservationsApplication.retryAfterSeconds))
            return response
        case 502:
            return .error(502, "Pub/Sub refused the event: \(Self.shortMessage(error))")
        default:
            return .error(500, "publishing the event failed")
        }
    }

    /// 503 when Pub/Sub is (temporarily) unavailable: timed out, unreachable, retryable status,
    /// publisher flow control or shutdown. 502 when Pub/Sub answered with a permanent error
    /// (NOT_FOUND, PERMISSION_DENIED...). 500 for anything else.
    static func classify(_ error: any Error) -> (status: Int, reason: String) {
        if error is TimeoutError { return (503, "timeout") }
        if error is CancellationError { return (503, "cancelled") }
        if let error = error as? PubSubError {
            switch error.kind {
            case .timeout: return (503, "timeout")
            case .transport: return (503, "unreachable")
            case .flowControl: return (503, "flow_control")
            case .shutdown, .cancelled: return (503, "shutdown")
            case .api:
                return error.isRetryable ? (503, "unavailable") : (502, "rejected")
            case .authentication, .credentials: return (502, "authentication")
            default: return (500, "internal")
            }
        }
        return (500, "internal")
    }

    static func shortMessage(_ error: any Error) -> String {
        if let error = error as? PubSubError {
            return [error.code?.rawValue, error.message].compactMap { $0 }.joined(separator: ": ")
        }
        return "\(error)"
    }

    private func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
