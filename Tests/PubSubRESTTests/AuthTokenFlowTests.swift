import Foundation
import PubSubREST
import Testing

/// Token flows against `Fixtures/token_server.py` on 127.0.0.1. Nothing here contacts any other
/// address: metadata hosts are always 127.0.0.1 ports.
extension AuthTests {
    @Suite("Token providers against a local token server", .serialized)
    struct TokenFlowTests {
        let transport = CurlTransport()

        func oauthProvider(
            _ server: TestTokenServer,
            scope: String = OAuth2TokenProvider.defaultScope,
            timeout: Duration = .seconds(10),
            refreshMargin: Duration = .seconds(300)
        ) throws -> OAuth2TokenProvider {
            let key = try AuthFixtures.key(tokenURI: server.baseURL + "/token")
            return OAuth2TokenProvider(key: key, scope: scope, transport: transport, timeout: timeout, refreshMargin: refreshMargin)
        }

        @Test("OAuth2: the token is cached (two calls, one token issued)")
        func oauthCaching() async throws {
            let server = try await TestTokenServer()
            defer { server.stop() }
            let provider = try oauthProvider(server)
            let first = try await provider.authorizationHeaderValue()
            let second = try await provider.authorizationHeaderValue()
            #expect(first == "Bearer ya29.test-token-1")
            #expect(second == first)
            #expect(try await server.stats(transport: transport) == .init(token_issued: 1, metadata_issued: 0, rejected: 0))
        }

        @Test("OAuth2: a short-lived token is refreshed before it expires")
        func oauthRefresh() async throws {
            let server = try await TestTokenServer(["EXPIRES_IN": "4"])
            defer { server.stop() }
            // Margin 2 s on a 4 s token: reused for ~2 s, then replaced while still valid.
            let provider = try oauthProvider(server, refreshMargin: .seconds(2))
            let first = try await provider.authorizationHeaderValue()
            let cached = try await provider.authorizationHeaderValue()
            #expect(first == "Bearer ya29.test-token-1")
            #expect(cached == first)
            try await Task.sleep(for: .milliseconds(2300))
            let refreshed = try await provider.authorizationHeaderValue()
            #expect(refreshed == "Bearer ya29.test-token-2")
            #expect(try await server.stats(transport: transport).token_issued == 2)
        }

        @Test("OAuth2: 50 concurrent callers share one refresh")
        func oauthSingleRefresh() async throws {
            let server = try await TestTokenServer(["ISSUE_DELAY": "0.3"])
            defer { server.stop() }
            let provider = try oauthProvider(server)
            let values = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<50 {
                    group.addTask { try await provider.authorizationHeaderValue() }
                }
                return try await group.reduce(into: [String?]()) { $0.append($1) }
            }
            #expect(values.count == 50)
            #expect(values.allSatisfy { $0 == "Bearer ya29.test-token-1" })
            #expect(try await server.stats(transport: transport).token_issued == 1)
        }

        @Test("OAuth2: a rejected assertion (empty scope) is an authentication error with the server's reason")
        func oauthRejectedAssertion() async throws {
            let server = try await TestTokenServer()
            defer { server.stop() }
            let provider = try oauthProvider(server, scope: "")
            let error = await expectPubSubError { _ = try await provider.authorizationHeaderValue() }
            #expect(error?.kind == .authentication)
            #expect(error?.httpStatus == 400)
            #expect(error?.message.contains("invalid_grant") == true)
            #expect(error?.message.contains("no scope claim") == true)
            #expect(try await server.stats(transport: transport).rejected == 1)
        }

        @Test("OAuth2: HTTP 500 is a clear authentication error, and failures are not cached")
        func oauthServerError() async throws {
            let server = try await TestTokenServer(["MODE": "500"])
            defer { server.stop() }
            let provider = try oauthProvider(server)
            for _ in 0..<2 {
                let error = await expectPubSubError { _ = try await provider.authorizationHeaderValue() }
                #expect(error?.kind == .authentication)
                #expect(error?.httpStatus == 500)
                #expect(error?.isRetryable == true)
                #expect(error?.message.contains("HTTP 500") == true)
                #expect(error?.message.contains(server.baseURL + "/token") == true)
            }
        }

