/// Why a request could not be parsed, and the status to answer with.
/// After an error the connection cannot be trusted to be in sync, so it is closed.
public struct HTTPParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The HTTP status to answer with (400, 413, 431, 501 or 505).
    public let status: Int
    public let message: String

    public init(status: Int, message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status): \(message)" }

    static func badRequest(_ message: String) -> HTTPParseError { HTTPParseError(status: 400, message: message) }
}

/// An incremental HTTP/1.x request parser.
///
/// Feed bytes with ``append(_:)`` in any split, then call ``next()`` until it returns
/// ``Event/needMoreData``. Requests come out in order, so pipelined requests are supported.
/// Needs no socket, which keeps it unit-testable.
public struct HTTPRequestParser {
    public enum Event: Sendable {
        /// A complete request, body included.
        case request(HTTPServerRequest)
        /// A head with `Expect: 100-continue` was parsed and its body has not arrived yet:
        /// send `100 Continue`, then keep feeding bytes.
        case expectContinue
        /// The buffered bytes do not complete a request.
        case needMoreData
    }

    /// Longest accepted request line plus header fields (and separately, chunked trailers), in bytes.
    public let maxHeaderBytes: Int
    /// Largest accepted body, in bytes, after de-chunking.
    public let maxBodyBytes: Int
    /// Stored in each request's `remoteAddress`.
    public var remoteAddress: String?

    private var buffer: [UInt8] = []
    /// Index of the first unconsumed byte in `buffer`.
    private var start = 0
    private var state: State = .head(scanned: 0)

    private enum State {
        /// Looking for the empty line that ends the head; `scanned` bytes after `start` hold none.
        case head(scanned: Int)
        case fixedBody(HTTPServerRequest, length: Int)
        case chunked(HTTPServerRequest, Chunked)
        case failed(HTTPParseError)
    }

    private enum Chunked {
        case size
        case data(remaining: Int)
        case dataEnd
        case trailers(bytes: Int)
    }

    private static let maxChunkLineBytes = 4096

