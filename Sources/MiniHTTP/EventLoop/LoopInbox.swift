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
            let wasEmpty = state.pending.isEmpty
            state.pending.append(message)
            if wasEmpty {
                // Only the first message of a batch needs a wake-up: the loop drains the whole
                // queue after reading the eventfd. Written under the lock so `close()` cannot
                // race and leave us writing to a recycled descriptor.
                var one: UInt64 = 1
                _ = write(eventFD, &one, 8)
            }
        }
    }

    /// Swaps the queued messages into `batch` (which must be empty), keeping both buffers' capacity.
    func drain(into batch: inout [LoopMessage]) {
        state.withLock { state in
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
