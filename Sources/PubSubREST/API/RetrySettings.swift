/// Exponential backoff with jitter for retryable failures, with the names and defaults of
/// Google's client libraries (`initial_retry_delay`, `retry_delay_multiplier`,
/// `max_retry_delay`, `total_timeout`).
///
/// Attempt `n` (0-based) waits a random time between half and all of
/// `min(initialRetryDelay * retryDelayMultiplier^n, maxRetryDelay)` before the next attempt,
/// and no attempt starts after `totalTimeout` has passed since the first one.
public struct RetrySettings: Sendable, Equatable {
    /// Delay before the first retry. Default 100 ms.
    public var initialRetryDelay: Duration
    /// Each delay is the previous one times this. Default 1.3 (4.0 for publish, as Google's publisher).
    public var retryDelayMultiplier: Double
    /// Cap on one delay. Default 60 s.
    public var maxRetryDelay: Duration
    /// No new attempt starts after this long since the first one. Default 600 s.
    public var totalTimeout: Duration
    /// Time allowed for one attempt (one HTTP request). Default 60 s.
    public var rpcTimeout: Duration
    /// At most this many attempts in all (1 disables retries). Default `Int.max` (bounded by `totalTimeout`).
    public var maxAttempts: Int

    public init(
        initialRetryDelay: Duration = .milliseconds(100),
        retryDelayMultiplier: Double = 1.3,
        maxRetryDelay: Duration = .seconds(60),
        totalTimeout: Duration = .seconds(600),
        rpcTimeout: Duration = .seconds(60),
        maxAttempts: Int = .max
    ) {
        self.initialRetryDelay = initialRetryDelay
        self.retryDelayMultiplier = retryDelayMultiplier
        self.maxRetryDelay = maxRetryDelay
        self.totalTimeout = totalTimeout
        self.rpcTimeout = rpcTimeout
        self.maxAttempts = maxAttempts
    }

    /// Google's defaults for administrative calls, pull, acknowledge and modifyAckDeadline.
    public static let `default` = RetrySettings()
    /// Google's defaults for publish: multiplier 4, total timeout 600 s.
    public static let publishDefault = RetrySettings(retryDelayMultiplier: 4.0)
    /// No retries at all.
    public static let none = RetrySettings(maxAttempts: 1)

    /// The un-jittered delay after attempt `attempt` (0-based) failed.
    public func baseDelay(afterAttempt attempt: Int) -> Duration {
        let initial = initialRetryDelay.seconds
        let cap = maxRetryDelay.seconds
        var delay = initial
        var n = 0
        while n < attempt && delay < cap {
            delay *= retryDelayMultiplier
            n += 1
        }
        return .seconds(min(delay, cap))
    }

    /// The delay after attempt `attempt` failed, with jitter: `base * (0.5 + 0.5 * random)`,
    /// `random` in 0...1.
    public func delay(afterAttempt attempt: Int, random: Double = Double.random(in: 0...1)) -> Duration {
        let base = baseDelay(afterAttempt: attempt).seconds
        return .seconds(base * (0.5 + 0.5 * min(max(random, 0), 1)))
    }
}

extension Duration {
    /// The duration in seconds, as a Double.
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
