/// A request received by ``HTTPServer``, fully read (the body is in memory).
public struct HTTPServerRequest: Sendable {
    /// The method, as sent (`GET`, `POST`, ...). Methods are case-sensitive.
    public var method: String
    /// The request target's path, without the query and not percent-decoded (`/a/b`).
    public var path: String
    /// The query after `?`, not decoded; `nil` when the target has no `?`.
    public var query: String?
    /// `HTTP/1.1` or `HTTP/1.0`.
    public var version: String
    public var headers: HTTPHeaders
    /// The body, de-chunked when it was sent with `Transfer-Encoding: chunked`.
    public var body: [UInt8]
    /// The peer's address as `ip:port` (`[ip]:port` for IPv6), when known.
    public var remoteAddress: String?

    public init(
        method: String,
        path: String,
        query: String? = nil,
        version: String = "HTTP/1.1",
        headers: HTTPHeaders = HTTPHeaders(),
        body: [UInt8] = [],
        remoteAddress: String? = nil
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
    }

    /// Whether the client asked to keep the connection open after the response:
    /// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`.
    var wantsKeepAlive: Bool {
        let connection = headers["Connection"]
        if version == "HTTP/1.0" {
            return connection.map { headerValue($0, containsToken: "keep-alive") } ?? false
        }
        return !(connection.map { headerValue($0, containsToken: "close") } ?? false)
    }
}
