import Foundation

/// Gets access tokens for the attached service account from the Compute Engine / GKE / Cloud Run
/// metadata server.
///
/// Tokens are cached and refreshed when less than `refreshMargin` of their lifetime remains;
/// concurrent callers share one request to the metadata server.
public final class MetadataServerTokenProvider: AccessTokenProvider {
    /// The metadata server's host name: `metadata.google.internal`.
    public static let defaultHost = "metadata.google.internal"

    /// The host used when none is given: `GCE_METADATA_HOST` from `environment` when set and
    /// not empty (as Google's libraries do), otherwise `metadata.google.internal`.
    public static func host(environment: [String: String]) -> String {
        if let host = environment["GCE_METADATA_HOST"], !host.isEmpty { return host }
        return defaultHost
    }

    /// The metadata server `host[:port]`.
    public let host: String
    private let transport: any HTTPTransport
    private let timeout: Duration
    private let cache: TokenCache

    /// - Parameters:
    ///   - transport: sends the requests (plain `http`).
    ///   - host: `host[:port]` of the metadata server; default `GCE_METADATA_HOST` from the
    ///     process environment, or `metadata.google.internal`.
    ///   - timeout: time allowed for one token request; default 30 s.
    ///   - refreshMargin: fetch a new token when less than this remains; default 5 minutes
    ///     (capped at half the token's lifetime).
    public init(
        transport: any HTTPTransport,
        host: String = MetadataServerTokenProvider.host(environment: ProcessInfo.processInfo.environment),
        timeout: Duration = .seconds(30),
        refreshMargin: Duration = .seconds(300)
    ) {
        self.transport = transport
        self.host = host
        self.timeout = timeout
        let url = "http://\(host)/computeMetadata/v1/instance/service-accounts/default/token"
        self.cache = TokenCache(refreshMargin: refreshMargin) {
            let endpoint = "the metadata server \(host)"
            let started = ContinuousClock.now
            let response: HTTPResponse
            do {
                response = try await transport.execute(
                    HTTPRequest(method: "GET", url: url, headers: [(name: "Metadata-Flavor", value: "Google")], timeout: timeout)
                )
            } catch {
                throw TokenResponse.wrap(error, endpoint: endpoint)
            }
            return try TokenResponse.parse(response, endpoint: endpoint, obtainedAt: started)
        }
    }

    /// `"Bearer <access token>"`.
    public func authorizationHeaderValue() async throws -> String? {
        try await cache.token().headerValue
    }

    public var credentialDescription: String {
        "metadata server \(host) (default service account)"
    }

    /// The project id from the metadata server (`/computeMetadata/v1/project/project-id`).
    ///
    /// - Parameter timeout: time allowed; default 30 s.
    public func projectID(timeout: Duration = .seconds(30)) async throws -> String {
        try await Self.fetchProjectID(transport: transport, host: host, timeout: timeout)
    }

    /// The project id from the metadata server at `host` (`/computeMetadata/v1/project/project-id`).
    ///
    /// - Throws: `PubSubError` of kind `.authentication` when the server answers with an error
    ///   or is not a metadata server; `.transport` / `.timeout` when it cannot be reached in time.
    public static func fetchProjectID(transport: any HTTPTransport, host: String, timeout: Duration = .seconds(30)) async throws -> String {
        let endpoint = "the metadata server \(host)"
        let response: HTTPResponse
        do {
            response = try await transport.execute(HTTPRequest(
                method: "GET",
                url: "http://\(host)/computeMetadata/v1/project/project-id",
                headers: [(name: "Metadata-Flavor", value: "Google")],
                timeout: timeout
            ))
        } catch {
            throw TokenResponse.wrap(error, endpoint: endpoint, action: "read the project id from")
        }
        guard response.status == 200 else {
            throw PubSubError(
                kind: .authentication,
                message: "\(endpoint) answered HTTP \(response.status) for the project id: "
                    + "\(PubSubError.printableExcerpt(response.body))",
                httpStatus: response.status
            )
        }
        // The real metadata server marks every answer; anything else at this address is an impostor
        // (a captive portal, a proxy).
        guard response.headers["metadata-flavor"] == "Google" else {
            throw PubSubError(
                kind: .authentication,
                message: "\(endpoint) answered without the header Metadata-Flavor: Google; it is not a metadata server."
            )
        }
        let projectID = String(decoding: response.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !projectID.isEmpty else {
            throw PubSubError(kind: .authentication, message: "\(endpoint) answered with an empty project id.")
        }
        return projectID
    }
}
