import DaemonSupport
import PubSubREST

/// `/readyz` for ReservationsService: the topic answers `getTopic`. The answer is cached for
/// `ttl`, so probes do not turn into a request to Pub/Sub each.
actor TopicReadiness {
    private let client: PubSubClient
    private let topicID: String
    private let ttl: Duration
    private let probeTimeout: Duration
    private var cached: (at: ContinuousClock.Instant, value: Readiness)?
    private var inFlight: Task<Readiness, Never>?

    init(client: PubSubClient, topicID: String, ttl: Duration = .seconds(3), probeTimeout: Duration = .seconds(2)) {
        self.client = client
        self.topicID = topicID
        self.ttl = ttl
        self.probeTimeout = probeTimeout
    }

    func check() async -> Readiness {
        if let cached, ContinuousClock.now - cached.at < ttl { return cached.value }
        if let inFlight { return await inFlight.value }
        let client = client, topicID = topicID, timeout = probeTimeout
        let task = Task<Readiness, Never> {
            do {
                _ = try await withTimeout(timeout) { try await client.getTopic(topicID) }
                return Readiness(ready: true, detail: "topic \(topicID) reachable")
            } catch {
                return Readiness(ready: false, detail: "topic \(topicID): \(error)")
            }
        }
        inFlight = task
        let value = await task.value
        inFlight = nil
        cached = (ContinuousClock.now, value)
        return value
    }
}
