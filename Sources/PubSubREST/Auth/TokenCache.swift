/// An access token and when it stops being valid.
struct CachedToken: Sendable {
    /// The full `Authorization` header value, e.g. `"Bearer ya29..."`.
    let headerValue: String
    /// When the token was obtained.
    let obtainedAt: ContinuousClock.Instant
    /// When the token expires.
    let expiresAt: ContinuousClock.Instant

    /// Whether the token should be replaced at `now`: less than `margin` of its life remains.
    /// The margin is capped at half the token's lifetime, so short-lived tokens are still reused.
    func needsRefresh(at now: ContinuousClock.Instant, margin: Duration) -> Bool {
        let lifetime = expiresAt - obtainedAt
        let effectiveMargin = min(margin, lifetime / 2)
        return now >= expiresAt - effectiveMargin
    }
}

/// Caches one token and runs at most one refresh at a time.
///
/// Concurrent callers that find the token missing or near expiry all await the same in-flight
/// refresh `Task`. A failed refresh is handed to the callers that waited for it and then
/// forgotten, so the next call tries again.
actor TokenCache {
    private let refreshMargin: Duration
    private let fetch: @Sendable () async throws -> CachedToken
    private var cached: CachedToken?
    private var inFlight: Task<CachedToken, any Error>?

    init(refreshMargin: Duration, fetch: @escaping @Sendable () async throws -> CachedToken) {
        self.refreshMargin = refreshMargin
        self.fetch = fetch
    }

    /// A valid token, from the cache or from a (shared) refresh.
    func token() async throws -> CachedToken {
        if let cached, !cached.needsRefresh(at: .now, margin: refreshMargin) {
            return cached
        }
        let task: Task<CachedToken, any Error>
        if let inFlight {
            task = inFlight
        } else {
            let fetch = self.fetch
            task = Task { try await fetch() }
            inFlight = task
        }
        do {
            let token = try await task.value
            finish(task, with: token)
            return token
        } catch {
            finish(task, with: nil)
            throw error
        }
    }

    private func finish(_ task: Task<CachedToken, any Error>, with token: CachedToken?) {
        // Only the refresh that is still current may clear itself (callers resume in any order).
        if inFlight == task {
            inFlight = nil
            if let token { cached = token }
        }
    }
}
