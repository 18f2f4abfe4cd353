import Testing

@testable import MiniHTTP

/// Feeds `input` in pieces of `chunkSize` bytes and collects every request until the input is
/// used up; returns the parse error if one is thrown.
private func parseAll(
    _ input: String,
    chunkSize: Int = .max,
    maxHeaderBytes: Int = 16_384,
    maxBodyBytes: Int = 1_048_576
) -> (requests: [HTTPServerRequest], error: HTTPParseError?, continues: Int) {
    var parser = HTTPRequestParser(maxHeaderBytes: maxHeaderBytes, maxBodyBytes: maxBodyBytes)
    let bytes = Array(input.utf8)
    var requests: [HTTPServerRequest] = []
    var continues = 0
    var offset = 0
    repeat {
        let end = min(bytes.count, offset + min(chunkSize, bytes.count))
        parser.append(bytes[offset..<end])
        offset = end
        events: while true {
            do {
                switch try parser.next() {
                case .request(let request): requests.append(request)
                case .expectContinue: continues += 1
                case .needMoreData: break events
                }
            } catch {
                return (requests, error, continues)
            }
        }
    } while offset < bytes.count
    return (requests, nil, continues)
}

@Suite struct ParserTests {
    @Test func simpleGet() throws {
        let result = parseAll("GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example\r\nX-Multi: 1\r\nx-multi: 2\r\n\r\n")
        #expect(result.error == nil)
        let request = try #require(result.requests.first)
        #expect(result.requests.count == 1)
        #expect(request.method == "GET")
        #expect(request.path == "/a/b")
        #expect(request.query == "x=1&y=2")
        #expect(request.version == "HTTP/1.1")
        #expect(request.headers["host"] == "example")
        #expect(request.headers.values(forName: "X-MULTI") == ["1", "2"])
        #expect(request.body.isEmpty)
        #expect(request.wantsKeepAlive)
    }

    @Test func postWithContentLength() throws {
        let result = parseAll("POST /items HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world")
        let request = try #require(result.requests.first)
        #expect(request.method == "POST")
        #expect(request.query == nil)
        #expect(String(decoding: request.body, as: UTF8.self) == "hello world")
    }

    @Test func chunkedBodyWithExtensionsAndTrailers() throws {
        let input =
            "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;name=value\r\nhello\r\n"
            + "6 ; ext\r\n world\r\n"
            + "A\r\n0123456789\r\n"
            + "0\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\n"
            + "GET /next HTTP/1.1\r\n\r\n"
        let result = parseAll(input)
        #expect(result.error == nil)
        #expect(result.requests.count == 2)
        let request = try #require(result.requests.first)
        #expect(String(decoding: request.body, as: UTF8.self) == "hello world0123456789")
        #expect(result.requests.last?.path == "/next")
    }

    @Test func byteAtATimeFeeding() throws {
        let input =
            "POST /one HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
            + "POST /two HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"
            + "GET /three HTTP/1.1\r\n\r\n"
        let result = parseAll(input, chunkSize: 1)
        #expect(result.error == nil)
        #expect(result.requests.map(\.path) == ["/one", "/two", "/three"])
        #expect(result.requests.map { String(decoding: $0.body, as: UTF8.self) } == ["abc", "xyz", ""])
    }

    @Test func largeBodyInSmallPieces() throws {
        let body = String(repeating: "0123456789", count: 20_000)
        let input = "PUT /big HTTP/1.1\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body + "GET /next HTTP/1.1\r\n\r\n"
        let result = parseAll(input, chunkSize: 997)
        #expect(result.error == nil)
        #expect(result.requests.map(\.path) == ["/big", "/next"])
        #expect(result.requests.first?.body.count == 200_000)
        #expect(result.requests.first.map { String(decoding: $0.body, as: UTF8.self) == body } == true)
    }

    @Test func pipelinedRequestsInOneBuffer() {
        let input = (1...5).map { "GET /r\($0) HTTP/1.1\r\nHost: h\r\n\r\n" }.joined()
        let result = parseAll(input)
        #expect(result.requests.map(\.path) == ["/r1", "/r2", "/r3", "/r4", "/r5"])
    }