        @Test("OAuth2: a garbage body is a clear authentication error")
        func oauthGarbage() async throws {
            let server = try await TestTokenServer(["MODE": "garbage"])
            defer { server.stop() }
            let provider = try oauthProvider(server)
            let error = await expectPubSubError { _ = try await provider.authorizationHeaderValue() }
            #expect(error?.kind == .authentication)
            #expect(error?.message.contains("not a token response") == true)
            #expect(error?.message.contains("this is not json") == true)
        }

        @Test("OAuth2: a slow token endpoint times out instead of hanging")
        func oauthSlow() async throws {
            let server = try await TestTokenServer(["MODE": "slow", "SLOW_SECONDS": "30"])
            defer { server.stop() }
            let provider = try oauthProvider(server, timeout: .seconds(1))
            let started = ContinuousClock.now
            let error = await expectPubSubError { _ = try await provider.authorizationHeaderValue() }
            let elapsed = ContinuousClock.now - started
            #expect(error?.kind == .timeout || error?.kind == .authentication)
            #expect(error?.message.contains("access token") == true)
            // Hang guard, not a benchmark: the server answers only after 5 s.
            #expect(elapsed < .seconds(20))
        }

        @Test("OAuth2: a cancelled caller stops waiting at once; the shared refresh still serves the others")
        func oauthCancelledWaiter() async throws {
            let server = try await TestTokenServer(["ISSUE_DELAY": "8"])
            defer { server.stop() }
            let provider = try oauthProvider(server, timeout: .seconds(30))
            let patient = Task { try await provider.authorizationHeaderValue() }
            let impatient = Task { try await provider.authorizationHeaderValue() }
            try await Task.sleep(for: .milliseconds(300))
            let started = ContinuousClock.now
            impatient.cancel()
            let error = await expectPubSubError { _ = try await impatient.value }
            #expect(error?.kind == .cancelled)
            // The token is issued only 8 s after the request: returning well before proves the
            // cancelled waiter did not wait for it.
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(try await patient.value == "Bearer ya29.test-token-1")
            #expect(try await provider.authorizationHeaderValue() == "Bearer ya29.test-token-1")
            #expect(try await server.stats(transport: transport).token_issued == 1)
        }

        @Test("OAuth2: an unreachable token endpoint is a transport error naming it")
        func oauthUnreachable() async throws {
            let port = try closedLocalPort()
            let key = try AuthFixtures.key(tokenURI: "http://127.0.0.1:\(port)/token")
            let provider = OAuth2TokenProvider(key: key, transport: transport, timeout: .seconds(5))
            let error = await expectPubSubError { _ = try await provider.authorizationHeaderValue() }
            #expect(error?.kind == .transport || error?.kind == .timeout)
            #expect(error?.message.contains("127.0.0.1:\(port)") == true)
        }

        @Test("Metadata server: token with the Metadata-Flavor header, cached; project id")
        func metadataToken() async throws {
            let server = try await TestTokenServer()
            defer { server.stop() }
            let provider = MetadataServerTokenProvider(transport: transport, host: server.hostPort, timeout: .seconds(5))
            #expect(try await provider.authorizationHeaderValue() == "Bearer metadata-token-1")
            #expect(try await provider.authorizationHeaderValue() == "Bearer metadata-token-1")
            #expect(try await provider.projectID() == "metadata-project")
            #expect(try await server.stats(transport: transport) == .init(token_issued: 0, metadata_issued: 1, rejected: 0))
        }

