import Foundation

/// How a service-account key is turned into bearer tokens.
public enum KeyTokenMode: String, Sendable, CaseIterable {
    /// Sign a JWT locally and send it as the token (no network call). The default.
    case selfSignedJWT
    /// Exchange a signed JWT for an OAuth2 access token at the key's `token_uri`.
    case oauth2
}

/// What ``GoogleCredentials/applicationDefault(environment:transport:keyMode:metadataProbeTimeout:)``
/// found.
public struct ResolvedCredentials: Sendable {
    /// Supplies the `Authorization` header.
    public var provider: any AccessTokenProvider
    /// The project, when the environment or the credentials name one.
    public var projectID: String?
    /// `host:port` of the Pub/Sub emulator when `PUBSUB_EMULATOR_HOST` is set; requests then go
    /// there over plain http, unauthenticated.
    public var emulatorHost: String?

    public init(provider: any AccessTokenProvider, projectID: String?, emulatorHost: String?) {
        self.provider = provider
        self.projectID = projectID
        self.emulatorHost = emulatorHost
    }
}

/// Application Default Credentials, resolved the way Google's client libraries do (service-account
/// keys and the metadata server only).
public enum GoogleCredentials {
    /// Finds credentials, in this order:
    ///
    /// 1. `PUBSUB_EMULATOR_HOST` set and not empty: no authentication, requests go to the emulator.
    /// 2. `GOOGLE_APPLICATION_CREDENTIALS` set and not empty: the service-account key file it names.
    ///    Errors in that file are reported, not skipped.
    /// 3. The metadata server (`GCE_METADATA_HOST`, default `metadata.google.internal`), probed
    ///    by fetching the project id with a short timeout.
    ///
    /// The project id is `GOOGLE_CLOUD_PROJECT` when set, otherwise the key's `project_id` or the
    /// metadata server's project (for the emulator: `PUBSUB_PROJECT_ID`, then `GOOGLE_CLOUD_PROJECT`).
    ///
    /// - Parameters:
    ///   - environment: the environment variables to read (pass `ProcessInfo.processInfo.environment`).
    ///   - transport: used for the metadata probe and for token requests.
    ///   - keyMode: how a key file is used; default `.selfSignedJWT`.
    ///   - metadataProbeTimeout: time allowed for the metadata server to answer the probe; default 1.5 s.
    /// - Throws: `PubSubError` of kind `.credentials`: the key file's own error, or, when nothing
    ///   works, one error listing what was tried and what to do.
    public static func applicationDefault(
        environment: [String: String],
        transport: any HTTPTransport,
        keyMode: KeyTokenMode = .selfSignedJWT,
        metadataProbeTimeout: Duration = .milliseconds(1500)
    ) async throws -> ResolvedCredentials {
        func value(_ name: String) -> String? {
            guard let value = environment[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
            return value
        }
        let explicitProject = value("GOOGLE_CLOUD_PROJECT")

        if let emulator = value("PUBSUB_EMULATOR_HOST") {
            return ResolvedCredentials(
                provider: NoAuthTokenProvider(),
                projectID: value("PUBSUB_PROJECT_ID") ?? explicitProject,
                emulatorHost: emulator
            )
        }

        if let path = value("GOOGLE_APPLICATION_CREDENTIALS") {
            let key = try ServiceAccountKey.load(path: path)
            let provider: any AccessTokenProvider
            switch keyMode {
            case .selfSignedJWT:
                provider = SelfSignedJWTTokenProvider(key: key)
            case .oauth2:
                provider = OAuth2TokenProvider(key: key, transport: transport)
            }
            return ResolvedCredentials(provider: provider, projectID: explicitProject ?? key.projectID, emulatorHost: nil)
        }

        let host = MetadataServerTokenProvider.host(environment: environment)
        do {
            let projectID = try await MetadataServerTokenProvider.fetchProjectID(
                transport: transport, host: host, timeout: metadataProbeTimeout
            )
            return ResolvedCredentials(
                provider: MetadataServerTokenProvider(transport: transport, host: host),
                projectID: explicitProject ?? projectID,
                emulatorHost: nil
            )
        } catch let error as PubSubError where error.kind == .cancelled {
            throw error
        } catch is CancellationError {
            throw PubSubError(kind: .cancelled, message: "Looking for Google credentials was cancelled.")
        } catch {
            let reason = (error as? PubSubError)?.message ?? "\(error)"
            throw PubSubError(
                kind: .credentials,
                message: """
                    No Google credentials found. Tried: \
                    (1) PUBSUB_EMULATOR_HOST: not set; \
                    (2) GOOGLE_APPLICATION_CREDENTIALS: not set; \
                    (3) the metadata server at \(host): \(reason). \
                    To fix: set GOOGLE_APPLICATION_CREDENTIALS to the path of a service-account JSON key file, \
                    or set PUBSUB_EMULATOR_HOST=host:port to use the Pub/Sub emulator, \
                    or run on Google Cloud (Compute Engine, GKE, Cloud Run) with a service account attached.
                    """
            )
        }
    }
}
