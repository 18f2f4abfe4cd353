/// An error starting or running ``HTTPServer``.
public struct HTTPServerError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: Sendable, Equatable {
        case invalidAddress
        case bindFailed
        case listenFailed
        case systemCallFailed
        case alreadyShutDown
    }

    private let code: Code
    /// What failed and, where it helps, what to do.
    public let message: String

    private init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func == (lhs: HTTPServerError, rhs: HTTPServerError) -> Bool { lhs.code == rhs.code }

    /// `host` could not be resolved to an address to bind.
    public static let invalidAddress = HTTPServerError(.invalidAddress, "invalid address")
    /// `bind(2)` failed, e.g. the port is in use.
    public static let bindFailed = HTTPServerError(.bindFailed, "cannot bind")
    /// `listen(2)` failed.
    public static let listenFailed = HTTPServerError(.listenFailed, "cannot listen")
    /// Creating a socket, epoll instance, eventfd or thread failed.
    public static let systemCallFailed = HTTPServerError(.systemCallFailed, "system call failed")
    /// `start()` was called after `shutdown()`; create a new server instead.
    public static let alreadyShutDown = HTTPServerError(
        .alreadyShutDown,
        "The server was shut down and cannot be restarted; create a new HTTPServer."
    )

    static func invalidAddress(_ message: String) -> HTTPServerError { HTTPServerError(.invalidAddress, message) }
    static func bindFailed(_ message: String) -> HTTPServerError { HTTPServerError(.bindFailed, message) }
    static func listenFailed(_ message: String) -> HTTPServerError { HTTPServerError(.listenFailed, message) }
    static func systemCallFailed(_ message: String) -> HTTPServerError { HTTPServerError(.systemCallFailed, message) }
}
