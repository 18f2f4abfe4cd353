import Foundation

/// Reading the JSON answers of OAuth2 token endpoints and the metadata server.
enum TokenResponse {
    private struct Body: Decodable {
        let access_token: String
        let expires_in: Double?
        let token_type: String?
    }

    private struct OAuthError: Decodable {
        let error: String?
        let error_description: String?
    }

    /// The token in a 2xx answer, or a `.authentication` error describing what is wrong.
    ///
    /// - Parameter endpoint: what answered, for messages (e.g. "the token endpoint https://...").
    static func parse(_ response: HTTPResponse, endpoint: String, obtainedAt: ContinuousClock.Instant) throws -> CachedToken {
        guard (200..<300).contains(response.status) else {
            throw error(for: response, endpoint: endpoint)
        }
        guard let body = try? JSONDecoder().decode(Body.self, from: response.body) else {
            throw PubSubError(
                kind: .authentication,
                message: "\(endpoint) answered HTTP \(response.status) with a body that is not a token response "
                    + "(expected JSON with access_token and expires_in): "
                    + "\(excerptOrEmpty(response.body)). Check that the URL points at a Google OAuth2 token endpoint.",
                httpStatus: response.status
            )
        }
        guard !body.access_token.isEmpty else {
            throw PubSubError(
                kind: .authentication,
                message: "\(endpoint) answered with an empty access_token.",
                httpStatus: response.status
            )
        }
        let type = body.token_type ?? "Bearer"
        guard type.caseInsensitiveCompare("Bearer") == .orderedSame else {
            throw PubSubError(
                kind: .authentication,
                message: "\(endpoint) issued a token of type \"\(PubSubError.printableExcerpt(Data(type.utf8), limit: 40))\"; "
                    + "only Bearer tokens are supported.",
                httpStatus: response.status
            )
        }
        // Google's tokens last an hour; assume that when the answer names no lifetime.
        let seconds = max(1, min(body.expires_in ?? 3600, 86_400))
        return CachedToken(
            headerValue: "Bearer " + body.access_token,
            obtainedAt: obtainedAt,
            expiresAt: obtainedAt + .milliseconds(Int64(seconds * 1000))
        )
    }

    /// A `.authentication` error for an HTTP error answer, with the OAuth2 `error` and
    /// `error_description` when the body has them.
    static func error(for response: HTTPResponse, endpoint: String) -> PubSubError {
        var detail: String
        if let oauth = try? JSONDecoder().decode(OAuthError.self, from: response.body), oauth.error != nil {
            detail = [oauth.error, oauth.error_description].compactMap { $0 }.joined(separator: ": ")
        } else {
            detail = excerptOrEmpty(response.body)
        }
        detail = PubSubError.printableExcerpt(Data(detail.utf8))
        let advice: String
        switch response.status {
        case 400, 401:
            advice = "The credentials were refused: check that the service-account key is current (not deleted "
                + "or disabled) and that the machine's clock is correct."
        case 403:
            advice = "Access was denied: check the service account's permissions."
        case 500...:
            advice = "The server failed; the call may succeed if retried."
        default:
            advice = "Check the credentials configuration."
        }
        return PubSubError(
            kind: .authentication,
            message: "\(endpoint) refused to issue an access token (HTTP \(response.status): \(detail)). \(advice)",
            httpStatus: response.status,
            code: PubSubError.Code.fromHTTPStatus(response.status)
        )
    }

    /// The same failure with a message saying what was being done (default: getting an access
    /// token); kind kept.
    static func wrap(_ error: any Error, endpoint: String, action: String = "get an access token from") -> any Error {
        guard let error = error as? PubSubError else { return error }
        switch error.kind {
        case .transport, .timeout:
            return PubSubError(
                kind: error.kind,
                message: "Could not \(action) \(endpoint): \(error.message)",
                httpStatus: error.httpStatus,
                code: error.code,
                operation: error.operation
            )
        default:
            return error
        }
    }

    private static func excerptOrEmpty(_ body: Data) -> String {
        let excerpt = PubSubError.printableExcerpt(body)
        return excerpt.isEmpty ? "(empty body)" : excerpt
    }
}
