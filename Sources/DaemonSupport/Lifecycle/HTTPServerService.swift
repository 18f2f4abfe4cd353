import Logging
import Synchronization
import MiniHTTP
import ServiceLifecycle

/// `HTTPServer` as a ServiceLifecycle `Service`: binds in ``start()`` (so a port conflict is a
/// start-up error), serves in `run()`, and shuts down gracefully (stop accepting, finish
/// in-flight requests) when the group shuts down.
public final class HTTPServerService: Service, Sendable {
    public let server: HTTPServer

    public init(server: HTTPServer) {
        self.server = server
    }

    /// Binds and listens; returns the bound port.
    @discardableResult
    public func start() throws -> Int {
        try server.start()
    }

    /// A server for a daemon, already listening on `host:port` and logged as "Listening";
    /// a bind failure is a ``StartupError`` naming the address.
    public static func listening(
        host: String, port: Int, logger: Logger, handler: @escaping HTTPServer.Handler
    ) throws -> HTTPServerService {
        let service = HTTPServerService(server: HTTPServer(configuration: .init(host: host, port: port), logger: logger, handler: handler))
        let bound: Int
        do {
            bound = try service.start()
        } catch {
            throw StartupError("cannot listen on \(host):\(port): \(error)")
        }
        logger.info("Listening", metadata: ["host": "\(host)", "port": "\(bound)"])
        return service
    }

    public func run() async throws {
        _ = try server.start()
        try await cancelWhenGracefulShutdown {
            try await self.server.run()
        }
    }
}

/// Runs `operation`, giving up after `timeout` with ``TimeoutError``: the caller gets the
/// error on time even when the operation ignores cancellation (it is cancelled, and its late
/// result is dropped). Cancelling the caller throws `CancellationError` at once.
public func withTimeout<T: Sendable>(
    _ timeout: Duration,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let race = Race<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            race.start(continuation)
            let work = Task {
                do { race.finish(.success(try await operation())) } catch { race.finish(.failure(error)) }
            }
            let timer = Task {
                try? await Task.sleep(for: timeout)
                if !Task.isCancelled, race.finish(.failure(TimeoutError(timeout: timeout))) { work.cancel() }
            }
            race.onFinish { timer.cancel() }
        }
    } onCancel: {
        race.finish(.failure(CancellationError()))
    }
}

/// The first of several results resumes the continuation; the others are dropped.
private final class Race<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var pending: Result<T, any Error>?
        var done = false
        var cleanup: [@Sendable () -> Void] = []
    }
    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>) {
        let early = state.withLock { state -> Result<T, any Error>? in
            if let pending = state.pending { return pending }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    func onFinish(_ action: @escaping @Sendable () -> Void) {
        let now = state.withLock { state -> Bool in
            if state.done { return true }
            state.cleanup.append(action)
            return false
        }
        if now { action() }
    }

    /// True when this result won.
    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let (won, continuation, cleanup) = state.withLock { state -> (Bool, CheckedContinuation<T, any Error>?, [@Sendable () -> Void]) in
            if state.done { return (false, nil, []) }
            state.done = true
            let continuation = state.continuation
            state.continuation = nil
            if continuation == nil { state.pending = result }
            let cleanup = state.cleanup
            state.cleanup = []
            return (true, continuation, cleanup)
        }
        continuation?.resume(with: result)
        for action in cleanup { action() }
        return won
    }
}

/// ``withTimeout(_:_:)`` ran out of time.
public struct TimeoutError: Error, Sendable, CustomStringConvertible {
    public let timeout: Duration
    public var description: String { "no answer within \(timeout)" }
}
