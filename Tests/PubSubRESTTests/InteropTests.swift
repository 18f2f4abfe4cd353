import Foundation
import PubSubREST
import PubSubTestSupport
import Testing

/// Our client and Google's official Python client, on one emulator.
@Suite("Interop with google-cloud-pubsub (Python)")
struct InteropTests {
    struct PyMessage: Decodable, Hashable {
        let messageId: String
        let data: String
        let attributes: [String: String]
        let orderingKey: String
    }

    static let script = fixturesDirectory.appendingPathComponent("py_interop.py").path

    @Test("messages the Python client publishes are pulled by ours identical in data, attributes and ordering key")
    func pythonPublishesWePull() async throws {
        let emulator = try await Emulator.shared()
        let client = emulator.client()
        let topic = uniqueName("topic"), sub = uniqueName("sub")
        try await client.createTopic(topic)
        try await client.createSubscription(sub, Subscription(topic: topic, ackDeadlineSeconds: 60, enableMessageOrdering: true))

        let result = try await runCommand("/usr/bin/env", ["python3", Self.script, "publish", "test-project", topic, "200"],
                                          environment: ["PUBSUB_EMULATOR_HOST": emulator.host], timeout: .seconds(120))
        #expect(result.status == 0, "python publisher failed: \(result.stderr)")
        let sent = try result.stdout.split(separator: "\n").map { try JSONDecoder().decode(PyMessage.self, from: Data($0.utf8)) }
        #expect(sent.count == 200)

        var received: [String: ReceivedMessage] = [:]
        var order: [String: [Int]] = [:]
        let deadline = ContinuousClock.now + .seconds(60)
        while received.count < sent.count && ContinuousClock.now < deadline {
            let batch = try await client.pull(subscription: sub, maxMessages: 100, returnImmediately: true)
            for message in batch where received[message.messageID] == nil {
                received[message.messageID] = message
                if let key = message.message.orderingKey, let index = message.message.attributes["index"].flatMap(Int.init) {
                    order[key, default: []].append(index)
                }
            }
            if !batch.isEmpty { try await client.acknowledge(subscription: sub, ackIDs: batch.map(\.ackID)) }
        }
        for expected in sent {
            let got = try #require(received[expected.messageId], "message \(expected.messageId) never arrived")
            #expect(got.message.data == Data(base64Encoded: expected.data))
            #expect(got.message.attributes == expected.attributes)
            #expect(got.message.orderingKey == (expected.orderingKey.isEmpty ? nil : expected.orderingKey))
        }
        // Messages with one ordering key arrive in publish order.
        for (key, indices) in order {
            #expect(indices == indices.sorted(), "ordering key \(key) out of order: \(indices)")
        }
    }

    @Test("messages we publish arrive identical at the Python client's streaming-pull subscriber")
    func wePublishPythonReceives() async throws {
        let emulator = try await Emulator.shared()
        let client = emulator.client()
        let topic = uniqueName("topic"), sub = uniqueName("sub")
        try await client.createTopic(topic)
        try await client.createSubscription(sub, Subscription(topic: topic, ackDeadlineSeconds: 60))

        var sent: [String: PubSubMessage] = [:]
        let messages = (0..<150).map { i in
            PubSubMessage(
                data: Data((0..<(1 + i % 40)).map { UInt8(($0 * 7 + i) % 256) }),
                attributes: ["index": "\(i)", "source": "swift", "ünï": "✓"],
                orderingKey: i % 5 == 0 ? "swift-key" : nil
            )
        }
        let ids = try await client.publish(topic: topic, messages: messages)
        for (id, message) in zip(ids, messages) { sent[id] = message }

        let result = try await runCommand("/usr/bin/env", ["python3", Self.script, "receive", "test-project", sub, "150", "60"],
                                          environment: ["PUBSUB_EMULATOR_HOST": emulator.host], timeout: .seconds(120))
        #expect(result.status == 0, "python subscriber failed: \(result.stderr.suffix(2000))")
        let got = try result.stdout.split(separator: "\n").map { try JSONDecoder().decode(PyMessage.self, from: Data($0.utf8)) }
        #expect(Set(got.map(\.messageId)) == Set(ids))
        for message in got {
            let original = try #require(sent[message.messageId])
            #expect(Data(base64Encoded: message.data) == original.data)
            #expect(message.attributes == original.attributes)
            #expect(message.orderingKey == (original.orderingKey ?? ""))
        }
    }
}
