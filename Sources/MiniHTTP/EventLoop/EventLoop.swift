import CMiniHTTPLinux
import Glibc
import Logging

/// A single-threaded epoll loop that owns the listening socket and every connection.
///
/// It is created on, and only used from, its own thread, so it is deliberately not `Sendable`.
/// Other threads reach it only through its ``LoopInbox``.
final class EventLoop {
    typealias Handler = @Sendable (HTTPServerRequest) async -> HTTPServerResponse

    private static let listenerID: UInt64 = 0
    private static let inboxID: UInt64 = 1
    private static let sweepInterval: UInt64 = 250_000_000
    private static let lingerTime: UInt64 = 2_000_000_000
    private static let maxEvents: Int32 = 256
    private static let readBufferSize = 65_536

    private let epollFD: Int32
    private var listenFD: Int32
    private let inbox: LoopInbox
    private let configuration: HTTPServer.Configuration
    private let logger: Logger
    private let handler: Handler
    private let onStopped: @Sendable () -> Void

    private let headerTimeout: UInt64
    private let bodyTimeout: UInt64
    private let idleTimeout: UInt64

    private var connections: [UInt64: Connection] = [:]
    private var nextID: UInt64 = 2
    private var now: UInt64
    private var nextSweep: UInt64
    private var stopped = false
    private var shuttingDown = false
    private var shutdownDeadline: UInt64 = .max
    private var date: String
    private var batch: [LoopMessage] = []
    private let readBuffer: UnsafeMutableRawBufferPointer
    private let events: UnsafeMutablePointer<epoll_event>