        @Test("Metadata server: the test server refuses requests without Metadata-Flavor (so the header test can fail)")
        func metadataHeaderRequired() async throws {
            let server = try await TestTokenServer()
            defer { server.stop() }
            let url = server.baseURL + "/computeMetadata/v1/instance/service-accounts/default/token"
            let bare = try await transport.execute(HTTPRequest(method: "GET", url: url, timeout: .seconds(5)))
            #expect(bare.status == 403)
            let provider = MetadataServerTokenProvider(transport: transport, host: server.hostPort, timeout: .seconds(5))
            #expect(try await provider.authorizationHeaderValue() == "Bearer metadata-token-1")
            #expect(try await server.stats(transport: transport).rejected == 1)
        }

        @Test("Metadata server: 50 concurrent callers share one request; refresh of short tokens")
        func metadataSingleRefresh() async throws {
            let server = try await TestTokenServer(["ISSUE_DELAY": "0.3", "EXPIRES_IN": "4"])
            defer { server.stop() }
            let provider = MetadataServerTokenProvider(
                transport: transport, host: server.hostPort, timeout: .seconds(5), refreshMargin: .seconds(2)
            )
            let values = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<50 {
                    group.addTask { try await provider.authorizationHeaderValue() }
                }
                return try await group.reduce(into: [String?]()) { $0.append($1) }
            }
            #expect(Set(values.compactMap { $0 }) == ["Bearer metadata-token-1"])
            #expect(try await server.stats(transport: transport).metadata_issued == 1)
            try await Task.sleep(for: .milliseconds(2300))
            #expect(try await provider.authorizationHeaderValue() == "Bearer metadata-token-2")
        }

        @Test("Metadata server: 500, garbage and slow answers are clear errors", arguments: ["500", "garbage", "slow"])
        func metadataFailures(mode: String) async throws {
            let server = try await TestTokenServer(["MODE": mode, "SLOW_SECONDS": "30"])
            defer { server.stop() }
            let provider = MetadataServerTokenProvider(transport: transport, host: server.hostPort, timeout: .seconds(1))
            let started = ContinuousClock.now
            let error = await expectPubSubError { _ = try await provider.authorizationHeaderValue() }
            #expect(ContinuousClock.now - started < .seconds(20))
            #expect(error?.kind == .authentication || error?.kind == .timeout)
            #expect(error?.message.contains("metadata server \(server.hostPort)") == true)
        }

        @Test("Self-signed JWT provider: cached, and accepted by google-auth for the Pub/Sub audience")
        func selfSignedJWT() async throws {
            let key = try AuthFixtures.load()
            let provider = SelfSignedJWTTokenProvider(key: key)
            let header = try #require(try await provider.authorizationHeaderValue())
            #expect(try await provider.authorizationHeaderValue() == header)
            #expect(header.hasPrefix("Bearer "))
            let token = String(header.dropFirst("Bearer ".count))
            let result = try await runProcess(["python3", AuthFixtures.verifyScript, token, AuthFixtures.certPEM, "https://pubsub.googleapis.com/"])
            #expect(result.status == 0, "\(result.stdoutText)")
            #expect(!provider.credentialDescription.contains("PRIVATE"))
            #expect(try await NoAuthTokenProvider().authorizationHeaderValue() == nil)
        }
    }

    @Suite("Application Default Credentials", .serialized)
    struct ADCTests {
        let transport = CurlTransport()

        @Test("PUBSUB_EMULATOR_HOST wins over everything, with no auth")
        func emulatorWins() async throws {
            let credentials = try await GoogleCredentials.applicationDefault(
                environment: [
                    "PUBSUB_EMULATOR_HOST": "127.0.0.1:8085",
                    "PUBSUB_PROJECT_ID": "emulator-project",
                    "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json",
                    "GCE_METADATA_HOST": "127.0.0.1:\(try closedLocalPort())",
                ],
                transport: transport
            )
            #expect(credentials.emulatorHost == "127.0.0.1:8085")
            #expect(credentials.projectID == "emulator-project")
            #expect(credentials.provider is NoAuthTokenProvider)
            #expect(try await credentials.provider.authorizationHeaderValue() == nil)
        }

        @Test("GOOGLE_APPLICATION_CREDENTIALS: a good key gives the selected key mode")
        func keyFile() async throws {
            let environment = [
                "GOOGLE_APPLICATION_CREDENTIALS": AuthFixtures.keyJSON,
                "GCE_METADATA_HOST": "127.0.0.1:\(try closedLocalPort())",
            ]
            let jwt = try await GoogleCredentials.applicationDefault(environment: environment, transport: transport)
            #expect(jwt.provider is SelfSignedJWTTokenProvider)
            #expect(jwt.projectID == "test-project")
            #expect(jwt.emulatorHost == nil)
            #expect(jwt.provider.credentialDescription.contains(AuthFixtures.keyJSON))

            let oauth = try await GoogleCredentials.applicationDefault(environment: environment, transport: transport, keyMode: .oauth2)
            #expect(oauth.provider is OAuth2TokenProvider)

            var overridden = environment
            overridden["GOOGLE_CLOUD_PROJECT"] = "explicit-project"
            #expect(try await GoogleCredentials.applicationDefault(environment: overridden, transport: transport).projectID == "explicit-project")
        }

        @Test("GOOGLE_APPLICATION_CREDENTIALS to a bad file reports that file's error (not skipped to the metadata server)")
        func badKeyFile() async throws {
            let server = try await TestTokenServer()
            defer { server.stop() }
            let directory = try AuthFixtures.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let path = directory.appendingPathComponent("broken.json").path
            try Data("{ not json".utf8).write(to: URL(fileURLWithPath: path))
            let error = await expectPubSubError {
                _ = try await GoogleCredentials.applicationDefault(
                    environment: ["GOOGLE_APPLICATION_CREDENTIALS": path, "GCE_METADATA_HOST": server.hostPort],
                    transport: transport
                )
            }
            #expect(error?.kind == .credentials)
            #expect(error?.message.contains(path) == true)
            #expect(error?.message.contains("not valid JSON") == true)
        }

        @Test("the metadata server is used when no key is configured")
        func metadataServer() async throws {
            let server = try await TestTokenServer()
            defer { server.stop() }
            let credentials = try await GoogleCredentials.applicationDefault(
                environment: ["GCE_METADATA_HOST": server.hostPort],
                transport: transport
            )
            #expect(credentials.provider is MetadataServerTokenProvider)
            #expect(credentials.projectID == "metadata-project")
            #expect(try await credentials.provider.authorizationHeaderValue() == "Bearer metadata-token-1")
        }

        @Test("nothing works: one credentials error listing what was tried and what to do")
        func nothingWorks() async throws {
            let host = "127.0.0.1:\(try closedLocalPort())"
            let started = ContinuousClock.now
            let error = await expectPubSubError {
                _ = try await GoogleCredentials.applicationDefault(environment: ["GCE_METADATA_HOST": host], transport: transport)
            }
            #expect(ContinuousClock.now - started < .seconds(15))  // hang guard (the probe allows 1.5 s)
            #expect(error?.kind == .credentials)
            let message = error?.message ?? ""
            for expected in ["PUBSUB_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "metadata server at \(host)", "service-account JSON key file"] {
                #expect(message.contains(expected), "missing \(expected) in: \(message)")
            }
        }

        @Test("GCE_METADATA_HOST overrides the default metadata host")
        func metadataHostFromEnvironment() {
            #expect(MetadataServerTokenProvider.host(environment: [:]) == "metadata.google.internal")
            #expect(MetadataServerTokenProvider.host(environment: ["GCE_METADATA_HOST": ""]) == "metadata.google.internal")
            #expect(MetadataServerTokenProvider.host(environment: ["GCE_METADATA_HOST": "127.0.0.1:9"]) == "127.0.0.1:9")
        }
    }
}
