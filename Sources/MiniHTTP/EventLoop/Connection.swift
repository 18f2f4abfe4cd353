/// One client connection. Owned by, and only touched on, its event loop's thread.
final class Connection {
    enum Phase {
        /// Waiting for (the rest of) a request head: `headerTimeout`.
        case head
        /// Waiting for the rest of a body: `bodyTimeout`.
        case body
        /// Between requests on a keep-alive connection: `idleTimeout`.
        case idle
        /// A handler is running: no deadline.
        case processing
        /// A response could not be written at once: `idleTimeout` for the client to read it.
        case writing
        /// The response that ends the connection was sent and the write side shut down;
        /// discarding input until the client closes, so unread input does not turn the close
        /// into a reset that destroys the response.
        case draining
    }

    let id: UInt64
    let fd: Int32
    var parser: HTTPRequestParser
    var phase: Phase = .head
    /// Monotonic nanoseconds after which the phase has timed out.
    var deadline: UInt64
    /// Bytes to send; `writeOffset` of them are already sent.
    var writeBuffer: [UInt8] = []
    var writeOffset = 0
    /// A request was handed to the handler and its response has not been queued yet.
    var inFlight = false
    /// The socket may have unread input (edge-triggered epoll: read until `EAGAIN`).
    var readPending = false
    /// The client shut down its sending side.
    var readEOF = false
    /// Close once `writeBuffer` is sent.
    var closeAfterWrite = false
    /// About the request in flight.
    var keepAlive = true
    var isHeadRequest = false
    var isHTTP10 = false
    var requestsStarted = 0

    init(id: UInt64, fd: Int32, parser: HTTPRequestParser, deadline: UInt64) {
        self.id = id
        self.fd = fd
        self.parser = parser
        self.deadline = deadline
    }

    var hasPendingWrite: Bool { writeOffset < writeBuffer.count }
}
