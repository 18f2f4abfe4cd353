import Foundation

/// Exchanges a JWT signed with a service-account key for an OAuth2 access token at the key's
/// `token_uri` (RFC 7523 JWT bearer grant).
///
/// Tokens are cached and refreshed when less than `refreshMargin` of their lifetime remains;
/// concurrent callers share one request to the token endpoint.
public final class OAuth2TokenProvider: AccessTokenProvider {
    /// The scope requested by default: `https://www.googleapis.com/auth/pubsub`.
    public static let defaultScope = "https://www.googleapis.com/auth/pubsub"

    /// The key that signs the assertions.
    public let key: ServiceAccountKey
    /// The requested scopes (space-separated).
    public let scope: String
    private let cache: TokenCache

    /// - Parameters:
    ///   - key: the service-account key; tokens are requested from its `tokenURI`.
    ///   - scope: space-separated scopes; default `https://www.googleapis.com/auth/pubsub`.
    ///   - transport: sends the token request.
    ///   - timeout: time allowed for one token request; default 30 s.
    ///   - refreshMargin: fetch a new token when less than this remains; default 5 minutes
    ///     (capped at half the token's lifetime).
    public init(
        key: ServiceAccountKey,
        scope: String = OAuth2TokenProvider.defaultScope,
        transport: any HTTPTransport,
        timeout: Duration = .seconds(30),
        refreshMargin: Duration = .seconds(300)
    ) {
        self.key = key
        self.scope = scope
        self.cache = TokenCache(refreshMargin: refreshMargin) {
            try await Self.fetchToken(key: key, scope: scope, transport: transport, timeout: timeout)
        }
    }

    /// `"Bearer <access token>"`.
    public func authorizationHeaderValue() async throws -> String? {
        try await cache.token().headerValue
    }

    public var credentialDescription: String {
        "service account key \(key.source) (\(key.clientEmail), OAuth2 token from \(key.tokenURI))"
    }

    private static func fetchToken(
        key: ServiceAccountKey,
        scope: String,
        transport: any HTTPTransport,
        timeout: Duration
    ) async throws -> CachedToken {
        let endpoint = "the token endpoint \(key.tokenURI)"
        let assertion = try key.signedJWT(audience: key.tokenURI, scope: scope, issuedAt: Date(), lifetime: 3600)
        // A JWT is base64url plus dots: nothing in it needs form encoding.
        let body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" + assertion
        let request = HTTPRequest(
            method: "POST",
            url: key.tokenURI,
            headers: [
                (name: "Content-Type", value: "application/x-www-form-urlencoded"),
                (name: "Accept", value: "application/json"),
            ],
            body: Data(body.utf8),
            timeout: timeout
        )
        let started = ContinuousClock.now
        let response: HTTPResponse
        do {
            response = try await transport.execute(request)
        } catch {
            throw TokenResponse.wrap(error, endpoint: endpoint)
        }
        return try TokenResponse.parse(response, endpoint: endpoint, obtainedAt: started)
    }
}
