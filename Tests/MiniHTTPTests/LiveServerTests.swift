import Foundation
import Glibc
import Synchronization
import Testing

@testable import MiniHTTP

/// Real sockets on 127.0.0.1, port 0. Serialized: several tests measure time.
@Suite(.serialized) struct LiveServerTests {
    @Test func keepAliveServesSeveralRequestsOnOneConnection() async throws {
        try await withServer(handler: echoHandler) { _, port in
            let client = try await TestClient.connect(port: port)
            for index in 1...5 {
                try await client.write(get("/k\(index)"))
                let response = try await client.readResponse()
                #expect(response.status == 200)
                #expect(response.text == "GET /k\(index) ")
                #expect(response.header("Connection") == nil)
                #expect(response.header("Date") != nil)
            }
        }
    }

    @Test(arguments: [true, false])
    func pipelinedResponsesComeBackInRequestOrder(startsHandlersOnEventLoop: Bool) async throws {
        var configuration = testConfiguration()
        configuration.startsHandlersOnEventLoop = startsHandlersOnEventLoop
        // Handlers log when they start and end: one request at a time per connection shows as
        // strictly alternating entries, whatever the timing. The sleep only gives a server that
        // wrongly ran the pipelined requests concurrently the chance to answer out of order.
        let log = Mutex<[String]>([])
        try await withServer(configuration, handler: { request in
            log.withLock { $0.append("start \(request.path)") }
            if request.path == "/slow" { try? await Task.sleep(for: .milliseconds(400)) }
            log.withLock { $0.append("end \(request.path)") }
            return .text(200, request.path)
        }) { _, port in
            let client = try await TestClient.connect(port: port)
            try await client.write(get("/slow") + get("/fast1") + get("/fast2"))
            var paths: [String] = []
            for _ in 0..<3 {
                paths.append(try await client.readResponse().text)
            }
            #expect(paths == ["/slow", "/fast1", "/fast2"])
            #expect(log.withLock { $0 } == ["start /slow", "end /slow", "start /fast1", "end /fast1", "start /fast2", "end /fast2"])
        }
    }

    @Test func connectionCloseIsHonoured() async throws {
        try await withServer(handler: echoHandler) { _, port in
            let client = try await TestClient.connect(port: port)
            try await client.write(get("/c", headers: "Connection: close\r\n"))
            let response = try await client.readResponse()
            #expect(response.status == 200)
            #expect(response.header("Connection") == "close")
            #expect(await client.waitForClose())
        }
    }

    @Test func http10ClosesUnlessKeepAlive() async throws {
        try await withServer(handler: echoHandler) { _, port in
            let plain = try await TestClient.connect(port: port)
            try await plain.write(get("/old", version: "HTTP/1.0"))
            #expect(try await plain.readResponse().text == "GET /old ")
            #expect(await plain.waitForClose())

            let keepAlive = try await TestClient.connect(port: port)
            try await keepAlive.write(get("/a", version: "HTTP/1.0", headers: "Connection: keep-alive\r\n"))
            let first = try await keepAlive.readResponse()
            #expect(first.header("Connection") == "keep-alive")
            try await keepAlive.write(get("/b", version: "HTTP/1.0", headers: "Connection: keep-alive\r\n"))
            #expect(try await keepAlive.readResponse().text == "GET /b ")
        }
    }

    @Test func routerAnswers404And405WithAllow() async throws {
        var router = Router()
        router.on("GET", "/things") { _ in .json(200, ["ok": true]) }
        router.on("PUT", "/things") { _ in .text(204, "") }
        let server = HTTPServer(configuration: testConfiguration(), logger: quietLogger, router: router)
        let port = try server.start()
        defer { Task { await server.shutdown() } }
        let client = try await TestClient.connect(port: port)
        try await client.write(get("/missing"))
        let missing = try await client.readResponse()
        #expect(missing.status == 404)
        #expect(missing.text.contains(#""code":404"#))
        try await client.write("DELETE /things HTTP/1.1\r\nHost: t\r\n\r\n")
        let wrongMethod = try await client.readResponse()
        #expect(wrongMethod.status == 405)
        #expect(wrongMethod.header("Allow") == "GET, HEAD, PUT")
        try await client.write(get("/things"))
        #expect(try await client.readResponse().text == #"{"ok":true}"#)
        await server.shutdown()
    }

