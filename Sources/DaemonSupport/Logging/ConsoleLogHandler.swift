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
public typealias ConsoleLogHandler = LineLogHandler<ConsoleLineFormat>

/// structlog's console layout (see `ConsoleLogHandler`).
public enum ConsoleLineFormat: LogLineFormat {
    public static func line(level: Logger.Level, message: String, service: String, metadata: [(key: String, value: Logger.Metadata.Value)]) -> String {
        let paddedLevel = level.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
        var message = message
        if message.count < 30 { message = message.padding(toLength: 30, withPad: " ", startingAt: 0) }
        var line = "\(Timestamp.console()) [\(paddedLevel)] \(message)"
        for (key, value) in metadata {
            var text = ""
            switch value {
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
        return line
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
