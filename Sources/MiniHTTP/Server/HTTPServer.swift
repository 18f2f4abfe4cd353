import CMiniHTTPLinux
import Foundation
import Glibc
import Logging
import Synchronization

/// A small HTTP/1.1 server: one epoll event loop on a dedicated thread, `async` handlers.
///
/// The loop accepts connections, parses requests, and starts a `Task` per request for the
/// handler; the response comes back through the loop's inbox and is written in request order
/// (one request at a time per connection; pipelined requests wait in the parser's buffer).
public final class HTTPServer: Sendable {
    public typealias Handler = @Sendable (HTTPServerRequest) async -> HTTPServerResponse

    public let configuration: Configuration
    private let logger: Logger
    private let handler: Handler
    private let state = Mutex(State())

    private struct State {
        enum Phase {
            case idle
            case running(port: Int, inbox: LoopInbox)
            case stopping(port: Int)
            case stopped
        }

        var phase: Phase = .idle
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    public init(
        configuration: Configuration,
        logger: Logger,
        handler: @escaping @Sendable (HTTPServerRequest) async -> HTTPServerResponse
    ) {
        self.configuration = configuration
        self.logger = logger
        self.handler = handler
    }

    public convenience init(configuration: Configuration, logger: Logger, router: Router) {
        self.init(configuration: configuration, logger: logger, handler: { await router.handle($0) })
    }

    /// The bound port while the server runs or shuts down; `nil` before `start()` and after shutdown.
    public var port: Int? {
        state.withLock { state in
            switch state.phase {
            case .running(let port, _), .stopping(let port): port
            case .idle, .stopped: nil
            }
        }
    }

    /// Binds, listens and starts the event loop thread. Returns the bound port.
    /// Calling it again while running returns the same port.
    /// - Throws: ``HTTPServerError``, e.g. `cannot bind 0.0.0.0:8080: Address already in use`.
    @discardableResult
    public func start() throws -> Int {
        try state.withLock { state throws(HTTPServerError) -> Int in
            switch state.phase {
            case .running(let port, _), .stopping(let port):
                return port
            case .stopped:
                throw HTTPServerError.alreadyShutDown
            case .idle:
                break
            }
            ignoreSIGPIPE()
            let (listenFD, port) = try makeListeningSocket(
                host: configuration.host,
                port: configuration.port,
                backlog: configuration.backlog
            )
            let epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
            guard epollFD >= 0 else {
                let reason = errnoDescription()
                Glibc.close(listenFD)
                throw HTTPServerError.systemCallFailed("cannot create an epoll instance: \(reason)")
            }
            let inbox: LoopInbox
            do throws(HTTPServerError) {
                inbox = try LoopInbox()
                try EventLoop.register(epollFD: epollFD, listenFD: listenFD, inbox: inbox)
            } catch {
                Glibc.close(listenFD)
                Glibc.close(epollFD)
                throw error
            }
            let configuration = self.configuration
            let logger = self.logger
            let handler = self.handler
            let thread = Thread { [self] in
                // Named from inside: on Linux a new thread otherwise inherits its creator's name.
                cminihttp_set_thread_name("MiniHTTP-loop")
                let loop = EventLoop(
                    epollFD: epollFD,
                    listenFD: listenFD,
                    inbox: inbox,
                    configuration: configuration,
                    logger: logger,
                    handler: handler,
                    onStopped: { self.loopDidStop() }
                )
                loop.run()
            }
            thread.start()
            state.phase = .running(port: port, inbox: inbox)
            logger.info("HTTP server listening", metadata: ["host": "\(configuration.host)", "port": "\(port)"])
            return port
        }
    }

    /// Starts the server if needed, then suspends until it has shut down.
    /// Cancelling the calling task starts a graceful shutdown; `run()` returns once it completes.
    public func run() async throws {
        try start()
        await withTaskCancellationHandler {
            await waitUntilStopped()
        } onCancel: {
            initiateShutdown()
        }
    }

    /// Graceful shutdown: closes the listener (new connections are refused), closes idle
    /// connections, lets in-flight requests finish (their responses carry `Connection: close`)
    /// for up to `shutdownGracePeriod`, then closes everything and stops the loop thread.
    /// Idempotent; returns when the loop has stopped.
    public func shutdown() async {
        initiateShutdown()
        await waitUntilStopped()
    }

    private func initiateShutdown() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            switch state.phase {
            case .idle:
                state.phase = .stopped
                let waiters = state.waiters
                state.waiters = []
                return waiters
            case .running(let port, let inbox):
                state.phase = .stopping(port: port)
                inbox.post(.shutdown)
                return []
            case .stopping, .stopped:
                return []
            }
        }
        for waiter in waiters { waiter.resume() }
    }

    private func waitUntilStopped() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let alreadyStopped = state.withLock { state in
                if case .stopped = state.phase { return true }
                state.waiters.append(continuation)
                return false
            }
            if alreadyStopped { continuation.resume() }
        }
    }

    private func loopDidStop() {
        let waiters = state.withLock { state in
            state.phase = .stopped
            let waiters = state.waiters
            state.waiters = []
            return waiters
        }
        logger.info("HTTP server stopped")
        for waiter in waiters { waiter.resume() }
    }
}

private let sigpipeIgnored: Bool = {
    signal(SIGPIPE, SIG_IGN)
    return true
}()

/// Writes to a closed socket must fail with EPIPE rather than kill the process. `send` already
/// passes MSG_NOSIGNAL; this covers any other write path, once per process.
private func ignoreSIGPIPE() {
    _ = sigpipeIgnored
}
