import Synchronization

/// The last `capacity` message IDs seen, to tell a redelivery from a first delivery. Bounded:
/// the oldest ID is forgotten when a new one arrives at capacity (a ring buffer plus a set).
public final class DuplicateWindow: Sendable {
    public let capacity: Int
    private let state: Mutex<State>

    struct State {
        var ring: [String] = []
        var next = 0
        var seen: Set<String> = []
    }

    public init(capacity: Int = 10_000) {
        precondition(capacity > 0, "capacity must be positive")
        self.capacity = capacity
        self.state = Mutex(State())
    }

    /// Records `id`; true when it was already in the window.
    public func observe(_ id: String) -> Bool {
        state.withLock { state in
            if state.seen.contains(id) { return true }
            if state.ring.count < capacity {
                state.ring.append(id)
            } else {
                state.seen.remove(state.ring[state.next])
                state.ring[state.next] = id
                state.next = (state.next + 1) % capacity
            }
            state.seen.insert(id)
            return false
        }
    }

    /// IDs currently remembered (at most `capacity`).
    public var count: Int { state.withLock { $0.seen.count } }
}
