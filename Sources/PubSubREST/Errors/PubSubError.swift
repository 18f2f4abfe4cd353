import Foundation

/// The one error type of PubSubREST.
///
/// An extensible struct rather than an enum, so kinds can be added without breaking users
/// (the pattern of async-http-client's `HTTPClientError`). Compare with the static members:
///
/// ```swift
/// catch let error as PubSubError where error.kind == .api && error.code == .notFound { ... }
/// ```
public struct PubSubError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case api, transport, timeout, cancelled, credentials, authentication
            case invalidArgument, invalidResponse, shutdown, flowControl, orderingKeyPaused
            case ackFailed
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The Pub/Sub API (or the token endpoint) answered with an HTTP error status.
        public static let api = Kind(.api)
        /// The request did not complete: DNS, connect, TLS, reset connection (curl's own text).
        public static let transport = Kind(.transport)
        /// A request or a retry budget ran out of time.
        public static let timeout = Kind(.timeout)
        /// The caller's task was cancelled.
        public static let cancelled = Kind(.cancelled)
        /// A credentials file is missing or malformed, or no credentials could be found.
        public static let credentials = Kind(.credentials)
        /// Getting an access token failed (token endpoint or metadata server).
        public static let authentication = Kind(.authentication)
        /// The caller passed something the API would reject (a bad resource name, an empty message...).
        public static let invalidArgument = Kind(.invalidArgument)
        /// The server answered 2xx with a body that could not be decoded.
        public static let invalidResponse = Kind(.invalidResponse)
        /// The publisher or subscriber was shut down and refuses new work.
        public static let shutdown = Kind(.shutdown)
        /// Flow control limits were exceeded and the behaviour is `.failFast`.
        public static let flowControl = Kind(.flowControl)
        /// A previous publish with this ordering key failed; call `resumePublish(orderingKey:)`.
        public static let orderingKeyPaused = Kind(.orderingKeyPaused)
        /// An acknowledgement was rejected (reported for exactly-once subscriptions).
        public static let ackFailed = Kind(.ackFailed)

        public var description: String { base.rawValue }
    }

    /// A `google.rpc.Code` name, as found in the `status` field of a JSON error body.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let cancelled = Code(rawValue: "CANCELLED")
        public static let unknown = Code(rawValue: "UNKNOWN")
        public static let invalidArgument = Code(rawValue: "INVALID_ARGUMENT")
        public static let deadlineExceeded = Code(rawValue: "DEADLINE_EXCEEDED")
        public static let notFound = Code(rawValue: "NOT_FOUND")
        public static let alreadyExists = Code(rawValue: "ALREADY_EXISTS")
        public static let permissionDenied = Code(rawValue: "PERMISSION_DENIED")
        public static let resourceExhausted = Code(rawValue: "RESOURCE_EXHAUSTED")
        public static let failedPrecondition = Code(rawValue: "FAILED_PRECONDITION")
        public static let aborted = Code(rawValue: "ABORTED")
        public static let outOfRange = Code(rawValue: "OUT_OF_RANGE")
        public static let unimplemented = Code(rawValue: "UNIMPLEMENTED")
        public static let `internal` = Code(rawValue: "INTERNAL")
        public static let unavailable = Code(rawValue: "UNAVAILABLE")
        public static let dataLoss = Code(rawValue: "DATA_LOSS")
        public static let unauthenticated = Code(rawValue: "UNAUTHENTICATED")

        /// The code Google's HTTP mapping gives a status when the body names none.
        public static func fromHTTPStatus(_ status: Int) -> Code {
            switch status {
            case 400: return .invalidArgument
            case 401: return .unauthenticated
            case 403: return .permissionDenied
            case 404: return .notFound
            case 409: return .alreadyExists
            case 412: return .failedPrecondition
            case 429: return .resourceExhausted
            case 499: return .cancelled
            case 500: return .internal
            case 501: return .unimplemented
            case 503: return .unavailable
            case 504: return .deadlineExceeded
            default: return status >= 500 ? .internal : .unknown
            }
        }

        /// Codes Google's clients retry by default.
        public var isRetryable: Bool {
            switch self {
            case .unavailable, .deadlineExceeded, .resourceExhausted, .internal, .unknown, .aborted:
                return true
            default:
                return false
            }
        }
    }

    /// What kind of failure this is.
    public let kind: Kind
    /// A human-readable message: what failed and, where it helps, what to do.
    public let message: String
    /// The HTTP status, when the server answered.
    public let httpStatus: Int?
    /// The `google.rpc.Status` code name from the error body (or derived from the HTTP status).
    public let code: Code?
    /// What was being done, e.g. `"POST projects/p/topics/t:publish"`.
    public let operation: String?

    public init(kind: Kind, message: String, httpStatus: Int? = nil, code: Code? = nil, operation: String? = nil) {
        self.kind = kind
        self.message = message
        self.httpStatus = httpStatus
        self.code = code
        self.operation = operation
    }

    /// Whether retrying the same request may succeed: transport failures, timeouts of a single
    /// attempt, and the API codes Google's clients retry (UNAVAILABLE, DEADLINE_EXCEEDED,
    /// RESOURCE_EXHAUSTED, INTERNAL, UNKNOWN, ABORTED).
    public var isRetryable: Bool {
        switch kind {
        case .transport: return true
        case .timeout: return true
        case .api, .authentication: return code?.isRetryable ?? (httpStatus.map { $0 >= 500 || $0 == 429 } ?? false)
        default: return false
        }
    }

    public var description: String {
        var parts: [String] = []
        if let operation { parts.append(operation) }
        if let httpStatus {
            parts.append("HTTP \(httpStatus)" + (code.map { " \($0.rawValue)" } ?? ""))
        } else if let code {
            parts.append(code.rawValue)
        }
        let prefix = parts.isEmpty ? "PubSubError.\(kind)" : "PubSubError.\(kind) (\(parts.joined(separator: ", ")))"
        return "\(prefix): \(message)"
    }

    /// A copy with the operation filled in (when it was not already).
    public func with(operation: String) -> PubSubError {
        PubSubError(kind: kind, message: message, httpStatus: httpStatus, code: code, operation: self.operation ?? operation)
    }
}

