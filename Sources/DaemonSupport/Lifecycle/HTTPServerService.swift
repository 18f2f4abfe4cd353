import Logging
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

    public func run() async throws {
        _ = try server.start()
        try await cancelWhenGracefulShutdown {
            try await self.server.run()
        }
    }
}

/// Runs `operation`, giving up after `timeout` with ``TimeoutError``. The operation is
/// cancelled when the time is up.
public func withTimeout<T: Sendable>(
    _ timeout: Duration,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: timeout)
            throw TimeoutError(timeout: timeout)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// ``withTimeout(_:_:)`` ran out of time.
public struct TimeoutError: Error, Sendable, CustomStringConvertible {
    public let timeout: Duration
    public var description: String { "no answer within \(timeout)" }
}
