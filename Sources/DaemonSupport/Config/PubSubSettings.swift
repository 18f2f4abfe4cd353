import Foundation
import PubSubREST

/// Where Pub/Sub is and how to authenticate, as read from the environment. Plain values: the
/// libraries never read the environment themselves.
public struct PubSubSettings: Sendable, Equatable {
    /// `PROJECT_ID` (required).
    public var projectID: String
    /// `PUBSUB_EMULATOR_HOST` (`host:port`): talk plain HTTP to the emulator, no credentials.
    public var emulatorHost: String?
    /// `GOOGLE_APPLICATION_CREDENTIALS`: path of a service-account key file. Without it (and
    /// without an emulator) the metadata server's credentials are used.
    public var credentialsFile: String?
    /// `PUBSUB_AUTO_CREATE`: create missing resources at start-up (idempotently). Default: on
    /// when `PUBSUB_EMULATOR_HOST` is set, off otherwise.
    public var autoCreate: Bool
    /// Other variables `PubSubClient.fromEnvironment` understands (`PUBSUB_TOKEN_MODE`,
    /// `GCE_METADATA_HOST`), passed through unchanged.
    public var passthrough: [String: String]

    public init(projectID: String, emulatorHost: String? = nil, credentialsFile: String? = nil, autoCreate: Bool? = nil, passthrough: [String: String] = [:]) {
        self.projectID = projectID
        self.emulatorHost = emulatorHost
        self.credentialsFile = credentialsFile
        self.autoCreate = autoCreate ?? (emulatorHost != nil)
        self.passthrough = passthrough
    }

    /// Reads `PROJECT_ID`, `PUBSUB_EMULATOR_HOST`, `GOOGLE_APPLICATION_CREDENTIALS`,
    /// `PUBSUB_AUTO_CREATE`, `PUBSUB_TOKEN_MODE`, `GCE_METADATA_HOST`.
    public static func from(_ env: Environment) throws(ConfigError) -> PubSubSettings {
        let project = try env.required("PROJECT_ID", "set it to the Google Cloud project that holds the topic (any name works with the emulator)")
        do {
            try ResourceName.validateProjectID(project)
        } catch {
            throw ConfigError(variable: "PROJECT_ID", reason: "is '\(project)': \(error)")
        }
        let emulator = env.string("PUBSUB_EMULATOR_HOST")
        if let emulator {
            let parts = emulator.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count >= 2, let port = Int(parts.last!), (1...65_535).contains(port), !parts.dropLast().joined(separator: ":").isEmpty else {
                throw ConfigError(variable: "PUBSUB_EMULATOR_HOST", reason: "is '\(emulator)': expected host:port, e.g. localhost:8085")
            }
        }
        let credentials = env.string("GOOGLE_APPLICATION_CREDENTIALS")
        if emulator == nil, let credentials, !FileManager.default.isReadableFile(atPath: credentials) {
            throw ConfigError(variable: "GOOGLE_APPLICATION_CREDENTIALS", reason: "is '\(credentials)': no readable file there; mount the service-account key file or unset the variable")
        }
        let autoCreate = try env.bool("PUBSUB_AUTO_CREATE", default: emulator != nil)
        var passthrough: [String: String] = [:]
        for name in ["PUBSUB_TOKEN_MODE", "GCE_METADATA_HOST"] {
            if let value = env.string(name) { passthrough[name] = value }
        }
        return PubSubSettings(projectID: project, emulatorHost: emulator, credentialsFile: credentials, autoCreate: autoCreate, passthrough: passthrough)
    }

    /// The environment `PubSubClient.fromEnvironment` is given: only these settings.
    public var clientEnvironment: [String: String] {
        var env = passthrough
        env["PROJECT_ID"] = projectID
        if let emulatorHost { env["PUBSUB_EMULATOR_HOST"] = emulatorHost }
        if let credentialsFile { env["GOOGLE_APPLICATION_CREDENTIALS"] = credentialsFile }
        return env
    }

    /// Makes the client. Credential problems (unreadable key, bad token mode) come back as
    /// ``StartupError`` with the client's own message.
    public func makeClient(configuration: PubSubClient.Configuration = .default) async throws -> PubSubClient {
        do {
            return try await PubSubClient.fromEnvironment(clientEnvironment, projectID: projectID, configuration: configuration)
        } catch let error as PubSubError {
            throw StartupError("Pub/Sub credentials: \(error.message)")
        }
    }
}