    @Test func http10KeepAliveRules() throws {
        let plain = try #require(parseAll("GET / HTTP/1.0\r\n\r\n").requests.first)
        #expect(plain.version == "HTTP/1.0")
        #expect(!plain.wantsKeepAlive)
        let keepAlive = try #require(parseAll("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").requests.first)
        #expect(keepAlive.wantsKeepAlive)
        let close = try #require(parseAll("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").requests.first)
        #expect(!close.wantsKeepAlive)
    }

    @Test func lfOnlyLineEndingsAndLeadingEmptyLines() throws {
        let result = parseAll("\r\n\r\nGET /lf HTTP/1.1\nHost: h\n\n")
        #expect(result.requests.first?.path == "/lf")
        #expect(result.requests.first?.headers["Host"] == "h")
    }

    @Test func absoluteFormTarget() throws {
        let request = try #require(parseAll("GET http://example.com/p?q=1 HTTP/1.1\r\n\r\n").requests.first)
        #expect(request.path == "/p")
        #expect(request.query == "q=1")
    }

    @Test func expectContinue() {
        let result = parseAll("POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n", chunkSize: .max)
        #expect(result.continues == 1)
        #expect(result.requests.isEmpty)
    }

    @Test func headerTooLargeIs431() {
        let big = String(repeating: "a", count: 2000)
        let input = "GET / HTTP/1.1\r\nX-Big: \(big)\r\n\r\n"
        #expect(parseAll(input, maxHeaderBytes: 1024).error?.status == 431)
        // Also while the head is still incomplete (no end in sight), fed byte by byte.
        #expect(parseAll("GET / HTTP/1.1\r\nX-Big: \(big)", chunkSize: 1, maxHeaderBytes: 1024).error?.status == 431)
        // A head just under the limit passes.
        #expect(parseAll(input, maxHeaderBytes: 4096).error == nil)
    }

    @Test func bodyTooLargeByContentLengthIs413() {
        let result = parseAll("POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n", maxBodyBytes: 100)
        #expect(result.error?.status == 413)
        #expect(parseAll("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + String(repeating: "x", count: 100), maxBodyBytes: 100).requests.count == 1)
    }

    @Test func bodyTooLargeByChunkedTotalIs413() {
        let chunk = "32\r\n" + String(repeating: "x", count: 50) + "\r\n"
        let input = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + chunk + chunk + "0\r\n\r\n"
        #expect(parseAll(input, maxBodyBytes: 120).error?.status == 413)
        #expect(parseAll(input, maxBodyBytes: 150).requests.first?.body.count == 150)
    }

    @Test(arguments: [
        "GET\r\n\r\n",
        "GET /\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        "G(T / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1 extra\r\n\r\n",
        "GET / HTTX/1.1\r\n\r\n",
        "GET /\u{7F} HTTP/1.1\r\n\r\n",
    ])
    func malformedRequestLineIs400(input: String) {
        #expect(parseAll(input).error?.status == 400)
    }

    @Test func unsupportedVersionIs505() {
        #expect(parseAll("GET / HTTP/2.0\r\n\r\n").error?.status == 505)
    }

    @Test(arguments: [
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        "GET / HTTP/1.1\r\n: empty name\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\u{1}b\r\n\r\n",
    ])
    func badHeaderLineIs400(input: String) {
        #expect(parseAll(input).error?.status == 400)
    }

    @Test(arguments: [
        "zz\r\nhello\r\n0\r\n\r\n",
        "\r\n",
        "5\r\nhelloXX0\r\n\r\n",
        "FFFFFFFFFFFFFFFFFF\r\n",
        "5 junk\r\nhello\r\n0\r\n\r\n",
    ])
    func badChunkIs400(chunks: String) {
        let input = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
        #expect(parseAll(input).error?.status == 400)
    }

    @Test func contentLengthAndTransferEncodingTogetherIs400() {
        let input = "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        #expect(parseAll(input).error?.status == 400)
    }

    @Test(arguments: ["-1", "abc", "1.5", "+5", "", "5, 6", "99999999999999999999"])
    func invalidContentLengthIs400(value: String) {
        #expect(parseAll("POST / HTTP/1.1\r\nContent-Length: \(value)\r\n\r\n").error?.status == 400)
    }

    @Test func conflictingContentLengthsAre400() {
        let input = "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"
        #expect(parseAll(input).error?.status == 400)
    }

    @Test func unsupportedTransferCodingIs501() {
        let input = "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
        #expect(parseAll(input).error?.status == 501)
    }

    @Test func errorIsSticky() {
        var parser = HTTPRequestParser()
        parser.append(Array("BROKEN\r\n\r\nGET / HTTP/1.1\r\n\r\n".utf8))
        #expect(throws: HTTPParseError.self) { try parser.next() }
        #expect(throws: HTTPParseError.self) { try parser.next() }
    }
}

@Suite struct MessageTests {
    @Test func headersAreCaseInsensitive() {
        var headers: HTTPHeaders = ["Content-Type": "text/plain"]
        headers.add(name: "X-A", value: "1")
        headers.add(name: "x-a", value: "2")
        #expect(headers["content-type"] == "text/plain")
        #expect(headers["X-A"] == "1")
        #expect(headers.count == 3)
        headers["X-A"] = "3"
        #expect(headers.values(forName: "x-a") == ["3"])
        headers["x-a"] = nil
        #expect(!headers.contains(name: "X-A"))
        #expect(Array(headers).map(\.name) == ["Content-Type"])
    }

