import Foundation
import PubSubREST
import PubSubTestSupport
import Testing

/// The `pubsubctl` executable, run as a user would, against the emulator.
@Suite("pubsubctl")
struct PubSubCtlTests {
    func ctl(_ arguments: [String], stdin: String? = nil, environment: [String: String]? = nil) async throws -> (status: Int32, stdout: String, stderr: String) {
        let emulator = try await Emulator.shared()
        let env = environment ?? ["PUBSUB_EMULATOR_HOST": emulator.host, "PROJECT_ID": "test-project"]
        return try await runCommand(try builtProductPath("pubsubctl"), arguments, environment: env, stdin: stdin)
    }

    @Test("create is idempotent with --if-missing; exit codes are 0 ok, 1 API error, 2 usage")
    func createAndExitCodes() async throws {
        let topic = uniqueName("topic")
        let first = try await ctl(["topics", "create", topic])
        #expect(first.status == 0)
        #expect(first.stdout.contains("\"name\":\"projects/test-project/topics/\(topic)\""))

        let again = try await ctl(["topics", "create", topic])
        #expect(again.status == 1)
        #expect(again.stderr.contains("ALREADY_EXISTS"))

        #expect(try await ctl(["topics", "create", topic, "--if-missing"]).status == 0)

        let sub = uniqueName("sub")
        let created = try await ctl(["subscriptions", "create", sub, "--topic", topic, "--ack-deadline", "30", "--enable-message-ordering"])
        #expect(created.status == 0, "\(created.stderr)")
        #expect(created.stdout.contains("\"ackDeadlineSeconds\":30"))
        #expect(try await ctl(["subscriptions", "create", sub, "--topic", topic, "--if-missing"]).status == 0)
        #expect(try await ctl(["subscriptions", "list"]).stdout.contains("projects/test-project/subscriptions/\(sub)"))
        #expect(try await ctl(["topics", "get", topic]).status == 0)

        let missing = try await ctl(["topics", "get", uniqueName("nosuch")])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("NOT_FOUND"))

        let badName = try await ctl(["topics", "create", "go"])
        #expect(badName.status == 2)
        #expect(badName.stderr.contains("at least 3 characters"))

        #expect(try await ctl(["pull"]).status == 2)
        #expect(try await ctl(["topics", "frobnicate"]).status == 2)
        #expect(try await ctl(["subscriptions", "delete", sub]).status == 0)
        #expect(try await ctl(["topics", "delete", topic]).status == 0)
        #expect(try await ctl(["topics", "get", topic]).status == 1)
    }

    @Test("publish (flag and stdin) and pull print what the REST API carries")
    func publishAndPull() async throws {
        let topic = uniqueName("topic"), sub = uniqueName("sub")
        #expect(try await ctl(["topics", "create", topic]).status == 0)
        #expect(try await ctl(["subscriptions", "create", sub, "--topic", topic, "--enable-message-ordering"]).status == 0)

        let one = try await ctl(["publish", topic, "--data", "héllo", "--attribute", "kind=greeting", "--attribute", "n=1", "--ordering-key", "k1"])
        #expect(one.status == 0, "\(one.stderr)")
        let firstID = one.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!firstID.isEmpty)

        let many = try await ctl(["publish", topic], stdin: "line one\n\nline two\nline three\n")
        #expect(many.status == 0)
        #expect(many.stdout.split(separator: "\n").count == 3)

        var lines: [[String: Any]] = []
        for _ in 0..<10 where lines.count < 4 {
            let pulled = try await ctl(["pull", sub, "--max", "10", "--ack"])
            #expect(pulled.status == 0)
            lines += try pulled.stdout.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        }
        #expect(lines.count == 4)
        let first = try #require(lines.first { (($0["message"] as? [String: Any])?["messageId"] as? String) == firstID })
        let message = try #require(first["message"] as? [String: Any])
        #expect(first["ackId"] is String)
        #expect(message["data"] as? String == Data("héllo".utf8).base64EncodedString())
        #expect(message["attributes"] as? [String: String] == ["kind": "greeting", "n": "1"])
        #expect(message["orderingKey"] as? String == "k1")
        #expect(message["publishTime"] is String)
        let payloads = Set(lines.compactMap { (($0["message"] as? [String: Any])?["data"] as? String).flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) } })
        #expect(payloads == ["héllo", "line one", "line two", "line three"])
        // --ack acknowledged them: nothing is left.
        #expect(try await ctl(["pull", sub, "--max", "10"]).stdout.isEmpty)
    }

    @Test("auth print-token prints the self-signed JWT for a key file, and fails clearly without credentials")
    func printToken() async throws {
        let key = fixturesDirectory.appendingPathComponent("test-service-account.json").path
        let result = try await ctl(["auth", "print-token"], environment: ["GOOGLE_APPLICATION_CREDENTIALS": key, "PUBSUB_EMULATOR_HOST": ""])
        #expect(result.status == 0, "\(result.stderr)")
        let token = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = token.split(separator: ".")
        #expect(parts.count == 3)
        let claims = try #require(Base64URL.decode(String(parts[1])).flatMap { try JSONSerialization.jsonObject(with: $0) as? [String: Any] })
        #expect(claims["aud"] as? String == "https://pubsub.googleapis.com/")
        #expect((claims["iss"] as? String)?.hasSuffix(".iam.gserviceaccount.com") == true)
        // The private key never reaches the output.
        #expect(!result.stdout.contains("PRIVATE KEY"))

        let none = try await ctl(["topics", "list"], environment: ["PUBSUB_EMULATOR_HOST": "", "GOOGLE_APPLICATION_CREDENTIALS": "", "GCE_METADATA_HOST": "127.0.0.1:\(try freePort())", "PROJECT_ID": "p-123456"])
        #expect(none.status == 1)
        #expect(none.stderr.contains("GOOGLE_APPLICATION_CREDENTIALS"))
        #expect(none.stderr.contains("PUBSUB_EMULATOR_HOST"))

        let emulator = try await ctl(["auth", "print-token"])
        #expect(emulator.status == 1)
        #expect(emulator.stderr.contains("emulator"))
    }
}
