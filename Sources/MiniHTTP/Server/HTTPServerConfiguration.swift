extension HTTPServer {
    /// Settings for ``HTTPServer``. Every limit is enforced per connection by the event loop.
    public struct Configuration: Sendable {
        /// Address to bind: an IPv4 or IPv6 literal or a host name. Default `"0.0.0.0"`.
        public var host: String
        /// TCP port to bind; `0` picks a free ephemeral port (read it from `start()` or `port`).
        /// Default `8080`.
        public var port: Int
        /// Most simultaneously open client connections. A connection accepted beyond this gets
        /// `503 Service Unavailable` and is closed. Default `1024` connections.
        public var maxConnections: Int
        /// Most bytes in a request line plus header fields (also the limit for chunked trailers).
        /// Larger heads get `431`. Default `16384` bytes (16 KiB).
        public var maxHeaderBytes: Int
        /// Largest request body, after de-chunking. Larger bodies get `413`.
        /// Default `1_048_576` bytes (1 MiB).
        public var maxBodyBytes: Int
        /// Time allowed from a request's first byte (or from accepting the connection) until its
        /// head is complete; then `408` and close. Defends against slowloris. Default 10 seconds.
        public var headerTimeout: Duration
        /// Time allowed from the end of the head until the body is complete; then `408` and close.
        /// Default 30 seconds.
        public var bodyTimeout: Duration
        /// Time an idle keep-alive connection (between requests) stays open. Also the time a
        /// client may take to read a response before it is dropped. Default 60 seconds.
        public var idleTimeout: Duration
        /// How long `shutdown()` waits for in-flight requests before closing every connection.
        /// Default 10 seconds.
        public var shutdownGracePeriod: Duration
        /// `listen(2)` backlog: connections the kernel queues before they are accepted.
        /// Default `1024` connections (capped by `net.core.somaxconn`).
        public var backlog: Int
        /// Whether each handler's task starts on the event loop thread (`Task.immediate`) and
        /// runs there until its first suspension, instead of being enqueued on the global
        /// executor. Handlers that finish without suspending then cost no thread hop at all,
        /// which roughly doubles throughput for cheap handlers; once a handler suspends it
        /// resumes on the global executor. Set it to `false` if handlers do long synchronous
        /// work before their first `await` (that work would stall every connection).
        /// Default `true`.
        public var startsHandlersOnEventLoop: Bool

        public init(
            host: String = "0.0.0.0",
            port: Int = 8080,
            maxConnections: Int = 1024,
            maxHeaderBytes: Int = 16_384,
            maxBodyBytes: Int = 1_048_576,
            headerTimeout: Duration = .seconds(10),
            bodyTimeout: Duration = .seconds(30),
            idleTimeout: Duration = .seconds(60),
            shutdownGracePeriod: Duration = .seconds(10),
            backlog: Int = 1024,
            startsHandlersOnEventLoop: Bool = true
        ) {
            self.host = host
            self.port = port
            self.maxConnections = maxConnections
            self.maxHeaderBytes = maxHeaderBytes
            self.maxBodyBytes = maxBodyBytes
            self.headerTimeout = headerTimeout
            self.bodyTimeout = bodyTimeout
            self.idleTimeout = idleTimeout
            self.shutdownGracePeriod = shutdownGracePeriod
            self.backlog = backlog
            self.startsHandlersOnEventLoop = startsHandlersOnEventLoop
        }

        /// All defaults: `0.0.0.0:8080`, 1024 connections, 16 KiB heads, 1 MiB bodies,
        /// 10 s header, 30 s body, 60 s idle timeouts, 10 s shutdown grace period.
        public static let `default` = Configuration()
    }
}
