/// Supplies the `Authorization` header for API calls.
///
/// Implementations cache tokens and refresh them before they expire; concurrent callers share
/// one in-flight refresh.
public protocol AccessTokenProvider: Sendable {
    /// The full header value (`"Bearer ya29..."`), or `nil` when requests go unauthenticated
    /// (the emulator).
    func authorizationHeaderValue() async throws -> String?

    /// A short description for logs and errors, never containing a secret
    /// (e.g. `"service account key /k.json (self-signed JWT)"`).
    var credentialDescription: String { get }
}
