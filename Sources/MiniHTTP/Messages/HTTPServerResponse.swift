import Foundation

/// A response to send. The server sets `Content-Length` from `body` and manages `Connection`;
/// any `Content-Length`, `Transfer-Encoding` or `Connection` field set here is replaced.
public struct HTTPServerResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// `object` encoded as JSON with `Content-Type: application/json`.
    /// If encoding fails the response is a 500 JSON error instead.
    public static func json(_ status: Int, _ object: some Encodable) -> HTTPServerResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(object) else {
            return .error(500, "The response could not be encoded as JSON.")
        }
        return HTTPServerResponse(
            status: status,
            headers: ["Content-Type": "application/json"],
            body: [UInt8](data)
        )
    }

    /// A text response, UTF-8 encoded.
    public static func text(
        _ status: Int,
        _ text: String,
        contentType: String = "text/plain; charset=utf-8"
    ) -> HTTPServerResponse {
        HTTPServerResponse(status: status, headers: ["Content-Type": contentType], body: Array(text.utf8))
    }

    /// A JSON error: `{"error":{"code":status,"message":message}}`.
    public static func error(_ status: Int, _ message: String) -> HTTPServerResponse {
        var body: [UInt8] = []
        body.reserveCapacity(40 + message.utf8.count)
        body.append(contentsOf: #"{"error":{"code":"#.utf8)
        body.append(contentsOf: String(status).utf8)
        body.append(contentsOf: #","message":""#.utf8)
        appendJSONEscaped(message, to: &body)
        body.append(contentsOf: #""}}"#.utf8)
        return HTTPServerResponse(status: status, headers: ["Content-Type": "application/json"], body: body)
    }
}

private func appendJSONEscaped(_ string: String, to out: inout [UInt8]) {
    let hex = Array("0123456789abcdef".utf8)
    for byte in string.utf8 {
        switch byte {
        case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
        case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
        case UInt8(ascii: "\n"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
        case UInt8(ascii: "\r"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
        case UInt8(ascii: "\t"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
        case 0..<0x20:
            out.append(contentsOf: Array(#"\u00"#.utf8))
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0xF)])
        default: out.append(byte)
        }
    }
}

/// The standard reason phrase for `status` (`"OK"` for 200), or `"Unknown"`.
func reasonPhrase(_ status: Int) -> String {
    switch status {
    case 100: "Continue"
    case 101: "Switching Protocols"
    case 200: "OK"
    case 201: "Created"
    case 202: "Accepted"
    case 204: "No Content"
    case 206: "Partial Content"
    case 301: "Moved Permanently"
    case 302: "Found"
    case 303: "See Other"
    case 304: "Not Modified"
    case 307: "Temporary Redirect"
    case 308: "Permanent Redirect"
    case 400: "Bad Request"
    case 401: "Unauthorized"
    case 403: "Forbidden"
    case 404: "Not Found"
    case 405: "Method Not Allowed"
    case 406: "Not Acceptable"
    case 408: "Request Timeout"
    case 409: "Conflict"
    case 410: "Gone"
    case 411: "Length Required"
    case 412: "Precondition Failed"
    case 413: "Content Too Large"
    case 415: "Unsupported Media Type"
    case 417: "Expectation Failed"
    case 422: "Unprocessable Content"
    case 429: "Too Many Requests"
    case 431: "Request Header Fields Too Large"
    case 500: "Internal Server Error"
    case 501: "Not Implemented"
    case 502: "Bad Gateway"
    case 503: "Service Unavailable"
    case 504: "Gateway Timeout"
    case 505: "HTTP Version Not Supported"
    default: "Unknown"
    }
}

extension HTTPServerResponse {
    /// Serialises status line, headers and (unless `omitBody`) the body into `out`.
    ///
    /// - Parameters:
    ///   - connectionHeader: `"close"`, `"keep-alive"` or `nil` (no `Connection` field).
    ///   - date: the cached `Date` field value, or `nil`.
    func serialize(into out: inout [UInt8], connectionHeader: String?, date: String?, omitBody: Bool) {
        let status = (100...999).contains(self.status) ? self.status : 500
        out.reserveCapacity(out.count + 128 + headers.count * 32 + (omitBody ? 0 : body.count))
        out.append(contentsOf: "HTTP/1.1 ".utf8)
        out.append(contentsOf: String(status).utf8)
        out.append(UInt8(ascii: " "))
        out.append(contentsOf: reasonPhrase(status).utf8)
        out.append(contentsOf: "\r\n".utf8)
        for (name, value) in headers {
            if name.equalsCaseInsensitive("Content-Length") || name.equalsCaseInsensitive("Transfer-Encoding")
                || name.equalsCaseInsensitive("Connection")
            {
                continue
            }
            appendFieldSanitized(name, to: &out)
            out.append(contentsOf: ": ".utf8)
            appendFieldSanitized(value, to: &out)
            out.append(contentsOf: "\r\n".utf8)
        }
        let hasBody = !(status < 200 || status == 204 || status == 304)
        if hasBody {
            out.append(contentsOf: "Content-Length: ".utf8)
            out.append(contentsOf: String(body.count).utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
        if let connectionHeader {
            out.append(contentsOf: "Connection: ".utf8)
            out.append(contentsOf: connectionHeader.utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
        if let date {
            out.append(contentsOf: "Date: ".utf8)
            out.append(contentsOf: date.utf8)
            out.append(contentsOf: "\r\n".utf8)
        }
        out.append(contentsOf: "\r\n".utf8)
        if hasBody && !omitBody {
            out.append(contentsOf: body)
        }
    }
}

/// Appends a header name or value, dropping CR and LF so a handler cannot split the response.
private func appendFieldSanitized(_ string: String, to out: inout [UInt8]) {
    let utf8 = string.utf8
    guard utf8.contains(where: { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") }) else {
        out.append(contentsOf: utf8)
        return
    }
    for byte in utf8 where byte != UInt8(ascii: "\r") && byte != UInt8(ascii: "\n") {
        out.append(byte)
    }
}
