import CMiniHTTPLinux
import Glibc
import Synchronization

/// What other threads ask of an event loop.
enum LoopMessage: Sendable {
    /// A handler finished the request of connection `connectionID`.
    case response(connectionID: UInt64, HTTPServerResponse)
    /// Begin a graceful shutdown.
    case shutdown
}

/// The thread-safe way into an event loop: a Mutex-protected queue plus an eventfd that wakes
/// the loop's `epoll_wait`.
final class LoopInbox: Sendable {
    private struct State {
        var pending: [LoopMessage] = []
        var closed = false
        /// The loop is (about to be) blocked in `epoll_wait` and needs the eventfd to wake up.
        var loopSleeping = false
    }

    let eventFD: Int32
    private let state = Mutex(State())

    init() throws(HTTPServerError) {
        let fd = eventfd(0, Int32(EFD_NONBLOCK) | Int32(EFD_CLOEXEC))
        guard fd >= 0 else {
            throw .systemCallFailed("cannot create an eventfd: \(errnoDescription())")
        }
        eventFD = fd
    }

    /// Queues `message` and wakes the loop. Dropped once the loop has stopped.
    func post(_ message: LoopMessage) {
        state.withLock { state in
            guard !state.closed else { return }
            state.pending.append(message)
            if state.loopSleeping {
                // Only a sleeping loop needs the eventfd; an awake one drains the queue before it
                // sleeps again. Written under the lock so `close()` cannot race and leave us
                // writing to a recycled descriptor.
                state.loopSleeping = false
                var one: UInt64 = 1
                _ = write(eventFD, &one, 8)
            }
        }
    }

    /// Called by the loop before `epoll_wait`: returns `true` (and marks the loop as sleeping,
    /// so the next `post` writes the eventfd) when no message is waiting.
    func prepareToSleep() -> Bool {
        state.withLock { state in
            guard state.pending.isEmpty else { return false }
            state.loopSleeping = true
            return true
        }
    }

    /// Swaps the queued messages into `batch` (which must be empty), keeping both buffers'
    /// capacity, and marks the loop as awake.
    func drain(into batch: inout [LoopMessage]) {
        state.withLock { state in
            state.loopSleeping = false
            swap(&state.pending, &batch)
        }
    }

    /// Resets the eventfd counter after a wake-up.
    func acknowledgeWakeUp() {
        var value: UInt64 = 0
        _ = read(eventFD, &value, 8)
    }

    /// Stops accepting messages and closes the eventfd.
    func close() {
        state.withLock { state in
            guard !state.closed else { return }
            state.closed = true
            state.pending.removeAll()
            _ = Glibc.close(eventFD)
        }
    }
}
