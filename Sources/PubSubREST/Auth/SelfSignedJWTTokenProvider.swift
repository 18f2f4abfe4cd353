import Foundation

/// Uses a JWT signed with a service-account key directly as the bearer token, with no network
/// call (Google's "self-signed JWT" flow). The default for service-account keys.
///
/// Tokens are cached and re-signed when less than `refreshMargin` of their lifetime remains.
public final class SelfSignedJWTTokenProvider: AccessTokenProvider {
    /// The `aud` claim used by default: `https://pubsub.googleapis.com/`.
    public static let defaultAudience = "https://pubsub.googleapis.com/"

    /// The key that signs the tokens.
    public let key: ServiceAccountKey
    /// The `aud` claim.
    public let audience: String
    private let cache: TokenCache

    /// - Parameters:
    ///   - key: the service-account key.
    ///   - audience: the `aud` claim; default `https://pubsub.googleapis.com/`.
    ///   - lifetime: token lifetime; default 1 hour (Google's maximum).
    ///   - refreshMargin: sign a new token when less than this remains; default 5 minutes
    ///     (capped at half the lifetime).
    public init(
        key: ServiceAccountKey,
        audience: String = SelfSignedJWTTokenProvider.defaultAudience,
        lifetime: Duration = .seconds(3600),
        refreshMargin: Duration = .seconds(300)
    ) {
        self.key = key
        self.audience = audience
        let seconds = TimeInterval(lifetime.components.seconds)
        self.cache = TokenCache(refreshMargin: refreshMargin) {
            let now = ContinuousClock.now
            let jwt = try key.signedJWT(audience: audience, issuedAt: Date(), lifetime: seconds)
            return CachedToken(headerValue: "Bearer " + jwt, obtainedAt: now, expiresAt: now + .seconds(seconds))
        }
    }

    /// `"Bearer <jwt>"`.
    public func authorizationHeaderValue() async throws -> String? {
        try await cache.token().headerValue
    }

    public var credentialDescription: String {
        "service account key \(key.source) (\(key.clientEmail), self-signed JWT)"
    }
}
