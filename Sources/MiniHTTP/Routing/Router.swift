/// Dispatches requests by exact path and method.
///
/// An unknown path answers 404; a known path with another method answers 405 with an `Allow`
/// header. `HEAD` falls back to the `GET` handler (the server then omits the body).
public struct Router: Sendable {
    public typealias Handler = @Sendable (HTTPServerRequest) async -> HTTPServerResponse

    private var routes: [String: [String: Handler]] = [:]

    public init() {}

    /// Registers `handler` for `method` (case-sensitive, e.g. `"GET"`) on the exact `path`
    /// (e.g. `"/healthz"`, without query). Registering the same pair again replaces the handler.
    public mutating func on(
        _ method: String,
        _ path: String,
        _ handler: @escaping @Sendable (HTTPServerRequest) async -> HTTPServerResponse
    ) {
        routes[path, default: [:]][method] = handler
    }

    public func handle(_ request: HTTPServerRequest) async -> HTTPServerResponse {
        guard let methods = routes[request.path] else {
            return .error(404, "No route for this path.")
        }
        if let handler = methods[request.method] ?? (request.method == "HEAD" ? methods["GET"] : nil) {
            return await handler(request)
        }
        var allowed = Set(methods.keys)
        if allowed.contains("GET") { allowed.insert("HEAD") }
        var response = HTTPServerResponse.error(405, "Method \(request.method) is not allowed for this path.")
        response.headers.add(name: "Allow", value: allowed.sorted().joined(separator: ", "))
        return response
    }
}
