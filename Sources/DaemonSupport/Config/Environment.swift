import Logging

/// Typed reads of environment variables. Every failure is a ``ConfigError`` naming the variable.
///
/// An empty value counts as unset, so `PORT=` in a Compose file means "use the default".
public struct Environment: Sendable {
    public let values: [String: String]

    public init(_ values: [String: String]) {
        self.values = values
    }

    /// The trimmed value, or nil when unset or empty.
    public func string(_ name: String) -> String? {
        guard let raw = values[name] else { return nil }
        let trimmed = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : trimmed
    }

    public func string(_ name: String, default defaultValue: String) -> String {
        string(name) ?? defaultValue
    }

    /// The value, or a ``ConfigError`` saying the variable is required and why.
    public func required(_ name: String, _ purpose: String) throws(ConfigError) -> String {
        guard let value = string(name) else {
            throw ConfigError(variable: name, reason: "is not set: \(purpose)")
        }
        return value
    }

    /// A TCP port from 1 to 65535, or nil when unset.
    public func port(_ name: String) throws(ConfigError) -> Int? {
        guard let text = string(name) else { return nil }
        guard let port = Int(text), (1...65_535).contains(port) else {
            throw ConfigError(variable: name, reason: "is '\(text)': expected a TCP port number from 1 to 65535")
        }
        return port
    }

    /// `1/true/yes/on` or `0/false/no/off` (any case); `defaultValue` when unset.
    public func bool(_ name: String, default defaultValue: Bool) throws(ConfigError) -> Bool {
        guard let text = string(name) else { return defaultValue }
        switch text.lowercased() {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default:
            throw ConfigError(variable: name, reason: "is '\(text)': expected true or false (also 1/0, yes/no, on/off)")
        }
    }

    /// A whole number in `range`; `defaultValue` when unset.
    public func count(_ name: String, default defaultValue: Int, range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard let text = string(name) else { return defaultValue }
        guard let value = Int(text), range.contains(value) else {
            throw ConfigError(variable: name, reason: "is '\(text)': expected a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// A positive number of seconds (fractions allowed); `defaultValue` when unset.
    public func seconds(_ name: String, default defaultValue: Duration) throws(ConfigError) -> Duration {
        guard let text = string(name) else { return defaultValue }
        guard let value = Double(text), value.isFinite, value > 0, value <= 86_400 else {
            throw ConfigError(variable: name, reason: "is '\(text)': expected a positive number of seconds (at most 86400)")
        }
        return .milliseconds(Int64((value * 1000).rounded()))
    }

    /// A Pub/Sub resource ID (topic or subscription): 3-255 characters, starts with a letter,
    /// then letters, digits and `-_.~+%`, not starting with `goog`.
    public func resourceID(_ name: String, default defaultValue: String) throws(ConfigError) -> String {
        let id = string(name) ?? defaultValue
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+%")
        guard (3...255).contains(id.count), let first = id.first, first.isLetter, first.isASCII,
              id.allSatisfy({ allowed.contains($0) }), !id.lowercased().hasPrefix("goog")
        else {
            throw ConfigError(
                variable: name,
                reason: "is '\(id)': expected 3 to 255 characters starting with a letter, of letters, digits and - _ . ~ + %, not starting with 'goog'"
            )
        }
        return id
    }

    /// `LOG_LEVEL`: trace, debug, info (default), notice, warning, error, critical.
    public func logLevel(_ name: String = "LOG_LEVEL") throws(ConfigError) -> Logger.Level {
        guard let text = string(name) else { return .info }
        let aliases: [String: Logger.Level] = ["warn": .warning, "fatal": .critical]
        guard let level = Logger.Level(rawValue: text.lowercased()) ?? aliases[text.lowercased()] else {
            throw ConfigError(variable: name, reason: "is '\(text)': expected one of trace, debug, info, notice, warning, error, critical")
        }
        return level
    }

    /// `LOG_FORMAT`: json (default) or console.
    public func logFormat(_ name: String = "LOG_FORMAT") throws(ConfigError) -> LogFormat {
        guard let text = string(name) else { return .json }
        guard let format = LogFormat(rawValue: text.lowercased()) else {
            throw ConfigError(variable: name, reason: "is '\(text)': expected json or console")
        }
        return format
    }
}

import Foundation
