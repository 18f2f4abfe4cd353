import DaemonSupport
import Foundation
import Logging

/// ReservationsService's settings. ``fromEnvironment(_:)`` documents each variable and default.
public struct ReservationsConfig: Sendable {
    /// `PROJECT_ID`, `PUBSUB_EMULATOR_HOST`, `GOOGLE_APPLICATION_CREDENTIALS`, `PUBSUB_AUTO_CREATE`.
    public var pubSub: PubSubSettings
    /// `TOPIC_ID`: the topic events are published to. Default `reservation-created`.
    public var topicID: String
    /// Address to bind. Default `0.0.0.0` (not an environment variable; tests use 127.0.0.1).
    public var host: String
    /// `PORT`: the HTTP port. Default 8080; 0 (tests only) picks a free port.
    public var port: Int
    /// `PUBLISH_TIMEOUT`: seconds a request waits for Pub/Sub to acknowledge its event before
    /// answering 503 with `Retry-After`. Default 10 s.
    public var publishTimeout: Duration
    /// `PUBLISH_DELAY_THRESHOLD`: seconds a batch of events may wait for more events before it
    /// is sent (the publisher's `delayThreshold`). Every request waits at most this long on
    /// top of Pub/Sub's answer; under load, batches fill while earlier ones are in flight.
    /// Default 0.01 s (10 ms, the library's and Google's default). Measured with wrk against the
    /// emulator, 1 ms gave smaller batches and fewer requests per second, not lower latency.
    public var publishDelayThreshold: Duration
    /// `LOG_LEVEL` (default info) and `LOG_FORMAT` (json or console, default json).
    public var logLevel: Logger.Level
    public var logFormat: LogFormat

    public static let defaultTopicID = "reservation-created"
    public static let defaultPort = 8080
    public static let defaultPublishTimeout: Duration = .seconds(10)
    public static let defaultPublishDelayThreshold: Duration = .milliseconds(10)

    public init(
        pubSub: PubSubSettings,
        topicID: String = defaultTopicID,
        host: String = "0.0.0.0",
        port: Int = defaultPort,
        publishTimeout: Duration = defaultPublishTimeout,
        publishDelayThreshold: Duration = defaultPublishDelayThreshold,
        logLevel: Logger.Level = .info,
        logFormat: LogFormat = .json
    ) {
        self.pubSub = pubSub
        self.topicID = topicID
        self.host = host
        self.port = port
        self.publishTimeout = publishTimeout
        self.publishDelayThreshold = publishDelayThreshold
        self.logLevel = logLevel
        self.logFormat = logFormat
    }

    /// Reads the settings; the first missing or wrong variable is a ``ConfigError``.
    public static func fromEnvironment(_ values: [String: String]) throws(ConfigError) -> ReservationsConfig {
        let env = Environment(values)
        // Logging first, so a bad LOG_FORMAT is reported even when other settings are wrong too.
        let level = try env.logLevel()
        let format = try env.logFormat()
        let port = try env.port("PORT") ?? defaultPort
        let pubSub = try PubSubSettings.from(env)
        return ReservationsConfig(
            pubSub: pubSub,
            topicID: try env.resourceID("TOPIC_ID", default: defaultTopicID),
            port: port,
            publishTimeout: try env.seconds("PUBLISH_TIMEOUT", default: defaultPublishTimeout),
            publishDelayThreshold: try env.seconds("PUBLISH_DELAY_THRESHOLD", default: defaultPublishDelayThreshold),
            logLevel: level,
            logFormat: format
        )
    }
}
