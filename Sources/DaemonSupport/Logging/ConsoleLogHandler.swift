import Foundation
import Logging

/// A `LogHandler` in structlog's console layout, as the tutorial's services print:
///
/// ```
/// 2024-09-23 11:14:33 [info     ] Publishing event               data={"time": ...}
/// ```
///
/// The level is padded to 9 characters, the message to 30, then `key=value` pairs sorted by key
/// (values with spaces are quoted).
public struct ConsoleLogHandler: LogHandler {
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

        let level = event.level.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
        var message = event.message.description
        if message.count < 30 { message = message.padding(toLength: 30, withPad: " ", startingAt: 0) }
        var line = "\(Timestamp.console()) [\(level)] \(message)"
        for key in merged.keys.sorted() {
            var text = ""
            switch merged[key]! {
            case .string(let value): text = value
            case .stringConvertible(let value): text = value.description
            case let other:
                JSONText.append(other, to: &text)
            }
            if text.contains(" ") && !(text.hasPrefix("{") || text.hasPrefix("[")) {
                text = "'" + text + "'"
            }
            line += " \(key)=\(text)"
        }
        sink.write(line)
    }
}

extension LogFormat {
    /// A handler of this format for `LoggingSystem.bootstrap` (executables only).
    public func makeHandler(service: String, level: Logger.Level, sink: LogSink = .standardOutput) -> any LogHandler {
        switch self {
        case .json: return JSONLogHandler(service: service, level: level, sink: sink)
        case .console: return ConsoleLogHandler(service: service, level: level, sink: sink)
        }
    }
}