    @Test func oversizedBodyGets413AndOversizedHeadGets431() async throws {
        var configuration = testConfiguration()
        configuration.maxBodyBytes = 1000
        try await withServer(configuration, handler: echoHandler) { _, port in
            let big = try await TestClient.connect(port: port)
            try await big.write("POST /b HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + String(repeating: "x", count: 5000))
            let tooLarge = try await big.readResponse()
            #expect(tooLarge.status == 413)
            #expect(tooLarge.header("Connection") == "close")
            #expect(await big.waitForClose())

            let chunked = try await TestClient.connect(port: port)
            let chunk = "200\r\n" + String(repeating: "y", count: 512) + "\r\n"
            try await chunked.write("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk + chunk + chunk)
            #expect(try await chunked.readResponse().status == 413)

            let head = try await TestClient.connect(port: port)
            try await head.write(get("/h", headers: "X-Big: \(String(repeating: "z", count: 20_000))\r\n"))
            let headTooLarge = try await head.readResponse()
            #expect(headTooLarge.status == 431)
            #expect(headTooLarge.text.contains(#""code":431"#))
        }
    }

    @Test func bodyAtTheLimitIsAcceptedAndLargeResponsesArrive() async throws {
        try await withServer(handler: { request in
            HTTPServerResponse(status: 200, body: request.body + request.body)
        }) { _, port in
            let client = try await TestClient.connect(port: port)
            let body = (0..<1_048_576).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            try await client.write(Array("POST /big HTTP/1.1\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
            let response = try await client.readResponse()
            #expect(response.status == 200)
            #expect(response.body.count == 2 * body.count)
            #expect(response.body == body + body)
            // The connection is still usable afterwards.
            try await client.write(get("/after"))
            #expect(try await client.readResponse().status == 200)
        }
    }

    @Test func malformedRequestGets400AndClose() async throws {
        try await withServer(handler: echoHandler) { _, port in
            let client = try await TestClient.connect(port: port)
            try await client.write("NOT A REQUEST LINE\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.status == 400)
            #expect(await client.waitForClose())
        }
    }

    @Test func chunkedBodyAndExpectContinueOverTheWire() async throws {
        try await withServer(handler: echoHandler) { _, port in
            let client = try await TestClient.connect(port: port)
            try await client.write("POST /chunks HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")
            #expect(try await client.readResponse().text == "POST /chunks abcde")

            try await client.write("PUT /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
            let interim = try await client.readResponse()
            #expect(interim.status == 100)
            try await client.write("body")
            #expect(try await client.readResponse().text == "PUT /e body")
        }
    }

    @Test func headRequestsGetNoBody() async throws {
        try await withServer(handler: { _ in .text(200, "hello") }) { _, port in
            let client = try await TestClient.connect(port: port)
            try await client.write("HEAD / HTTP/1.1\r\nHost: t\r\n\r\n" + get("/"))
            // The HEAD response announces 5 bytes but sends none, so the test client (which
            // trusts Content-Length) reads the next response's head as that body.
            let head = try await client.readResponse()
            #expect(head.status == 200)
            #expect(head.header("Content-Length") == "5")
            #expect(head.text.hasPrefix("HTTP/"))
        }
    }

    @Test func connectionsBeyondMaxConnectionsGet503() async throws {
        var configuration = testConfiguration()
        configuration.maxConnections = 2
        try await withServer(configuration, handler: echoHandler) { _, port in
            let first = try await TestClient.connect(port: port)
            let second = try await TestClient.connect(port: port)
            for client in [first, second] {
                try await client.write(get("/"))
                #expect(try await client.readResponse().status == 200)
            }
            let third = try await TestClient.connect(port: port)
            let refused = try await third.readResponse()
            #expect(refused.status == 503)
            #expect(refused.text.contains(#""code":503"#))
            #expect(await third.waitForClose())
            // Existing connections are unaffected, and a freed slot is reusable.
            try await first.write(get("/still"))
            #expect(try await first.readResponse().status == 200)
            try await second.write(get("/bye", headers: "Connection: close\r\n"))
            _ = try await second.readResponse()
            #expect(await second.waitForClose())
            second.close()
            // The slot is free once the loop has seen the close, which takes however long the
            // loaded machine takes: retry (a refused attempt is answered 503 and closed at once).
            let deadline = ContinuousClock.now + .seconds(10)
            var status = 0
            repeat {
                let fourth = try await TestClient.connect(port: port)
                try await fourth.write(get("/again"))
                status = try await fourth.readResponse().status
                if status == 503 { try await Task.sleep(for: .milliseconds(20)) }
            } while status == 503 && ContinuousClock.now < deadline
            #expect(status == 200)
        }
    }

    @Test func stalledHeadIsClosedAfterHeaderTimeout() async throws {
        var configuration = testConfiguration()
        configuration.headerTimeout = .seconds(1)
        try await withServer(configuration, handler: echoHandler) { _, port in
            let slow = try await TestClient.connect(port: port)
            try await slow.write("GET /sl")
            // Meanwhile another client is served at once.
            let normal = try await TestClient.connect(port: port)
            try await normal.write(get("/ok"))
            #expect(try await normal.readResponse().status == 200)
            #expect(await slow.waitForClose())
            // The header timeout runs from accept, which is no earlier than `connect` started, so
            // this is never more than the server waited (a close before 1 s fails it).
            let elapsed = try #require(slow.closeSeenAt) - slow.connectStartedAt
            #expect(elapsed >= .seconds(1))
            #expect(elapsed < .seconds(15))  // a hang guard: a loaded machine sees the close late
        }
    }

    @Test func stalledBodyGets408AfterBodyTimeout() async throws {
        var configuration = testConfiguration()
        configuration.bodyTimeout = .seconds(1)
        try await withServer(configuration, handler: echoHandler) { _, port in
            let client = try await TestClient.connect(port: port)
            try await client.write("POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
            let response = try await client.readResponse()
            #expect(response.status == 408)
            #expect(response.header("Connection") == "close")
            // The body timeout runs from the end of the head, which the server cannot have read
            // before it was sent: never more than the server waited.
            let elapsed = try #require(client.lastResponseReceivedAt) - #require(client.lastWriteStartedAt)
            #expect(elapsed >= .seconds(1))
            #expect(await client.waitForClose())
        }
    }

    @Test func slowlorisDoesNotStarveOtherClients() async throws {
        var configuration = testConfiguration()
        configuration.headerTimeout = .seconds(5)
        configuration.maxConnections = 200
        try await withServer(configuration, handler: echoHandler) { _, port in
            var stalled: [TestClient] = []
            for index in 0..<50 {
                let client = try await TestClient.connect(port: port)
                try await client.write("GET /stall\(index) HTTP/1.1\r\nX-Slow: ")
                stalled.append(client)
            }
            let normal = try await TestClient.connect(port: port)
            try await normal.write(get("/normal"))
            #expect(try await normal.readResponse().text == "GET /normal ")
            // Served while the stalled connections are still held open, not after they timed out
            // (the last one was accepted last, so it times out last).
            let served = try #require(normal.lastResponseReceivedAt) - #require(normal.lastWriteStartedAt)
            #expect(served < .seconds(5))
            #expect(stalled[49].isOpen)
            // The stalled ones are cut off by the header timeout.
            #expect(await stalled[0].waitForClose())
            #expect(await stalled[49].waitForClose())
        }
    }

    @Test func idleKeepAliveConnectionIsClosed() async throws {
        var configuration = testConfiguration()
        configuration.idleTimeout = .seconds(1)
        try await withServer(configuration, handler: echoHandler) { _, port in
            let client = try await TestClient.connect(port: port)
            try await client.write(get("/once"))
            #expect(try await client.readResponse().status == 200)
            #expect(await client.waitForClose())
            // From the instant the response arrived (no earlier than the server finished writing
            // it) to the instant the close arrived: never more than the server idled.
            let elapsed = try #require(client.closeSeenAt) - #require(client.lastResponseReceivedAt)
            #expect(elapsed > .milliseconds(900))
            #expect(elapsed < .seconds(15))  // a hang guard: a loaded machine sees the close late
        }
    }

    /// The idle timer starts when the response is written, not when the request was read: here
    /// the handler runs synchronously on the event loop for 600 ms before it responds.
    @Test func idleTimeoutRunsFromTheEndOfTheResponse() async throws {
        var configuration = testConfiguration()
        configuration.idleTimeout = .seconds(1)
        configuration.startsHandlersOnEventLoop = true
        try await withServer(configuration, handler: { request in
            usleep(600_000)
            return .text(200, request.path)
        }) { _, port in
            let client = try await TestClient.connect(port: port)
            try await client.write(get("/blocking"))
            #expect(try await client.readResponse().status == 200)
            #expect(await client.waitForClose())
            let elapsed = try #require(client.closeSeenAt) - #require(client.lastResponseReceivedAt)
            #expect(elapsed > .milliseconds(900))
            // A hang guard only: on a loaded machine the close can be seen seconds late.
            #expect(elapsed < .seconds(15))
        }
    }

    @Test func gracefulShutdownFinishesInFlightAndRefusesNew() async throws {
        // The slow handler says when it started and answers only when the test says so: the
        // request is in flight when shutdown begins, and still is when shutdown is seen to have
        // begun, however slow the machine.
        let (started, startedContinuation) = AsyncStream.makeStream(of: String.self)
        let go = Gate()
        defer { go.open() }
        let server = HTTPServer(configuration: testConfiguration(), logger: quietLogger) { request in
            if request.path == "/slow" {
                startedContinuation.yield(request.path)
                await go.wait()
            }
            return .text(200, "done \(request.path)")
        }
        let port = try server.start()
        #expect(server.port == port)
        let idle = try await TestClient.connect(port: port)
        try await idle.write(get("/quick"))
        #expect(try await idle.readResponse().status == 200)

        let inFlight = try await TestClient.connect(port: port)
        try await inFlight.write(get("/slow"))
        #expect(await next(of: started) == "/slow")
        let shutdown = Task { await server.shutdown() }

        // The loop closes the listener and the idle connection when it begins the shutdown.
        #expect(await idle.waitForClose())
        await #expect(throws: TestClientError.self) { try await TestClient.connect(port: port) }
        go.open()
        let response = try await inFlight.readResponse()
        #expect(response.status == 200)
        #expect(response.text == "done /slow")
        #expect(response.header("Connection") == "close")
        await shutdown.value
        #expect(server.port == nil)
        await server.shutdown()  // idempotent
        #expect(throws: HTTPServerError.alreadyShutDown) { try server.start() }
    }

    @Test func runReturnsWhenItsTaskIsCancelled() async throws {
        let server = HTTPServer(configuration: testConfiguration(), logger: quietLogger, handler: echoHandler)
        let running = Task { try await server.run() }
        var port = server.port
        let deadline = ContinuousClock.now + .seconds(10)
        while port == nil && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
            port = server.port
        }
        let boundPort = try #require(port)
        let client = try await TestClient.connect(port: boundPort)
        try await client.write(get("/"))
        #expect(try await client.readResponse().status == 200)
        running.cancel()
        try await running.value
        #expect(server.port == nil)
    }

    @Test func bindingAPortInUseThrowsAClearError() async throws {
        try await withServer(handler: echoHandler) { _, port in
            var configuration = testConfiguration()
            configuration.port = port
            let second = HTTPServer(configuration: configuration, logger: quietLogger, handler: echoHandler)
            do {
                try second.start()
                Issue.record("binding a used port succeeded")
            } catch let error as HTTPServerError {
                #expect(error == .bindFailed)
                #expect(error.message == "cannot bind 127.0.0.1:\(port): Address already in use")
            }
        }
    }
}
