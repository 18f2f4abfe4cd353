/// A setting in the environment that is missing or wrong. Its description is one line that
/// names the variable and says what is wrong and what to do, e.g.
/// `PORT is 'abc': expected a TCP port number from 1 to 65535`.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The environment variable, e.g. `PORT`.
    public let variable: String
    /// Why the value is not accepted, without the variable's name.
    public let reason: String

    public init(variable: String, reason: String) {
        self.variable = variable
        self.reason = reason
    }

    public var description: String { "\(variable) \(reason)" }
}

/// Start-up failed for a reason outside the configuration (e.g. the subscription does not
/// exist). Its description is the one line the executable prints before exiting with status 1.
public struct StartupError: Error, Sendable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