    init(
        epollFD: Int32,
        listenFD: Int32,
        inbox: LoopInbox,
        configuration: HTTPServer.Configuration,
        logger: Logger,
        handler: @escaping Handler,
        onStopped: @escaping @Sendable () -> Void
    ) {
        self.epollFD = epollFD
        self.listenFD = listenFD
        self.inbox = inbox
        self.configuration = configuration
        self.logger = logger
        self.handler = handler
        self.onStopped = onStopped
        headerTimeout = configuration.headerTimeout.nanoseconds
        bodyTimeout = configuration.bodyTimeout.nanoseconds
        idleTimeout = configuration.idleTimeout.nanoseconds
        now = monotonicNanoseconds()
        nextSweep = now + Self.sweepInterval
        date = httpDateNow()
        readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.readBufferSize, alignment: 16)
        events = UnsafeMutablePointer<epoll_event>.allocate(capacity: Int(Self.maxEvents))
    }

    deinit {
        readBuffer.deallocate()
        events.deallocate()
    }

    /// Registers the listener and the inbox with epoll (before the loop thread starts).
    static func register(epollFD: Int32, listenFD: Int32, inbox: LoopInbox) throws(HTTPServerError) {
        var listener = epoll_event()
        listener.events = EPOLLIN.rawValue | EPOLLET.rawValue
        listener.data.u64 = listenerID
        var wakeUp = epoll_event()
        wakeUp.events = EPOLLIN.rawValue | EPOLLET.rawValue
        wakeUp.data.u64 = inboxID
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, listenFD, &listener) == 0,
            epoll_ctl(epollFD, EPOLL_CTL_ADD, inbox.eventFD, &wakeUp) == 0
        else {
            throw .systemCallFailed("cannot register with epoll: \(errnoDescription())")
        }
    }

    // MARK: - Loop

    func run() {
        logger.debug("Event loop started")
        while !stopped {
            var wait = nextSweep > now ? (nextSweep - now) / 1_000_000 + 1 : 0
            if !inbox.prepareToSleep() {
                wait = 0
            }
            let count = epoll_wait(epollFD, events, Self.maxEvents, Int32(wait))
            now = monotonicNanoseconds()
            if count < 0 {
                if errno == EINTR { continue }
                logger.info("epoll_wait failed; stopping the event loop", metadata: ["error": "\(errnoDescription())"])
                break
            }
            for index in 0..<Int(count) {
                let event = events[index]
                handle(id: event.data.u64, events: event.events)
                if stopped { break }
            }
            // Responses and shutdown requests; handlers that finish without suspending (see
            // `startsHandlersOnEventLoop`) post theirs from this thread without an eventfd write.
            processInbox()
            if now >= nextSweep {
                sweep()
                nextSweep = now + Self.sweepInterval
            }
        }
        tearDown()
    }

    private func handle(id: UInt64, events: UInt32) {
        switch id {
        case Self.listenerID:
            acceptConnections()
        case Self.inboxID:
            inbox.acknowledgeWakeUp()
        default:
            guard let connection = connections[id] else { return }
            if events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
                close(connection)
                return
            }
            if events & EPOLLOUT.rawValue != 0, connection.hasPendingWrite {
                flush(connection)
                if connections[id] == nil { return }
            }
            if events & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue) != 0 {
                connection.readPending = true
                drive(connection)
            }
        }
    }

    private func processInbox() {
        guard !stopped else { return }
        inbox.drain(into: &batch)
        for message in batch {
            switch message {
            case .response(let id, let response):
                // The connection may be gone (client reset, shutdown grace period over).
                guard let connection = connections[id], connection.inFlight else { continue }
                connection.inFlight = false
                respond(connection, response)
            case .shutdown:
                beginShutdown()
            }
        }
        batch.removeAll(keepingCapacity: true)
    }

    // MARK: - Accepting

    private func acceptConnections() {
        while listenFD >= 0 {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    cminihttp_accept4(listenFD, $0, &length, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
                }
            }
            if fd < 0 {
                switch errno {
                case EAGAIN, EWOULDBLOCK: return
                case EINTR, ECONNABORTED, EPROTO: continue
                default:
                    // EMFILE, ENFILE, ENOBUFS...: retried on the next sweep.
                    logger.info("Cannot accept a connection", metadata: ["error": "\(errnoDescription())"])
                    return
                }
            }
            if connections.count >= configuration.maxConnections {
                logger.info("Connection limit reached; refusing a connection", metadata: ["limit": "\(configuration.maxConnections)"])
                var bytes: [UInt8] = []
                HTTPServerResponse.error(503, "The server has too many open connections; retry later.")
                    .serialize(into: &bytes, connectionHeader: "close", date: date, omitBody: false)
                _ = Glibc.send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
                Glibc.shutdown(fd, Int32(SHUT_WR))
                Glibc.close(fd)
                continue
            }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let id = nextID
            nextID += 1
            let remote = describeAddress(storage).map { "\($0.0):\($0.1)" }
            let parser = HTTPRequestParser(
                maxHeaderBytes: configuration.maxHeaderBytes,
                maxBodyBytes: configuration.maxBodyBytes,
                remoteAddress: remote
            )
            let connection = Connection(id: id, fd: fd, parser: parser, deadline: now &+ headerTimeout)
            var event = epoll_event()
            event.events = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue
            event.data.u64 = id
            guard epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0 else {
                logger.info("Cannot register a connection with epoll", metadata: ["error": "\(errnoDescription())"])
                Glibc.close(fd)
                continue
            }
            connections[id] = connection
            logger.debug("Accepted connection", metadata: ["connection.id": "\(id)", "remote": "\(remote ?? "?")"])
        }
    }

    // MARK: - Reading and parsing

    private enum ReadOutcome {
        case data
        case wouldBlock
        case eof
        case failed
    }

    /// One `read(2)` into the parser (or discarded while draining).
    private func readOnce(_ connection: Connection) -> ReadOutcome {
        while true {
            let count = read(connection.fd, readBuffer.baseAddress, readBuffer.count)
            if count > 0 {
                if connection.phase != .draining {
                    connection.parser.append(UnsafeRawBufferPointer(rebasing: readBuffer[0..<count]))
                }
                // A short read drained the socket; edge-triggered epoll reports any later data.
                connection.readPending = count == readBuffer.count
                return .data
            }
            if count == 0 {
                connection.readPending = false
                connection.readEOF = true
                return .eof
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK:
                connection.readPending = false
                return .wouldBlock
            default:
                return .failed
            }
        }
    }

    /// Makes all the progress possible on a connection's input.
    private func drive(_ connection: Connection) {
        if connection.phase == .draining {
            while connection.readPending {
                switch readOnce(connection) {
                case .data, .wouldBlock: continue
                case .eof, .failed:
                    close(connection)
                    return
                }
            }
            return
        }
        while !connection.inFlight && !connection.hasPendingWrite {
            let event: HTTPRequestParser.Event
            do {
                event = try connection.parser.next()
            } catch {
                logger.debug(
                    "Rejected a malformed request",
                    metadata: ["connection.id": "\(connection.id)", "status": "\(error.status)", "reason": "\(error.message)"]
                )
                connection.keepAlive = false
                respond(connection, .error(error.status, error.message))
                return
            }
            switch event {
            case .request(let request):
                dispatch(request, on: connection)
                return
            case .expectContinue:
                connection.writeBuffer.append(contentsOf: "HTTP/1.1 100 Continue\r\n\r\n".utf8)
                guard sendPending(connection) else { return }
            case .needMoreData:
                updateReadDeadline(connection)
                if connection.readEOF {
                    close(connection)
                    return
                }
                guard connection.readPending else { return }
                switch readOnce(connection) {
                case .data, .wouldBlock, .eof: continue
                case .failed:
                    close(connection)
                    return
                }
            }
        }
    }

    private func updateReadDeadline(_ connection: Connection) {
        let phase: Connection.Phase
        if connection.parser.isReadingBody {
            phase = .body
        } else if connection.parser.isIdle && connection.requestsStarted > 0 {
            phase = .idle
        } else {
            phase = .head
        }
        // A fresh connection is in `.head` from accept, so its first byte does not reset the clock.
        guard phase != connection.phase else { return }
        connection.phase = phase
        switch phase {
        case .body: connection.deadline = now &+ bodyTimeout
        case .idle: connection.deadline = now &+ idleTimeout
        default: connection.deadline = now &+ headerTimeout
        }
    }

    private func dispatch(_ request: HTTPServerRequest, on connection: Connection) {
        connection.inFlight = true
        connection.requestsStarted += 1
        connection.phase = .processing
        connection.deadline = .max
        connection.keepAlive = request.wantsKeepAlive && !shuttingDown
        connection.isHeadRequest = request.method == "HEAD"
        connection.isHTTP10 = request.version == "HTTP/1.0"
        let id = connection.id
        let handler = self.handler
        let inbox = self.inbox
        if configuration.startsHandlersOnEventLoop {
            Task.immediate {
                let response = await handler(request)
                inbox.post(.response(connectionID: id, response))
            }
        } else {
            Task {
                let response = await handler(request)
                inbox.post(.response(connectionID: id, response))
            }
        }
    }

    // MARK: - Writing

    private func respond(_ connection: Connection, _ response: HTTPServerResponse) {
        let keepAlive = connection.keepAlive && !shuttingDown
        let connectionHeader: String? = keepAlive ? (connection.isHTTP10 ? "keep-alive" : nil) : "close"
        response.serialize(
            into: &connection.writeBuffer,
            connectionHeader: connectionHeader,
            date: date,
            omitBody: connection.isHeadRequest
        )
        connection.isHeadRequest = false
        connection.closeAfterWrite = !keepAlive
        flush(connection)
    }

    /// Sends as much of the write buffer as the socket takes.
    /// - Returns: `true` when everything was sent; `false` when blocked or the connection was closed.
    private func sendPending(_ connection: Connection) -> Bool {
        while connection.hasPendingWrite {
            let offset = connection.writeOffset
            let fd = connection.fd
            let count = connection.writeBuffer.withUnsafeBytes { bytes in
                let pending = UnsafeRawBufferPointer(rebasing: bytes[offset...])
                return Glibc.send(fd, pending.baseAddress, pending.count, Int32(MSG_NOSIGNAL))
            }
            if count >= 0 {
                connection.writeOffset += count
                continue
            }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK:
                if connection.phase != .writing {
                    connection.phase = .writing
                    connection.deadline = monotonicNanoseconds() &+ idleTimeout
                }
                return false
            default:
                close(connection)
                return false
            }
        }
        // The idle timeout runs from the end of the last response write. `now` dates from the
        // last `epoll_wait` return, which can be long before this write: a handler started on
        // the loop (`startsHandlersOnEventLoop`) runs in between, and so does all other work of
        // this loop iteration. Refresh it so the deadlines set next (idle) start from here.
        now = monotonicNanoseconds()
        if connection.writeBuffer.capacity > 65_536 {
            connection.writeBuffer = []
        } else {
            connection.writeBuffer.removeAll(keepingCapacity: true)
        }
        connection.writeOffset = 0
        return true
    }

    /// Sends the write buffer; once it is sent, closes or reads the next request.
    private func flush(_ connection: Connection) {
        guard sendPending(connection) else { return }
        // A response serialized before shutdown began (still being written then) could not carry
        // `Connection: close`; once it is out, the connection must not go back to idle.
        if connection.closeAfterWrite
            || (shuttingDown && !connection.inFlight && !connection.parser.isReadingBody)
        {
            finish(connection)
        } else if !connection.inFlight {
            drive(connection)
        }
    }

    /// Closes after the last response: at once if the client already closed, else after draining.
    private func finish(_ connection: Connection) {
        if connection.readEOF {
            close(connection)
            return
        }
        Glibc.shutdown(connection.fd, Int32(SHUT_WR))
        connection.phase = .draining
        connection.deadline = now &+ Self.lingerTime
        connection.readPending = true
        drive(connection)
        checkShutdownComplete()
    }

    private func close(_ connection: Connection) {
        guard connections.removeValue(forKey: connection.id) != nil else { return }
        Glibc.close(connection.fd)
        logger.debug("Closed connection", metadata: ["connection.id": "\(connection.id)"])
        checkShutdownComplete()
    }

    /// While shutting down, stops the loop once no connection has a request left to answer.
    private func checkShutdownComplete() {
        guard shuttingDown, !stopped else { return }
        if connections.values.allSatisfy({ $0.phase == .draining }) {
            stopped = true
        }
    }

    // MARK: - Timers and shutdown

    private func sweep() {
        date = httpDateNow()
        if listenFD >= 0 {
            acceptConnections()
        }
        if shuttingDown && now >= shutdownDeadline {
            logger.info("Shutdown grace period over; closing remaining connections", metadata: ["connections": "\(connections.count)"])
            for connection in Array(connections.values) {
                close(connection)
            }
            stopped = true
            return
        }
        for connection in Array(connections.values) where connection.deadline <= now {
            switch connection.phase {
            case .head, .body:
                let sawBytes = connection.phase == .body || !connection.parser.isIdle
                logger.debug("Request timed out", metadata: ["connection.id": "\(connection.id)", "phase": "\(connection.phase)"])
                if sawBytes {
                    var bytes: [UInt8] = []
                    HTTPServerResponse.error(408, "The request was not received in time.")
                        .serialize(into: &bytes, connectionHeader: "close", date: date, omitBody: false)
                    _ = Glibc.send(connection.fd, bytes, bytes.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
                }
                close(connection)
            case .idle, .writing, .draining:
                close(connection)
            case .processing:
                break
            }
        }
    }

    private func beginShutdown() {
        guard !shuttingDown else { return }
        shuttingDown = true
        shutdownDeadline = now &+ configuration.shutdownGracePeriod.nanoseconds
        logger.info("Shutting down", metadata: ["connections": "\(connections.count)"])
        if listenFD >= 0 {
            epoll_ctl(epollFD, EPOLL_CTL_DEL, listenFD, nil)
            Glibc.close(listenFD)
            listenFD = -1
        }
        for connection in Array(connections.values) {
            if connection.inFlight || connection.hasPendingWrite || connection.parser.isReadingBody {
                connection.keepAlive = false
            } else {
                close(connection)
            }
        }
        checkShutdownComplete()
    }

    private func tearDown() {
        for connection in Array(connections.values) {
            close(connection)
        }
        if listenFD >= 0 {
            Glibc.close(listenFD)
            listenFD = -1
        }
        inbox.close()
        Glibc.close(epollFD)
        logger.debug("Event loop stopped")
        onStopped()
    }
}
