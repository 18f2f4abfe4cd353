import Foundation
import Logging

extension PubSubClient {
    /// A client configured from the environment, the way Google's client libraries do:
    ///
    /// - `PUBSUB_EMULATOR_HOST` (`host:port`): plain http to the emulator, no credentials.
    /// - `GOOGLE_APPLICATION_CREDENTIALS`: a service-account key file.
    /// - otherwise the metadata server (`GCE_METADATA_HOST`, default `metadata.google.internal`).
    /// - `PUBSUB_TOKEN_MODE`: `self-signed-jwt` (default: the key signs its own bearer token, no
    ///   network round trip) or `oauth2` (exchange the signed JWT at the key's `token_uri`).
    ///
    /// The project is `projectID` when given, else `PROJECT_ID`, else what the credentials name
    /// (`GOOGLE_CLOUD_PROJECT`, the key's `project_id`, the metadata server's project).
    ///
    /// - Throws: `PubSubError` of kind `.credentials` when no credentials or no project can be found.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment,
        projectID: String? = nil,
        configuration: Configuration = .default,
        logger: Logger = Logger(label: "PubSubREST", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> PubSubClient {
        let keyMode = try tokenMode(environment)
        let transport = CurlTransport(configuration: configuration.transport)
        let credentials = try await GoogleCredentials.applicationDefault(environment: environment, transport: transport, keyMode: keyMode)
        let explicit = [projectID, environment["PROJECT_ID"]].compactMap { $0?.trimmingCharacters(in: .whitespaces) }.first { !$0.isEmpty }
        guard let project = explicit ?? credentials.projectID else {
            throw PubSubError(
                kind: .credentials,
                message: "no Google Cloud project: set PROJECT_ID (or pass --project); the credentials (\(credentials.provider.credentialDescription)) name none"
            )
        }
        var config = configuration
        config.emulatorHost = credentials.emulatorHost
        return PubSubClient(projectID: project, configuration: config, transport: transport, tokenProvider: credentials.provider, logger: logger)
    }

    /// Reads `PUBSUB_TOKEN_MODE`.
    static func tokenMode(_ environment: [String: String]) throws -> KeyTokenMode {
        switch environment["PUBSUB_TOKEN_MODE"]?.lowercased() {
        case nil, "", "self-signed-jwt", "jwt":
            return .selfSignedJWT
        case "oauth2":
            return .oauth2
        case let other?:
            throw PubSubError(kind: .invalidArgument, message: "PUBSUB_TOKEN_MODE is '\(other)': use self-signed-jwt (the default) or oauth2")
        }
    }

    /// The credentials in use, for logs (never a secret).
    public var credentialDescription: String { tokenProvider.credentialDescription }

    /// The `Authorization` header value this client sends (nil with the emulator).
    public func authorizationHeaderValue() async throws -> String? {
        try await tokenProvider.authorizationHeaderValue()
    }
}
