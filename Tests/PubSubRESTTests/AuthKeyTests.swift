import Foundation
@testable import PubSubREST
import Testing

extension AuthTests {
    @Suite("Base64URL")
    struct Base64URLTests {
        @Test("RFC 4648 vectors, without padding")
        func knownVectors() {
            let vectors: [(String, String)] = [
                ("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"),
                ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy"),
            ]
            for (plain, encoded) in vectors {
                #expect(Base64URL.encode(plain) == encoded)
                #expect(Base64URL.decode(encoded) == Data(plain.utf8))
            }
            // Bytes whose standard base64 uses + and / ("+/8=").
            #expect(Base64URL.encode(Data([0xFB, 0xFF])) == "-_8")
            #expect(Base64URL.decode("-_8") == Data([0xFB, 0xFF]))
            #expect(Base64URL.decode("-_8=") == Data([0xFB, 0xFF]))
        }

        @Test("round trip of every length up to 64 and all byte values")
        func roundTrip() {
            let bytes = Data((0...255).map { UInt8($0) })
            for length in 0...64 {
                let data = bytes.prefix(length)
                let encoded = Base64URL.encode(Data(data))
                #expect(!encoded.contains("=") && !encoded.contains("+") && !encoded.contains("/"))
                #expect(Base64URL.decode(encoded) == Data(data))
            }
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
        }

        @Test("rejects text that is not base64url")
        func rejectsInvalid() {
            #expect(Base64URL.decode("ab+c") == nil)
            #expect(Base64URL.decode("ab/c") == nil)
            #expect(Base64URL.decode("a") == nil)
            #expect(Base64URL.decode("ab c") == nil)
        }
    }

    @Suite("Service-account key files")
    struct KeyFileTests {
        @Test("the fixture key loads, with token_uri defaulted when absent")
        func loadsFixture() throws {
            let key = try AuthFixtures.load()
            #expect(key.clientEmail == AuthFixtures.clientEmail)
            #expect(key.privateKeyID == AuthFixtures.keyID)
            #expect(key.projectID == "test-project")
            #expect(key.tokenURI == "https://oauth2.googleapis.com/token")
            #expect(key.source == AuthFixtures.keyJSON)

            var object = try AuthFixtures.keyObject()
            object["token_uri"] = nil
            let defaulted = try ServiceAccountKey(jsonData: try JSONSerialization.data(withJSONObject: object), source: "mem")
            #expect(defaulted.tokenURI == ServiceAccountKey.defaultTokenURI)
        }

        @Test("description and debugDescription never show the private key")
        func descriptionRedacts() throws {
            let key = try AuthFixtures.load()
            let texts = [key.description, key.debugDescription, String(describing: key), String(reflecting: key), "\(key)"]
            for text in texts {
                #expect(text.contains(AuthFixtures.clientEmail))
                #expect(text.contains(AuthFixtures.keyID))
                #expect(!text.contains("PRIVATE KEY"))
                for line in try AuthFixtures.privateKeyBodyLines() {
                    #expect(!text.contains(line))
                }
            }
        }

