import Foundation
import Logging

/// How one log line is laid out; `JSONLogHandler` and `ConsoleLogHandler` are the two layouts.
public protocol LogLineFormat: Sendable {
    /// The line for one event; `metadata` is already merged and sorted by key.
    static func line(level: Logger.Level, message: String, service: String, metadata: [(key: String, value: Logger.Metadata.Value)]) -> String
}

/// A `LogHandler` that writes one line per event in `Format`'s layout to a `LogSink`.
/// Metadata is the handler's, then the metadata provider's, then the event's (later wins).
public struct LineLogHandler<Format: LogLineFormat>: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let service: String
    private let sink: LogSink

    public init(service: String, level: Logger.Level = .info, sink: LogSink = .standardOutput, metadataProvider: Logger.MetadataProvider? = nil) {
        self.service = service
        self.logLevel = level
        self.sink = sink
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let sorted = merged.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) }
        sink.write(Format.line(level: event.level, message: event.message.description, service: service, metadata: sorted))
    }
}
