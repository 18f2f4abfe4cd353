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
/// Callers that find the token missing or near expiry wait for the single in-flight refresh
/// `Task`; its result is handed to every waiter. A failed refresh is reported to the callers that
/// waited for it and then forgotten, so the next call tries again. A waiter whose task is
/// cancelled stops waiting at once (with a `.cancelled` error) while the refresh continues for
/// the others and still fills the cache.
actor TokenCache {
    private typealias Waiter = CheckedContinuation<CachedToken, any Error>

    private let refreshMargin: Duration
    private let fetch: @Sendable () async throws -> CachedToken
    private var cached: CachedToken?
    private var inFlight: Task<Void, Never>?
    private var waiters: [Int: Waiter] = [:]
    private var nextWaiterID = 0

    init(refreshMargin: Duration, fetch: @escaping @Sendable () async throws -> CachedToken) {
        self.refreshMargin = refreshMargin
        self.fetch = fetch
    }

    /// A valid token, from the cache or from the (shared) refresh.
    func token() async throws -> CachedToken {
        if let cached, !cached.needsRefresh(at: .now, margin: refreshMargin) {
            return cached
        }
        let id = nextWaiterID
        nextWaiterID += 1
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: Waiter) in
                if Task.isCancelled {
                    continuation.resume(throwing: Self.cancelled())
                    return
                }
                waiters[id] = continuation
                startRefreshIfNeeded()
            }
        } onCancel: {
            Task { await self.cancelWaiter(id) }
        }
    }

    private func startRefreshIfNeeded() {
        guard inFlight == nil else { return }
        let fetch = self.fetch
        inFlight = Task {
            let result: Result<CachedToken, any Error>
            do {
                result = .success(try await fetch())
            } catch {
                result = .failure(error)
            }
            self.complete(with: result)
        }
    }

    private func complete(with result: Result<CachedToken, any Error>) {
        inFlight = nil
        if case .success(let token) = result { cached = token }
        let resumed = waiters
        waiters = [:]
        for waiter in resumed.values { waiter.resume(with: result) }
    }

    private func cancelWaiter(_ id: Int) {
        waiters.removeValue(forKey: id)?.resume(throwing: Self.cancelled())
    }

    private static func cancelled() -> PubSubError {
        PubSubError(kind: .cancelled, message: "The task waiting for an access token was cancelled.")
    }
}