        /// Writes `contents` to a file and expects loading it to fail with kind `.credentials`, a
        /// message naming the file and containing `problem`, and no key material.
        func expectFailure(
            contents: Data?,
            problem: String,
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws {
            let directory = try AuthFixtures.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let path = directory.appendingPathComponent("key.json").path
            if let contents { try contents.write(to: URL(fileURLWithPath: path)) }
            let error = await expectPubSubError({ _ = try ServiceAccountKey.load(path: path) })
            guard let error else { return }
            #expect(error.kind == .credentials, sourceLocation: sourceLocation)
            #expect(error.message.contains(path), "message should name the file: \(error.message)", sourceLocation: sourceLocation)
            #expect(error.message.contains(problem), "message should say \(problem): \(error.message)", sourceLocation: sourceLocation)
            let shown = error.message + "\n" + error.description
            #expect(!shown.contains("PRIVATE KEY"), sourceLocation: sourceLocation)
            for line in try AuthFixtures.privateKeyBodyLines() {
                #expect(!shown.contains(line), "key material leaked into: \(shown)", sourceLocation: sourceLocation)
            }
        }

        func modified(_ change: (inout [String: Any]) -> Void) throws -> Data {
            var object = try AuthFixtures.keyObject()
            change(&object)
            return try JSONSerialization.data(withJSONObject: object)
        }

        @Test("missing file")
        func missingFile() async throws {
            try await expectFailure(contents: nil, problem: "does not exist")
        }

        @Test("not JSON")
        func notJSON() async throws {
            try await expectFailure(contents: Data("this is { not json".utf8), problem: "not valid JSON")
            try await expectFailure(contents: Data("[1, 2]".utf8), problem: "not an object")
        }

        @Test("type is not service_account, and the message says what it is")
        func wrongType() async throws {
            try await expectFailure(contents: try modified { $0["type"] = "authorized_user" }, problem: "\"authorized_user\"")
            try await expectFailure(contents: try modified { $0["type"] = "external_account" }, problem: "\"external_account\"")
        }

        @Test("each required field missing, empty or not a string is named", arguments: [
            "type", "project_id", "private_key_id", "private_key", "client_email",
        ])
        func missingField(field: String) async throws {
            try await expectFailure(contents: try modified { $0[field] = nil }, problem: "no \"\(field)\" field")
            try await expectFailure(contents: try modified { $0[field] = "" }, problem: "\"\(field)\" field")
            try await expectFailure(contents: try modified { $0[field] = 42 }, problem: "\"\(field)\" field")
        }

        @Test("garbage or truncated private_key reports OpenSSL's error without the key")
        func garbagePrivateKey() async throws {
            try await expectFailure(
                contents: try modified { $0["private_key"] = "-----BEGIN PRIVATE KEY-----\nZ2FyYmFnZQ==\n-----END PRIVATE KEY-----\n" },
                problem: "private_key"
            )
            let pem = try String(contentsOfFile: AuthFixtures.keyPEM, encoding: .utf8)
            let truncated = String(pem.prefix(pem.count / 2)) + "\n-----END PRIVATE KEY-----\n"
            try await expectFailure(contents: try modified { $0["private_key"] = truncated }, problem: "OpenSSL")
            try await expectFailure(contents: try modified { $0["private_key"] = "not a pem at all" }, problem: "could not be read by OpenSSL")
        }

        @Test("a directory instead of a file")
        func directory() async throws {
            let directory = try AuthFixtures.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let error = await expectPubSubError({ _ = try ServiceAccountKey.load(path: directory.path) })
            #expect(error?.kind == .credentials)
            #expect(error?.message.contains(directory.path) == true)
        }
    }

    @Suite("JWT and RS256")
    struct JWTTests {
        static let issuedAt = Date(timeIntervalSince1970: 1_700_000_000)

        func decodeJSON(_ part: Substring) throws -> [String: Any] {
            let data = try #require(Base64URL.decode(String(part)))
            return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        }

        @Test("layout: three parts, header fields, claims with aud")
        func layoutWithAudience() throws {
            let key = try AuthFixtures.load()
            let jwt = try key.signedJWT(audience: "https://pubsub.googleapis.com/", issuedAt: Self.issuedAt)
            let parts = jwt.split(separator: ".", omittingEmptySubsequences: false)
            try #require(parts.count == 3)
            #expect(String(decoding: try #require(Base64URL.decode(String(parts[0]))), as: UTF8.self)
                == #"{"alg":"RS256","kid":"\#(AuthFixtures.keyID)","typ":"JWT"}"#)
            let claims = try decodeJSON(parts[1])
            #expect(claims["iss"] as? String == AuthFixtures.clientEmail)
            #expect(claims["sub"] as? String == AuthFixtures.clientEmail)
            #expect(claims["aud"] as? String == "https://pubsub.googleapis.com/")
            #expect(claims["scope"] == nil)
            #expect(claims["iat"] as? Int == 1_700_000_000)
            #expect(claims["exp"] as? Int == 1_700_003_600)
            #expect(try #require(Base64URL.decode(String(parts[2]))).count == 256)
        }

        @Test("layout: scope-only and aud+scope claims")
        func layoutWithScope() throws {
            let key = try AuthFixtures.load()
            let scoped = try key.signedJWT(scope: "https://www.googleapis.com/auth/pubsub", issuedAt: Self.issuedAt, lifetime: 600)
            let claims = try decodeJSON(scoped.split(separator: ".")[1])
            #expect(claims["scope"] as? String == "https://www.googleapis.com/auth/pubsub")
            #expect(claims["aud"] == nil)
            #expect(claims["exp"] as? Int == 1_700_000_600)

            let both = try JWTSigner.makeJWT(key: key, audience: key.tokenURI, scope: "a b", issuedAt: Self.issuedAt)
            let bothClaims = try decodeJSON(both.split(separator: ".")[1])
            #expect(bothClaims["aud"] as? String == key.tokenURI)
            #expect(bothClaims["scope"] as? String == "a b")

            #expect(throws: PubSubError.self) {
                try JWTSigner.makeJWT(key: key, audience: nil, scope: nil, issuedAt: Self.issuedAt)
            }
        }

