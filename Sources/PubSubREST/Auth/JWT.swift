import Foundation

/// Builds and signs RS256 JWTs with a service-account key.
///
/// The header is `{"alg":"RS256","kid":<private_key_id>,"typ":"JWT"}`; the claims are `iss` and
/// `sub` (the client e-mail), `aud` and/or `scope`, `iat` and `exp`. Keys are serialised in sorted
/// order, so a token is fully determined by its inputs (RS256 signatures are deterministic).
public enum JWTSigner {
    /// Signs a JWT for `key`.
    ///
    /// - Parameters:
    ///   - key: the service-account key (its `client_email` and `private_key_id`).
    ///   - audience: the `aud` claim, or `nil` to leave it out.
    ///   - scope: the `scope` claim (space-separated scopes), or `nil` to leave it out.
    ///   - issuedAt: the `iat` claim, truncated to whole seconds.
    ///   - lifetime: `exp` minus `iat`, in seconds; default 3600 (Google's maximum).
    /// - Returns: `header.claims.signature`, each part base64url without padding.
    /// - Throws: `PubSubError` of kind `.credentials` if OpenSSL fails to sign, or
    ///   `.invalidArgument` if neither `audience` nor `scope` is given.
    public static func makeJWT(
        key: ServiceAccountKey,
        audience: String?,
        scope: String?,
        issuedAt: Date,
        lifetime: TimeInterval = 3600
    ) throws -> String {
        guard audience != nil || scope != nil else {
            throw PubSubError(kind: .invalidArgument, message: "A JWT for Google needs an audience, a scope, or both.")
        }
        struct Header: Encodable {
            let alg = "RS256"
            let typ = "JWT"
            let kid: String
        }
        struct Claims: Encodable {
            let iss: String
            let sub: String
            let aud: String?
            let scope: String?
            let iat: Int64
            let exp: Int64
        }
        let iat = Int64(issuedAt.timeIntervalSince1970.rounded(.down))
        let claims = Claims(
            iss: key.clientEmail,
            sub: key.clientEmail,
            aud: audience,
            scope: scope,
            iat: iat,
            exp: iat + Int64(lifetime.rounded(.down))
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let headerJSON: Data
        let claimsJSON: Data
        do {
            headerJSON = try encoder.encode(Header(kid: key.privateKeyID))
            claimsJSON = try encoder.encode(claims)
        } catch {
            throw PubSubError(kind: .credentials, message: "Could not encode the JWT: \(error)")
        }
        let signingInput = Base64URL.encode(headerJSON) + "." + Base64URL.encode(claimsJSON)
        let signature = try key.signer.sign(Data(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(signature)
    }
}

extension ServiceAccountKey {
    /// A JWT with `aud` = `audience` (and a `scope` claim when given), signed with this key.
    ///
    /// - Parameters:
    ///   - audience: the `aud` claim, e.g. `"https://pubsub.googleapis.com/"` for a self-signed
    ///     token, or ``tokenURI`` for an OAuth2 assertion.
    ///   - scope: an optional `scope` claim; default `nil`.
    ///   - issuedAt: the `iat` claim; default now.
    ///   - lifetime: seconds until `exp`; default 3600.
    public func signedJWT(
        audience: String,
        scope: String? = nil,
        issuedAt: Date = Date(),
        lifetime: TimeInterval = 3600
    ) throws -> String {
        try JWTSigner.makeJWT(key: self, audience: audience, scope: scope, issuedAt: issuedAt, lifetime: lifetime)
    }

    /// A JWT with a `scope` claim and no `aud`, signed with this key (Google's scoped self-signed JWT).
    ///
    /// - Parameters:
    ///   - scope: space-separated OAuth scopes, e.g. `"https://www.googleapis.com/auth/pubsub"`.
    ///   - issuedAt: the `iat` claim; default now.
    ///   - lifetime: seconds until `exp`; default 3600.
    public func signedJWT(scope: String, issuedAt: Date = Date(), lifetime: TimeInterval = 3600) throws -> String {
        try JWTSigner.makeJWT(key: self, audience: nil, scope: scope, issuedAt: issuedAt, lifetime: lifetime)
    }
}