    @Test func errorBodyIsJSON() throws {
        let response = HTTPServerResponse.error(404, "no \"such\" thing")
        #expect(response.status == 404)
        #expect(response.headers["Content-Type"] == "application/json")
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"error":{"code":404,"message":"no \"such\" thing"}}"#)
    }

    @Test func jsonAndTextResponses() {
        struct Item: Encodable { var id: Int; var name: String }
        let json = HTTPServerResponse.json(201, Item(id: 7, name: "a/b"))
        #expect(json.status == 201)
        #expect(String(decoding: json.body, as: UTF8.self) == #"{"id":7,"name":"a/b"}"#)
        let text = HTTPServerResponse.text(200, "hi")
        #expect(text.headers["content-type"] == "text/plain; charset=utf-8")
        #expect(text.body == Array("hi".utf8))
    }

    @Test func serializationSetsLengthAndDropsInjectedLines() {
        var response = HTTPServerResponse.text(200, "abc")
        response.headers.add(name: "X-Evil", value: "a\r\nSet-Cookie: x")
        response.headers.add(name: "Content-Length", value: "999")
        var bytes: [UInt8] = []
        response.serialize(into: &bytes, connectionHeader: "close", date: nil, omitBody: false)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(text.contains("Content-Length: 3\r\n"))
        #expect(!text.contains("999"))
        #expect(text.contains("X-Evil: aSet-Cookie: x\r\n"))
        #expect(text.contains("Connection: close\r\n"))
        #expect(text.hasSuffix("\r\n\r\nabc"))
    }
}

@Suite struct RouterTests {
    private func router() -> Router {
        var router = Router()
        router.on("GET", "/items") { _ in .text(200, "list") }
        router.on("POST", "/items") { request in .text(201, "got \(request.body.count)") }
        return router
    }

    @Test func routesByMethodAndPath() async {
        let response = await router().handle(HTTPServerRequest(method: "POST", path: "/items", body: [1, 2]))
        #expect(response.status == 201)
        #expect(response.body == Array("got 2".utf8))
    }

    @Test func unknownPathIs404() async {
        let response = await router().handle(HTTPServerRequest(method: "GET", path: "/nope"))
        #expect(response.status == 404)
        #expect(String(decoding: response.body, as: UTF8.self).contains(#""code":404"#))
    }

    @Test func wrongMethodIs405WithAllow() async {
        let response = await router().handle(HTTPServerRequest(method: "DELETE", path: "/items"))
        #expect(response.status == 405)
        #expect(response.headers["Allow"] == "GET, HEAD, POST")
    }

    @Test func headFallsBackToGet() async {
        let response = await router().handle(HTTPServerRequest(method: "HEAD", path: "/items"))
        #expect(response.status == 200)
    }
}