        @Test("deterministic for a given iat")
        func deterministic() throws {
            let key = try AuthFixtures.load()
            let first = try key.signedJWT(audience: "aud", issuedAt: Self.issuedAt)
            let second = try key.signedJWT(audience: "aud", issuedAt: Self.issuedAt.addingTimeInterval(0.7))
            #expect(first == second)
            #expect(first != (try key.signedJWT(audience: "aud", issuedAt: Self.issuedAt.addingTimeInterval(1))))
        }

        @Test("RS256 signature equals `openssl dgst -sha256 -sign` over the same input")
        func signatureMatchesOpenSSLCommandLine() async throws {
            let key = try AuthFixtures.load()
            let jwt = try key.signedJWT(audience: "https://pubsub.googleapis.com/", issuedAt: Self.issuedAt)
            let parts = jwt.split(separator: ".")
            let signingInput = Data((parts[0] + "." + parts[1]).utf8)
            let result = try await runProcess(["openssl", "dgst", "-sha256", "-sign", AuthFixtures.keyPEM], stdin: signingInput)
            try #require(result.status == 0, "openssl failed: \(result.stderrText)")
            #expect(result.stdout.count == 256)
            #expect(Base64URL.decode(String(parts[2])) == result.stdout)
        }

        @Test("signing from many tasks at once gives the same bytes")
        func concurrentSigning() async throws {
            let key = try AuthFixtures.load()
            let expected = try key.signedJWT(audience: "aud", issuedAt: Self.issuedAt)
            let results = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<16 {
                    group.addTask { try key.signedJWT(audience: "aud", issuedAt: Self.issuedAt) }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(results.count == 16)
            #expect(results.allSatisfy { $0 == expected })
        }
    }

    @Suite("google-auth verifies our JWTs")
    struct GoogleVerifierTests {
        func verify(_ token: String, audience: String) async throws -> ProcessResult {
            try await runProcess(["python3", AuthFixtures.verifyScript, token, AuthFixtures.certPEM, audience])
        }

        @Test("google.auth.jwt.decode accepts a library JWT and reads back its claims")
        func acceptsLibraryJWT() async throws {
            let key = try AuthFixtures.load()
            let audience = "https://pubsub.googleapis.com/"
            let jwt = try key.signedJWT(audience: audience)
            let result = try await verify(jwt, audience: audience)
            #expect(result.status == 0, "google-auth rejected it: \(result.stdoutText) \(result.stderrText)")
            let decoded = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
            let claims = try #require(decoded["claims"] as? [String: Any])
            let header = try #require(decoded["header"] as? [String: Any])
            #expect(claims["iss"] as? String == AuthFixtures.clientEmail)
            #expect(claims["sub"] as? String == AuthFixtures.clientEmail)
            #expect(claims["aud"] as? String == audience)
            #expect(header["kid"] as? String == AuthFixtures.keyID)
            #expect(header["alg"] as? String == "RS256")
        }

        @Test("google.auth.jwt.decode rejects a tampered JWT and a wrong audience")
        func rejectsTampered() async throws {
            let key = try AuthFixtures.load()
            let audience = "https://pubsub.googleapis.com/"
            let jwt = try key.signedJWT(audience: audience)
            let parts = jwt.split(separator: ".").map(String.init)
            let claimsData = try #require(Base64URL.decode(parts[1]))
            var claims = try #require(try JSONSerialization.jsonObject(with: claimsData) as? [String: Any])
            claims["sub"] = "attacker@example.com"
            let forgedClaims = Base64URL.encode(try JSONSerialization.data(withJSONObject: claims))
            let tampered = [parts[0], forgedClaims, parts[2]].joined(separator: ".")
            let result = try await verify(tampered, audience: audience)
            #expect(result.status == 1)
            #expect(result.stdoutText.contains("REJECTED"))

            let wrongAudience = try await verify(jwt, audience: "https://example.com/")
            #expect(wrongAudience.status == 1)
        }
    }
}
