import DaemonSupport
import Foundation
import Logging
import MiniHTTP
import PubSubREST
import ServiceLifecycle
import Synchronization

/// ReportingService: receives `reservation_created` events from a subscription, logs
/// "Received event" for each, acks after the handler succeeded. Optionally serves `/healthz`,
/// `/readyz` and `/metrics`.
public final class ReportingApplication: Sendable {
    public let config: ReportingConfig
    public let client: PubSubClient
    public let metrics: DaemonMetrics
    public let window: DuplicateWindow
    let logger: Logger
    let source: any MessageSource
    let handler: @Sendable (HTTPServerRequest) async -> HTTPServerResponse

    init(config: ReportingConfig, client: PubSubClient, source: any MessageSource, metrics: DaemonMetrics, logger: Logger) {
        self.config = config
        self.client = client
        self.source = source
        self.metrics = metrics
        self.logger = logger
        self.window = DuplicateWindow(capacity: config.duplicateWindow)
        var router = Router()
        let ready = ReadyFlag()
        self.readyFlag = ready
        DaemonRoutes.install(on: &router, metrics: metrics) {
            ready.value
                ? Readiness(ready: true, detail: "subscribed to \(config.subscriptionID)")
                : Readiness(ready: false, detail: "not subscribed yet to \(config.subscriptionID)")
        }
        self.handler = DaemonRoutes.instrumented(router, knownPaths: ["/healthz", "/readyz", "/metrics"], metrics: metrics)
    }

    let readyFlag: ReadyFlag

    /// Answers one HTTP request (`/healthz`, `/readyz`, `/metrics`) with no socket.
    public func handle(_ request: HTTPServerRequest) async -> HTTPServerResponse {
        await handler(request)
    }

    /// Checks the subscription (creating it first when auto-creation is on) and returns whether
    /// it has a dead-letter policy.
    /// - Throws: ``StartupError`` when it does not exist, or Pub/Sub refuses the check.
    public func prepare() async throws -> Bool {
        if config.pubSub.autoCreate {
            _ = try await client.ensureTopic(config.topicID)
            _ = try await client.ensureSubscription(
                config.subscriptionID, Subscription(topic: config.topicID, ackDeadlineSeconds: 60)
            )
        }
        let subscription: Subscription
        do {
            subscription = try await client.getSubscription(config.subscriptionID)
        } catch let error as PubSubError where error.code == .notFound {
            throw StartupError(
                "SUBSCRIPTION_ID: subscription '\(config.subscriptionID)' does not exist in project '\(client.projectID)': create it (pubsubctl subscriptions create \(config.subscriptionID) --topic \(config.topicID)) or set PUBSUB_AUTO_CREATE=true"
            )
        } catch let error as PubSubError where error.kind == .api && !error.isRetryable {
            throw StartupError("SUBSCRIPTION_ID: cannot use subscription '\(config.subscriptionID)': \(error)")
        }
        return subscription.deadLetterPolicy != nil
    }

    /// Receives until SIGTERM/SIGINT, then stops pulling, lets in-flight handlers finish
    /// (bounded), flushes acks and nacks the rest, and returns.
    public func run() async throws {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: SubscriberService(app: self))
        ]
        if let port = config.port {
            let serverService = try HTTPServerService.listening(host: config.host, port: port, logger: logger, handler: handler)
            // Listed first, so it shuts down last: /healthz answers while the subscriber drains.
            services.insert(.init(service: serverService), at: 0)
        }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
        logger.info("Stopped")
    }

    /// Runs the subscriber until graceful shutdown.
    func receive() async throws {
        logger.info("Checking subscription", metadata: ["subscription": "\(config.subscriptionID)"])
        let hasDeadLetter: Bool
        do {
            hasDeadLetter = try await cancelWhenGracefulShutdown { try await self.prepare() }
        } catch {
            // SIGTERM while Pub/Sub was still unreachable at start: a clean stop, not a failure.
            if Task.isShuttingDownGracefully { return }
            throw error
        }
        readyFlag.value = true
        let subscriptionName = (try? client.subscriptionName(config.subscriptionID)) ?? config.subscriptionID
        logger.info("Subscribing to topic", metadata: [
            "subscription": "\(subscriptionName)",
            "topic": "\(config.topicID)",
            "dead_letter_policy": "\(hasDeadLetter)",
        ])
        let eventHandler = EventHandler(hasDeadLetterPolicy: hasDeadLetter, window: window, metrics: metrics, logger: logger)
        let source = self.source
        try await withGracefulShutdownHandler {
            try await source.run { delivery in
                eventHandler.handle(data: delivery.data, messageID: delivery.messageID, deliveryAttempt: delivery.deliveryAttempt)
            }
        } onGracefulShutdown: {
            Task { await source.shutdown() }
        }
        readyFlag.value = false
    }
}

/// A Bool shared with the readiness closure.
final class ReadyFlag: Sendable {
    private let storage = Atomic<Bool>(false)
    var value: Bool {
        get { storage.load(ordering: .acquiring) }
        set { storage.store(newValue, ordering: .releasing) }
    }
}

struct SubscriberService: Service {
    let app: ReportingApplication
    func run() async throws {
        try await app.receive()
    }
}

/// Creates the client and builds the application.
///
/// - Parameter source: for tests; by default a `Subscriber` on `config.subscriptionID`.
public func buildApplication(
    _ config: ReportingConfig,
    logger: Logger,
    metrics: DaemonMetrics = DaemonMetrics(),
    source: (any MessageSource)? = nil
) async throws -> ReportingApplication {
    let client = try await config.pubSub.makeClient()
    logger.info("Starting reporting service", metadata: [
        "project": "\(client.projectID)",
        "subscription": "\(config.subscriptionID)",
        "credentials": "\(client.credentialDescription)",
        "auto_create": "\(config.pubSub.autoCreate)",
    ])
    let source = source ?? makeDefaultSource(client: client, config: config, logger: logger)
    return ReportingApplication(config: config, client: client, source: source, metrics: metrics, logger: logger)
}
