import Foundation
import PubSubREST
import PubSubTestSupport
import Testing

/// The REST client against the official Pub/Sub emulator (started once per test process).
@Suite("REST API against the emulator")
struct EmulatorAPITests {
    @Test("topics: create, get, list, delete, and the errors of each")
    func topicLifecycle() async throws {
        let client = try await Emulator.shared().client()
        let id = uniqueName("topic")
        let created = try await client.createTopic(id, labels: ["team": "reservations"])
        #expect(created.name == "projects/test-project/topics/\(id)")

        let again = await #expect(throws: PubSubError.self) { try await client.createTopic(id) }
        #expect(again?.httpStatus == 409)
        #expect(again?.code == .alreadyExists)
        #expect(again?.isRetryable == false)

        let fetched = try await client.getTopic(id)
        #expect(fetched.name == created.name)
        #expect(try await client.ensureTopic(id).name == created.name)

        let names = try await client.allTopics().map(\.name)
        #expect(names.contains(created.name))

        try await client.deleteTopic(id)
        let missing = await #expect(throws: PubSubError.self) { try await client.getTopic(id) }
        #expect(missing?.httpStatus == 404)
        #expect(missing?.code == .notFound)
        #expect(missing?.message.isEmpty == false)
    }

    @Test("subscriptions: create with options, get, list, delete")
    func subscriptionLifecycle() async throws {
        let client = try await Emulator.shared().client()
        let topic = uniqueName("topic")
        let deadLetter = uniqueName("dead")
        try await client.createTopic(topic)
        try await client.createTopic(deadLetter)
        let id = uniqueName("sub")
        let created = try await client.createSubscription(id, Subscription(
            topic: topic,
            ackDeadlineSeconds: 42,
            messageRetentionDuration: "3600s",
            labels: ["env": "test"],
            enableMessageOrdering: true,
            filter: "attributes.kind = \"a\"",
            deadLetterPolicy: DeadLetterPolicy(deadLetterTopic: deadLetter, maxDeliveryAttempts: 7),
            retryPolicy: RetryPolicy(minimumBackoff: "10s", maximumBackoff: "60s")
        ))
        #expect(created.name == "projects/test-project/subscriptions/\(id)")
        #expect(created.topic == "projects/test-project/topics/\(topic)")
        #expect(created.ackDeadlineSeconds == 42)
        #expect(created.enableMessageOrdering == true)
        #expect(created.deadLetterPolicy?.deadLetterTopic == "projects/test-project/topics/\(deadLetter)")
        #expect(created.deadLetterPolicy?.maxDeliveryAttempts == 7)

        let fetched = try await client.getSubscription(id)
        #expect(fetched.ackDeadlineSeconds == 42)
        #expect(try await client.allSubscriptions().map(\.name).contains(created.name))

        let duplicate = await #expect(throws: PubSubError.self) { try await client.createSubscription(id, Subscription(topic: topic)) }
        #expect(duplicate?.code == .alreadyExists)
        #expect(try await client.ensureSubscription(id, Subscription(topic: topic)).ackDeadlineSeconds == 42)

        try await client.deleteSubscription(id)
        let missing = await #expect(throws: PubSubError.self) { try await client.getSubscription(id) }
        #expect(missing?.code == .notFound)

        let noTopic = await #expect(throws: PubSubError.self) {
            try await client.createSubscription(uniqueName("sub"), Subscription(topic: uniqueName("nosuchtopic")))
        }
        #expect(noTopic?.code == .notFound)
    }

    @Test("1000 messages with attributes and ordering keys come back byte-identical")
    func publishPullRoundTrip() async throws {
        let client = try await Emulator.shared().client()
        let topic = uniqueName("topic")
        let sub = uniqueName("sub")
        try await client.createTopic(topic)
        try await client.createSubscription(sub, Subscription(topic: topic, ackDeadlineSeconds: 60, enableMessageOrdering: true))

        var sent: [String: PubSubMessage] = [:]
        var batch: [PubSubMessage] = []
        for i in 0..<1000 {
            // Binary payloads, including bytes that are not UTF-8 and a NUL.
            var bytes = [UInt8](repeating: 0, count: 1 + i % 97)
            for j in bytes.indices { bytes[j] = UInt8((i * 31 + j * 7) % 256) }
            batch.append(PubSubMessage(
                data: Data(bytes),
                attributes: ["index": "\(i)", "kind": i % 2 == 0 ? "even" : "odd", "ünïcode": "✓"],
                orderingKey: i % 3 == 0 ? "key-\(i % 5)" : nil
            ))
        }
        for chunk in stride(from: 0, to: batch.count, by: 250) {
            let slice = Array(batch[chunk..<chunk + 250])
            let ids = try await client.publish(topic: topic, messages: slice)
            #expect(ids.count == 250)
            #expect(Set(ids).count == 250)
            for (id, message) in zip(ids, slice) { sent[id] = message }
        }

        var received: [String: ReceivedMessage] = [:]
        let deadline = ContinuousClock.now + .seconds(60)
        while received.count < 1000 && ContinuousClock.now < deadline {
            let messages = try await client.pull(subscription: sub, maxMessages: 1000, returnImmediately: true)
            for message in messages { received[message.messageID] = message }
            try await client.acknowledge(subscription: sub, ackIDs: messages.map(\.ackID))
        }
        #expect(received.count == 1000)
        for (id, message) in sent {
            let got = try #require(received[id])
            #expect(got.message == message, "message \(id) differs")
            #expect(!got.publishTime.isEmpty)
        }
        // Everything was acknowledged: nothing comes back.
        let leftover = try await client.pull(subscription: sub, maxMessages: 100, returnImmediately: true)
        #expect(leftover.isEmpty)
    }

    @Test("modifyAckDeadline 0 redelivers; acknowledge does not")
    func nackRedelivers() async throws {
        let client = try await Emulator.shared().client()
        let topic = uniqueName("topic")
        let sub = uniqueName("sub")
        try await client.createTopic(topic)
        try await client.createSubscription(sub, Subscription(topic: topic, ackDeadlineSeconds: 600))
        let ids = try await client.publish(topic: topic, messages: [PubSubMessage("nack me"), PubSubMessage("ack me")])

        var first: [ReceivedMessage] = []
        for _ in 0..<20 where first.count < 2 {
            first += try await client.pull(subscription: sub, maxMessages: 10, returnImmediately: true)
        }
        #expect(Set(first.map(\.messageID)) == Set(ids))
        let nack = try #require(first.first { $0.message.data == Data("nack me".utf8) })
        let ack = try #require(first.first { $0.message.data == Data("ack me".utf8) })
        try await client.acknowledge(subscription: sub, ackIDs: [ack.ackID])
        try await client.modifyAckDeadline(subscription: sub, ackIDs: [nack.ackID], seconds: 0)

        var again: [ReceivedMessage] = []
        for _ in 0..<20 where again.isEmpty {
            again += try await client.pull(subscription: sub, maxMessages: 10, returnImmediately: true)
        }
        #expect(again.map(\.messageID) == [nack.messageID])
        #expect(again.first?.ackID != nack.ackID)
    }

    @Test("bad requests map to INVALID_ARGUMENT / NOT_FOUND and are not retried")
    func errorMapping() async throws {
        let client = try await Emulator.shared().client()
        let missingTopic = await #expect(throws: PubSubError.self) {
            try await client.publish(topic: uniqueName("nosuchtopic"), messages: [PubSubMessage("x")])
        }
        #expect(missingTopic?.httpStatus == 404)
        #expect(missingTopic?.code == .notFound)
        #expect(missingTopic?.operation?.contains(":publish") == true)

        let missingSub = await #expect(throws: PubSubError.self) {
            try await client.pull(subscription: uniqueName("nosuchsub"), returnImmediately: true)
        }
        #expect(missingSub?.code == .notFound)

        let topic = uniqueName("topic")
        try await client.createTopic(topic)
        let sub = uniqueName("sub")
        try await client.createSubscription(sub, Subscription(topic: topic))
        let badAck = await #expect(throws: PubSubError.self) {
            try await client.acknowledge(subscription: sub, ackIDs: ["not-an-ack-id"])
        }
        #expect(badAck?.httpStatus == 400)
        #expect(badAck?.code == .invalidArgument)
    }
}