    public init(maxHeaderBytes: Int = 16_384, maxBodyBytes: Int = 1_048_576, remoteAddress: String? = nil) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxBodyBytes = maxBodyBytes
        self.remoteAddress = remoteAddress
    }

    /// Bytes received and not yet consumed by a returned request.
    public var bufferedByteCount: Int { buffer.count - start }

    /// True between requests: no byte of the next request has been received.
    public var isIdle: Bool {
        if case .head = state { return start == buffer.count }
        return false
    }

    /// True while the head of a request has been parsed and its body is being received.
    public var isReadingBody: Bool {
        switch state {
        case .fixedBody, .chunked: true
        case .head, .failed: false
        }
    }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        compact()
        buffer.append(contentsOf: bytes)
    }

    private mutating func compact() {
        if start == buffer.count {
            // Keep a small buffer for the next request; release one grown by a large body, so
            // idle keep-alive connections do not each hold up to `maxBodyBytes`.
            if buffer.capacity > 65_536 {
                buffer = []
            } else {
                buffer.removeAll(keepingCapacity: true)
            }
            start = 0
        } else if start >= 4096 && start * 2 >= buffer.count {
            buffer.removeFirst(start)
            start = 0
        }
    }

    /// The next parse event. Once it throws, every later call throws the same error.
    public mutating func next() throws(HTTPParseError) -> Event {
        do {
            let event = try step()
            if case .request = event, start == buffer.count, buffer.capacity > 65_536 {
                buffer = []
                start = 0
            }
            return event
        } catch {
            state = .failed(error)
            throw error
        }
    }

    private mutating func step() throws(HTTPParseError) -> Event {
        while true {
            switch state {
            case .failed(let error):
                throw error

            case .head(let scanned):
                if scanned == 0 {
                    // RFC 9112 §2.2: ignore empty lines received before a request line.
                    while start < buffer.count, buffer[start] == 13 || buffer[start] == 10 {
                        start += 1
                    }
                }
                let available = buffer.count - start
                let searchFrom = start + scanned
                let limit = min(buffer.count, start + maxHeaderBytes)
                let headEnd = buffer.withUnsafeBufferPointer {
                    Self.findHeadEnd($0, messageStart: start, from: searchFrom, to: limit)
                }
                guard let headEnd else {
                    if available >= maxHeaderBytes {
                        throw HTTPParseError(
                            status: 431,
                            message: "The request line and header fields exceed \(maxHeaderBytes) bytes."
                        )
                    }
                    state = .head(scanned: max(0, available - 3))
                    return .needMoreData
                }
                let parsed = buffer.withUnsafeBufferPointer {
                    Self.parseHead(UnsafeBufferPointer(rebasing: $0[start..<headEnd]))
                }
                start = headEnd
                var head: ParsedHead
                switch parsed {
                case .success(let value): head = value
                case .failure(let error): throw error
                }
                head.request.remoteAddress = remoteAddress
                if head.chunked {
                    state = .chunked(head.request, .size)
                    if head.expectContinue && start == buffer.count {
                        return .expectContinue
                    }
                } else if let length = head.contentLength, length > 0 {
                    guard length <= maxBodyBytes else {
                        throw HTTPParseError(
                            status: 413,
                            message: "The request body exceeds \(maxBodyBytes) bytes."
                        )
                    }
                    state = .fixedBody(head.request, length: length)
                    if head.expectContinue && buffer.count - start < length {
                        return .expectContinue
                    }
                } else {
                    state = .head(scanned: 0)
                    return .request(head.request)
                }

            case .fixedBody(var request, let length):
                guard buffer.count - start >= length else { return .needMoreData }
                request.body = Array(buffer[start..<(start + length)])
                start += length
                state = .head(scanned: 0)
                return .request(request)

            case .chunked(var request, let chunkState):
                // Leave the request out of `state` while mutating its body, so it is not copied.
                state = .head(scanned: 0)
                let outcome = try stepChunked(&request, chunkState)
                switch outcome {
                case .needMore(let newState):
                    state = .chunked(request, newState)
                    return .needMoreData
                case .done:
                    return .request(request)
                }
            }
        }
    }

    private enum ChunkOutcome {
        case needMore(Chunked)
        case done
    }

    private mutating func stepChunked(
        _ request: inout HTTPServerRequest,
        _ initial: Chunked
    ) throws(HTTPParseError) -> ChunkOutcome {
        var chunkState = initial
        while true {
            switch chunkState {
            case .size:
                guard let line = try nextLine(limit: Self.maxChunkLineBytes, what: "chunk size line") else {
                    return .needMore(.size)
                }
                let size = try buffer.withUnsafeBufferPointer { buf throws(HTTPParseError) in
                    try Self.parseChunkSize(UnsafeBufferPointer(rebasing: buf[line]))
                }
                guard size <= maxBodyBytes - request.body.count else {
                    throw HTTPParseError(status: 413, message: "The request body exceeds \(maxBodyBytes) bytes.")
                }
                chunkState = size == 0 ? .trailers(bytes: 0) : .data(remaining: size)
                if size > 0 && request.body.capacity < request.body.count + size {
                    request.body.reserveCapacity(request.body.count + size)
                }

            case .data(let remaining):
                let take = min(remaining, buffer.count - start)
                if take > 0 {
                    request.body.append(contentsOf: buffer[start..<(start + take)])
                    start += take
                }
                if take < remaining {
                    return .needMore(.data(remaining: remaining - take))
                }
                chunkState = .dataEnd

            case .dataEnd:
                guard start < buffer.count else { return .needMore(.dataEnd) }
                if buffer[start] == 10 {
                    start += 1
                } else if buffer[start] == 13 {
                    guard start + 1 < buffer.count else { return .needMore(.dataEnd) }
                    guard buffer[start + 1] == 10 else {
                        throw .badRequest("A chunk's data is not followed by CRLF.")
                    }
                    start += 2
                } else {
                    throw .badRequest("A chunk's data is not followed by CRLF.")
                }
                chunkState = .size

            case .trailers(let bytes):
                let remainingBudget = maxHeaderBytes - bytes
                guard let line = try nextLine(limit: remainingBudget, what: "trailer section", status: 431) else {
                    return .needMore(.trailers(bytes: bytes))
                }
                if line.isEmpty {
                    return .done
                }
                // Trailer fields are validated and then discarded.
                let valid = buffer.withUnsafeBufferPointer { buf in
                    Self.parseHeaderLine(UnsafeBufferPointer(rebasing: buf[line])) != nil
                }
                guard valid else { throw .badRequest("A chunked trailer field is malformed.") }
                chunkState = .trailers(bytes: bytes + line.count + 2)
            }
        }
    }

    /// The next line's content range (without CR LF), consuming it; `nil` if no full line yet.
    private mutating func nextLine(
        limit: Int,
        what: String,
        status: Int = 400
    ) throws(HTTPParseError) -> Range<Int>? {
        let end = min(buffer.count, start + limit + 2)
        var index = start
        while index < end {
            if buffer[index] == 10 {
                var contentEnd = index
                if contentEnd > start && buffer[contentEnd - 1] == 13 {
                    contentEnd -= 1
                }
                let range = start..<contentEnd
                start = index + 1
                return range
            }
            index += 1
        }
        if buffer.count - start >= limit + 2 {
            throw HTTPParseError(status: status, message: "The \(what) is too long.")
        }
        return nil
    }

    // MARK: - Head parsing (pure functions on a byte buffer)

    private struct ParsedHead {
        var request: HTTPServerRequest
        var contentLength: Int?
        var chunked: Bool
        var expectContinue: Bool
    }

    /// The index just past the empty line that ends the head, or `nil`.
    private static func findHeadEnd(
        _ buf: UnsafeBufferPointer<UInt8>,
        messageStart: Int,
        from: Int,
        to end: Int
    ) -> Int? {
        var index = from
        while index < end {
            if buf[index] == 10 {
                // An empty line: LF LF or LF CR LF.
                if index > messageStart && buf[index - 1] == 10 {
                    return index + 1
                }
                if index > messageStart + 1 && buf[index - 1] == 13 && buf[index - 2] == 10 {
                    return index + 1
                }
            }
            index += 1
        }
        return nil
    }

    private static func parseHead(_ head: UnsafeBufferPointer<UInt8>) -> Result<ParsedHead, HTTPParseError> {
        // Split into lines (LF, with an optional CR before it). The last line is empty.
        var lineStart = 0
        var lineIndex = 0
        var request = HTTPServerRequest(method: "", path: "")
        var headers = HTTPHeaders()
        headers.storage.reserveCapacity(12)
        var contentLength: Int?
        var transferEncoding: String?
        var expectContinue = false
        var index = 0
        while index < head.count {
            guard head[index] == 10 else {
                index += 1
                continue
            }
            var lineEnd = index
            if lineEnd > lineStart && head[lineEnd - 1] == 13 {
                lineEnd -= 1
            }
            let line = UnsafeBufferPointer(rebasing: head[lineStart..<lineEnd])
            lineStart = index + 1
            index += 1
            if lineIndex == 0 {
                switch parseRequestLine(line, into: &request) {
                case .success: break
                case .failure(let error): return .failure(error)
                }
                lineIndex += 1
                continue
            }
            lineIndex += 1
            if line.isEmpty { break }
            guard let (nameRange, valueRange) = parseHeaderLine(line) else {
                return .failure(.badRequest("A header field is malformed."))
            }
            let nameBytes = UnsafeBufferPointer(rebasing: line[nameRange])
            let valueBytes = UnsafeBufferPointer(rebasing: line[valueRange])
            let name = String(decoding: nameBytes, as: UTF8.self)
            let value = String(decoding: valueBytes, as: UTF8.self)
            switch nameBytes.count {
            case 14 where equalsLowercased(nameBytes, "content-length"):
                guard let length = parseContentLength(valueBytes) else {
                    return .failure(.badRequest("The Content-Length header is not a valid non-negative integer."))
                }
                if let contentLength, contentLength != length {
                    return .failure(.badRequest("The request has conflicting Content-Length headers."))
                }
                contentLength = length
            case 17 where equalsLowercased(nameBytes, "transfer-encoding"):
                transferEncoding = transferEncoding.map { "\($0), \(value)" } ?? value
            case 6 where equalsLowercased(nameBytes, "expect"):
                if headerValue(value, containsToken: "100-continue") { expectContinue = true }
            default:
                break
            }
            headers.storage.append((name: name, value: value))
        }
        request.headers = headers

        var chunked = false
        if let transferEncoding {
            guard contentLength == nil else {
                return .failure(.badRequest("The request has both Content-Length and Transfer-Encoding."))
            }
            let codings = transferEncoding.split(separator: ",").map {
                $0.trimmingASCIIWhitespace().lowercased()
            }
            guard codings.last == "chunked" else {
                return .failure(.badRequest("The final transfer coding is not chunked."))
            }
            guard codings.count == 1 else {
                return .failure(HTTPParseError(status: 501, message: "Only the chunked transfer coding is supported."))
            }
            chunked = true
        }
        if request.version == "HTTP/1.0" { expectContinue = false }
        return .success(
            ParsedHead(request: request, contentLength: contentLength, chunked: chunked, expectContinue: expectContinue)
        )
    }

    private static func parseRequestLine(
        _ line: UnsafeBufferPointer<UInt8>,
        into request: inout HTTPServerRequest
    ) -> Result<Void, HTTPParseError> {
        guard let firstSpace = line.firstIndex(of: 32) else {
            return .failure(.badRequest("The request line is malformed."))
        }
        guard let secondSpace = line[(firstSpace + 1)...].firstIndex(of: 32) else {
            return .failure(.badRequest("The request line is malformed."))
        }
        let method = line[0..<firstSpace]
        let target = line[(firstSpace + 1)..<secondSpace]
        let version = line[(secondSpace + 1)...]
        guard !method.isEmpty, method.allSatisfy(isTokenByte) else {
            return .failure(.badRequest("The request method is malformed."))
        }
        guard !target.isEmpty, target.allSatisfy({ $0 > 32 && $0 != 127 }) else {
            return .failure(.badRequest("The request target is malformed."))
        }
        guard version.count == 8, version.starts(with: "HTTP/".utf8),
            isDigit(version[version.startIndex + 5]), version[version.startIndex + 6] == UInt8(ascii: "."),
            isDigit(version[version.startIndex + 7])
        else {
            return .failure(.badRequest("The HTTP version is malformed."))
        }
        guard version[version.startIndex + 5] == UInt8(ascii: "1") else {
            return .failure(HTTPParseError(status: 505, message: "Only HTTP/1.0 and HTTP/1.1 are supported."))
        }
        request.method = String(decoding: UnsafeBufferPointer(rebasing: method), as: UTF8.self)
        request.version = version[version.startIndex + 7] == UInt8(ascii: "0") ? "HTTP/1.0" : "HTTP/1.1"

        // Origin form is the norm; reduce absolute form (`http://host/p?q`) to its path and query.
        var pathStart = target.startIndex
        if target.first != UInt8(ascii: "/"), let schemeEnd = findSubsequence(target, "://") {
            let authorityStart = schemeEnd + 3
            pathStart = target[authorityStart...].firstIndex(where: { $0 == 47 || $0 == 63 }) ?? target.endIndex
        }
        let queryMark = target[pathStart...].firstIndex(of: UInt8(ascii: "?"))
        let pathEnd = queryMark ?? target.endIndex
        request.path =
            pathStart == pathEnd ? "/" : String(decoding: UnsafeBufferPointer(rebasing: line[pathStart..<pathEnd]), as: UTF8.self)
        if let queryMark {
            request.query = String(
                decoding: UnsafeBufferPointer(rebasing: line[(queryMark + 1)..<target.endIndex]),
                as: UTF8.self
            )
        }
        return .success(())
    }

    /// Name and trimmed value ranges of `name: value`, or `nil` if malformed.
    static func parseHeaderLine(_ line: UnsafeBufferPointer<UInt8>) -> (Range<Int>, Range<Int>)? {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else { return nil }
        for index in 0..<colon where !isTokenByte(line[index]) {
            return nil
        }
        var valueStart = colon + 1
        var valueEnd = line.count
        while valueStart < valueEnd, line[valueStart] == 32 || line[valueStart] == 9 { valueStart += 1 }
        while valueEnd > valueStart, line[valueEnd - 1] == 32 || line[valueEnd - 1] == 9 { valueEnd -= 1 }
        for index in valueStart..<valueEnd {
            let byte = line[index]
            if (byte < 32 && byte != 9) || byte == 127 { return nil }
        }
        return (0..<colon, valueStart..<valueEnd)
    }

    private static func parseContentLength(_ bytes: UnsafeBufferPointer<UInt8>) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var value = 0
        for byte in bytes {
            guard isDigit(byte) else { return nil }
            value = value * 10 + Int(byte - 48)
        }
        return value
    }

    private static func parseChunkSize(_ line: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> Int {
        var value = 0
        var digits = 0
        var index = 0
        while index < line.count {
            let byte = line[index]
            let digit: Int
            switch byte {
            case 48...57: digit = Int(byte - 48)
            case 97...102: digit = Int(byte - 87)
            case 65...70: digit = Int(byte - 55)
            default: digit = -1
            }
            if digit < 0 { break }
            digits += 1
            guard digits <= 15 else { throw .badRequest("The chunk size is too large.") }
            value = value * 16 + digit
            index += 1
        }
        guard digits > 0 else { throw .badRequest("The chunk size is not a hexadecimal number.") }
        // Optional whitespace, then optional `;extension` (ignored).
        while index < line.count, line[index] == 32 || line[index] == 9 { index += 1 }
        guard index == line.count || line[index] == UInt8(ascii: ";") else {
            throw .badRequest("The chunk size is not a hexadecimal number.")
        }
        return value
    }
}

@inline(__always)
private func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }

/// RFC 9110 `tchar`.
@inline(__always)
func isTokenByte(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), 48...57:
        return true
    case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
        UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
        UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
        return true
    default:
        return false
    }
}

private func equalsLowercased(_ bytes: UnsafeBufferPointer<UInt8>, _ lowercase: StaticString) -> Bool {
    guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
    let expected = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
    for index in 0..<bytes.count where asciiLowercased(bytes[index]) != expected[index] {
        return false
    }
    return true
}

private func findSubsequence(_ haystack: Slice<UnsafeBufferPointer<UInt8>>, _ needle: StaticString) -> Int? {
    let count = needle.utf8CodeUnitCount
    guard haystack.count >= count else { return nil }
    let bytes = UnsafeBufferPointer(start: needle.utf8Start, count: count)
    var index = haystack.startIndex
    while index + count <= haystack.endIndex {
        if haystack[index..<(index + count)].elementsEqual(bytes) { return index }
        index += 1
    }
    return nil
}

extension Substring {
    func trimmingASCIIWhitespace() -> Substring {
        var slice = self
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return slice
    }
}
