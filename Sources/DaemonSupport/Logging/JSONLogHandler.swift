import Foundation
import Logging

/// A `LogHandler` that writes one JSON object per line:
///
/// ```json
/// {"time":"2024-09-23T11:14:33.723Z","level":"info","message":"Publishing event","service":"reservations-service","data":"{...}"}
/// ```
///
/// `time` is RFC 3339 UTC with milliseconds. Metadata is flattened into the object after the
/// four fixed keys (a metadata key that collides with one of them is prefixed with `meta_`);
/// nested dictionaries become JSON objects, arrays JSON arrays, everything else a string.
public struct JSONLogHandler: LogHandler {
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

        var line = "{\"time\":"
        JSONText.appendString(Timestamp.rfc3339(), to: &line)
        line += ",\"level\":"
        JSONText.appendString(event.level.rawValue, to: &line)
        line += ",\"message\":"
        JSONText.appendString(event.message.description, to: &line)
        line += ",\"service\":"
        JSONText.appendString(service, to: &line)
        for key in merged.keys.sorted() {
            let name = ["time", "level", "message", "service"].contains(key) ? "meta_" + key : key
            line += ","
            JSONText.appendString(name, to: &line)
            line += ":"
            JSONText.append(merged[key]!, to: &line)
        }
        line += "}"
        sink.write(line)
    }
}

enum JSONText {
    static func appendString(_ value: String, to out: inout String) {
        out += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let s where s.value < 0x20:
                out += String(format: "\\u%04x", s.value)
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }

    static func append(_ value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let text):
            appendString(text, to: &out)
        case .stringConvertible(let convertible):
            appendString(convertible.description, to: &out)
        case .array(let values):
            out += "["
            for (index, element) in values.enumerated() {
                if index > 0 { out += "," }
                append(element, to: &out)
            }
            out += "]"
        case .dictionary(let dictionary):
            out += "{"
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                appendString(key, to: &out)
                out += ":"
                append(dictionary[key]!, to: &out)
            }
            out += "}"
        }
    }
}
