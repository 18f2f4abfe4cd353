import Foundation

/// One HTTP request, as the library sends it.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    /// Header fields in order; names as written.
    public var headers: [(name: String, value: String)]
    public var body: Data?
    /// Total time allowed for this one attempt (connect + send + wait + receive).
    /// `nil` uses the transport's configured default.
    public var timeout: Duration?

    public init(method: String, url: String, headers: [(name: String, value: String)] = [], body: Data? = nil, timeout: Duration? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

/// One HTTP response.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header fields with lower-cased names; a repeated field keeps its last value.
    public var headers: [String: String]
    public var body: Data

    public init(status: Int, headers: [String: String] = [:], body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Sends HTTP requests. `CurlTransport` is the real one; tests may point it at a local server.
///
/// Implementations throw `PubSubError` with kind `.transport` (could not connect, reset...),
/// `.timeout` (the attempt ran past its timeout) or `.cancelled` (the calling task was
/// cancelled), and return any HTTP status, error statuses included, as a response.
public protocol HTTPTransport: Sendable {
    func execute(_ request: HTTPRequest) async throws -> HTTPResponse
}
