import Foundation
import Logging
import MiniHTTP

/// What `/readyz` reports.
public struct Readiness: Sendable, Equatable {
    public var ready: Bool
    /// Why not ready (or what was checked), for the response body.
    public var detail: String

    public init(ready: Bool, detail: String) {
        self.ready = ready
        self.detail = detail
    }
}

/// The routes both daemons serve, and request counting.
public enum DaemonRoutes {
    /// `GET /healthz`: 200 while the process runs. `GET /readyz`: 200 or 503 from `readiness`.
    /// `GET /metrics`: the Prometheus text format.
    public static func install(
        on router: inout Router,
        metrics: DaemonMetrics,
        readiness: @escaping @Sendable () async -> Readiness
    ) {
        router.on("GET", "/healthz") { _ in
            .json(200, ["status": "alive"])
        }
        router.on("GET", "/readyz") { _ in
            let state = await readiness()
            return .json(state.ready ? 200 : 503, ["status": state.ready ? "ready" : "not ready", "detail": state.detail])
        }
        router.on("GET", "/metrics") { _ in
            HTTPServerResponse(
                status: 200,
                headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"],
                body: metrics.exposition()
            )
        }
    }

    /// Wraps `router` so every answer is counted in `http_requests_total{method,path,status}`
    /// (paths that are not routes are counted as `other`, so scanners cannot blow up the label set).
    public static func instrumented(
        _ router: Router,
        knownPaths: Set<String>,
        metrics: DaemonMetrics
    ) -> @Sendable (HTTPServerRequest) async -> HTTPServerResponse {
        { request in
            let response = await router.handle(request)
            let path = knownPaths.contains(request.path) ? request.path : "other"
            let method = ["GET", "POST", "HEAD", "PUT", "DELETE"].contains(request.method) ? request.method : "other"
            metrics.counter("http_requests_total", [("method", method), ("path", path), ("status", String(response.status))]).increment()
            return response
        }
    }
}