extension PubSubError {
    /// Builds the error for an HTTP error answer, reading a `google.rpc.Status` JSON body
    /// (`{"error": {"code": 404, "message": "...", "status": "NOT_FOUND"}}`) when there is one,
    /// and falling back to the HTTP status and a printable excerpt of the body otherwise.
    public static func fromHTTP(status: Int, body: Data, operation: String? = nil) -> PubSubError {
        struct Envelope: Decodable {
            struct Status: Decodable {
                let code: Int?
                let message: String?
                let status: String?
            }
            let error: Status
        }
        if let envelope = try? JSONDecoder().decode(Envelope.self, from: body) {
            let code = envelope.error.status.map(Code.init(rawValue:)) ?? Code.fromHTTPStatus(status)
            let message = envelope.error.message ?? "the server gave no message"
            return PubSubError(kind: .api, message: message, httpStatus: status, code: code, operation: operation)
        }
        let excerpt = PubSubError.printableExcerpt(body)
        let message = excerpt.isEmpty
            ? "the server answered HTTP \(status) with an empty body"
            : "the server answered HTTP \(status) with a body that is not a Google API error: \(excerpt)"
        return PubSubError(kind: .api, message: message, httpStatus: status, code: Code.fromHTTPStatus(status), operation: operation)
    }

    /// At most 200 printable characters of a body, for error messages.
    static func printableExcerpt(_ body: Data, limit: Int = 200) -> String {
        let text = String(decoding: body.prefix(limit * 4), as: UTF8.self)
        let cleaned = text.unicodeScalars.map { scalar -> Character in
            (scalar.properties.isWhitespace || scalar.value < 0x20) ? " " : Character(scalar)
        }
        var result = String(cleaned).trimmingCharacters(in: .whitespaces)
        if result.count > limit { result = String(result.prefix(limit)) + "…" }
        return result
    }
}
