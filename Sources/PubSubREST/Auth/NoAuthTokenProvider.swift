/// Sends requests without an `Authorization` header. Used for the Pub/Sub emulator
/// (`PUBSUB_EMULATOR_HOST`), which accepts any caller.
public struct NoAuthTokenProvider: AccessTokenProvider {
    public init() {}

    /// Always `nil`: no `Authorization` header.
    public func authorizationHeaderValue() async throws -> String? { nil }

    public var credentialDescription: String { "no credentials (emulator)" }
}
