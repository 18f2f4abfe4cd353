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
public typealias JSONLogHandler = LineLogHandler<JSONLineFormat>

/// One JSON object per line (see `JSONLogHandler`).
public enum JSONLineFormat: LogLineFormat {
    public static func line(level: Logger.Level, message: String, service: String, metadata: [(key: String, value: Logger.Metadata.Value)]) -> String {
        var line = "{\"time\":"
        JSONText.appendString(Timestamp.rfc3339(), to: &line)
        line += ",\"level\":"
        JSONText.appendString(level.rawValue, to: &line)
        line += ",\"message\":"
        JSONText.appendString(message, to: &line)
        line += ",\"service\":"
        JSONText.appendString(service, to: &line)
        for (key, value) in metadata {
            let name = ["time", "level", "message", "service"].contains(key) ? "meta_" + key : key
            line += ","
            JSONText.appendString(name, to: &line)
            line += ":"
            JSONText.append(value, to: &line)
        }
        line += "}"
        return line
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
            for (index, entry) in dictionary.sorted(by: { $0.key < $1.key }).enumerated() {
                if index > 0 { out += "," }
                appendString(entry.key, to: &out)
                out += ":"
                append(entry.value, to: &out)
            }
            out += "}"
        }
    }
}
