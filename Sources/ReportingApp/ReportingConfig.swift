import DaemonSupport
import Foundation
import Logging

/// ReportingService's settings. ``fromEnvironment(_:)`` documents each variable and default.
public struct ReportingConfig: Sendable {
    /// `PROJECT_ID`, `PUBSUB_EMULATOR_HOST`, `GOOGLE_APPLICATION_CREDENTIALS`,
    /// `PUBSUB_AUTO_CREATE` (ensure the topic and the subscription at start).
    public var pubSub: PubSubSettings
    /// `SUBSCRIPTION_ID`: default `reservation-created-subscription`.
    public var subscriptionID: String
    /// `TOPIC_ID`: the subscription's topic when it is auto-created. Default `reservation-created`.
    public var topicID: String
    /// `PORT`: serve `/healthz`, `/readyz`, `/metrics` on it. Unset: no HTTP server.
    public var port: Int?
    /// Address to bind. Default `0.0.0.0`.
    public var host: String
    /// `SHUTDOWN_TIMEOUT`: seconds in-flight handlers get at shutdown before what is left is
    /// nacked. Default 10 s.
    public var shutdownTimeout: Duration
    /// `MAX_OUTSTANDING_MESSAGES`: messages one replica holds at once (pulled, not yet acked).
    /// Small enough that replicas share the load. Default 100.
    public var maxOutstandingMessages: Int
    /// Message IDs remembered to count redeliveries (`reporting_duplicates_total`). Default 10,000.
    public var duplicateWindow: Int
    public var logLevel: Logger.Level
    public var logFormat: LogFormat

    public static let defaultSubscriptionID = "reservation-created-subscription"
    public static let defaultTopicID = "reservation-created"

    public init(
        pubSub: PubSubSettings,
        subscriptionID: String = defaultSubscriptionID,
        topicID: String = defaultTopicID,
        port: Int? = nil,
        host: String = "0.0.0.0",
        shutdownTimeout: Duration = .seconds(10),
        duplicateWindow: Int = 10_000,
        maxOutstandingMessages: Int = 100,
        logLevel: Logger.Level = .info,
        logFormat: LogFormat = .json
    ) {
        self.pubSub = pubSub
        self.subscriptionID = subscriptionID
        self.topicID = topicID
        self.port = port
        self.host = host
        self.shutdownTimeout = shutdownTimeout
        self.duplicateWindow = duplicateWindow
        self.maxOutstandingMessages = maxOutstandingMessages
        self.logLevel = logLevel
        self.logFormat = logFormat
    }

    public static func fromEnvironment(_ values: [String: String]) throws(ConfigError) -> ReportingConfig {
        let env = Environment(values)
        let level = try env.logLevel()
        let format = try env.logFormat()
        let port = try env.port("PORT")
        let pubSub = try PubSubSettings.from(env)
        return ReportingConfig(
            pubSub: pubSub,
            subscriptionID: try env.resourceID("SUBSCRIPTION_ID", default: defaultSubscriptionID),
            topicID: try env.resourceID("TOPIC_ID", default: defaultTopicID),
            port: port,
            shutdownTimeout: try env.seconds("SHUTDOWN_TIMEOUT", default: .seconds(10)),
            maxOutstandingMessages: try env.count("MAX_OUTSTANDING_MESSAGES", default: 100, range: 1...10_000),
            logLevel: level,
            logFormat: format
        )
    }
}
