import CCurl
import Foundation
import Synchronization

/// `HTTPTransport` over libcurl's multi interface.
///
/// One dedicated thread drives every transfer with `curl_multi_poll`, so blocking network I/O
/// never runs on Swift's cooperative thread pool, however many long-poll pulls are in flight.
/// Connections are kept alive and reused through the multi handle's connection cache.
/// Cancelling the calling task removes its transfer at once (a blocked long-poll included).
///
/// TLS peer and host verification are always on; only `http` and `https` are allowed.
/// Which endpoints may be plain `http` is decided by the caller (`PubSubClient` allows it only
/// for the emulator).
public final class CurlTransport: HTTPTransport {
    /// Transport settings. Every field states its default.
    public struct Configuration: Sendable {
        /// Time allowed to establish a TCP (and TLS) connection. Default 10 s.
        public var connectTimeout: Duration
        /// Total time allowed for one request when the request names none. Default 60 s.
        public var requestTimeout: Duration
        /// Largest response body accepted; a larger one fails the request. Default 256 MiB.
        public var maxResponseBytes: Int
        /// At most this many idle connections are kept open for reuse. Default 32.
        public var maxIdleConnections: Int
        /// The `User-Agent` header sent with every request.
        public var userAgent: String

        public init(
            connectTimeout: Duration = .seconds(10),
            requestTimeout: Duration = .seconds(60),
            maxResponseBytes: Int = 256 * 1024 * 1024,
            maxIdleConnections: Int = 32,
            userAgent: String = CurlTransport.defaultUserAgent
        ) {
            self.connectTimeout = connectTimeout
            self.requestTimeout = requestTimeout
            self.maxResponseBytes = maxResponseBytes
            self.maxIdleConnections = maxIdleConnections
            self.userAgent = userAgent
        }

        public static let `default` = Configuration()
    }

    /// `swift-pubsub-rest/<version> libcurl/<version>`.
    public static let defaultUserAgent: String = {
        // curl_version() reads like "libcurl/7.88.1 OpenSSL/3.0.19 zlib/1.2.13 ...".
        let curlVersion = String(cString: curl_version()).split(separator: " ").first.map(String.init) ?? "libcurl"
        return "swift-pubsub-rest/\(PubSubRESTInfo.version) \(curlVersion)"
    }()

    public let configuration: Configuration
    private let loop: CurlMultiLoop

    public init(configuration: Configuration = .default) {
        CurlGlobal.initialize()
        self.configuration = configuration
        self.loop = CurlMultiLoop(maxIdleConnections: configuration.maxIdleConnections)
    }

    deinit {
        loop.stop()
    }

    public func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard let url = URLComponents(string: request.url), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", url.host?.isEmpty == false
        else {
            throw PubSubError(kind: .invalidArgument, message: "'\(request.url)' is not an http or https URL")
        }
        try Task.checkCancellation()
        let transfer = CurlTransfer(
            request: request,
            connectTimeout: configuration.connectTimeout,
            timeout: request.timeout ?? configuration.requestTimeout,
            maxResponseBytes: configuration.maxResponseBytes,
            userAgent: configuration.userAgent
        )
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<HTTPResponse, any Error>) in
                loop.submit(transfer, continuation: continuation)
            }
        } onCancel: {
            transfer.cancel()
            loop.wakeUp()
        }
    }
}

/// The library's version, sent in the `User-Agent`.
public enum PubSubRESTInfo {
    public static let version = "0.1.0"
}

enum CurlGlobal {
    private static let once: Void = {
        _ = curl_global_init(Int(CURL_GLOBAL_ALL))
        // libcurl may write to a socket the peer closed; never let that kill the process.
        signal(SIGPIPE, SIG_IGN)
    }()

    static func initialize() { _ = once }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
