import ArgumentParser
import Foundation
import PubSubREST

#if canImport(Glibc)
import Glibc
#endif

/// `pubsubctl`: Pub/Sub from the command line, like `gcloud pubsub`, over PubSubREST.
///
/// Exit codes: 0 ok, 1 the API (or credentials) failed, 2 usage.
@main
struct PubSubCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pubsubctl",
        abstract: "Manage Google Cloud Pub/Sub topics and subscriptions, publish and pull messages.",
        discussion: """
            Credentials come from the environment, as in Google's clients: PUBSUB_EMULATOR_HOST \
            (the emulator, no credentials), GOOGLE_APPLICATION_CREDENTIALS (a service-account key \
            file), or the metadata server. PUBSUB_TOKEN_MODE=oauth2 exchanges the key's JWT for an \
            OAuth2 token instead of sending it directly. Exit codes: 0 ok, 1 API error, 2 usage.
            """,
        subcommands: [Topics.self, Subscriptions.self, Publish.self, Pull.self, Auth.self]
    )

    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as PubSubError {
            printError("pubsubctl: \(error)")
            // A request that never left (a bad name, an empty message) is a usage error.
            Glibc.exit(error.kind == .invalidArgument && error.httpStatus == nil ? 2 : 1)
        } catch let error as RuntimeError {
            printError("pubsubctl: \(error.message)")
            Glibc.exit(1)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            printError(fullMessage(for: error))
            Glibc.exit(2)
        }
    }
}

/// A failure that is not the API's (unreadable input...): exit code 1.
struct RuntimeError: Error {
    let message: String
}

func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Options every command that talks to Pub/Sub takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "The Google Cloud project (default: PROJECT_ID, then the credentials' project).")
    var project: String?

    func client() async throws -> PubSubClient {
        try await PubSubClient.fromEnvironment(projectID: project)
    }
}

/// `key=value`, for `--attribute` and `--label`.
struct KeyValue: ExpressibleByArgument {
    let key: String
    let value: String

    init?(argument: String) {
        guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex else { return nil }
        key = String(argument[..<equals])
        value = String(argument[argument.index(after: equals)...])
    }
}

extension Array where Element == KeyValue {
    var dictionary: [String: String] {
        Dictionary(map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }
}

let jsonEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return encoder
}()

func printJSON(_ value: some Encodable) throws {
    print(String(decoding: try jsonEncoder.encode(value), as: UTF8.self))
}

// MARK: - topics

struct Topics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, get, list and delete topics.",
        subcommands: [Create.self, Get.self, List.self, Delete.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a topic.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The topic ID (or projects/P/topics/T).") var topic: String
        @Option(name: .customLong("label"), help: "A label, key=value (repeatable).") var labels: [KeyValue] = []
        @Option(help: "How long to keep messages, e.g. 600s.") var messageRetentionDuration: String?
        @Flag(help: "Succeed when the topic already exists.") var ifMissing = false

        func run() async throws {
            let client = try await global.client()
            do {
                try printJSON(try await client.createTopic(topic, labels: labels.isEmpty ? nil : labels.dictionary, messageRetentionDuration: messageRetentionDuration))
            } catch let error as PubSubError where ifMissing && error.code == .alreadyExists {
                try printJSON(try await client.getTopic(topic))
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a topic as JSON.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The topic ID.") var topic: String

        func run() async throws {
            try printJSON(try await global.client().getTopic(topic))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the project's topics, one JSON object per line.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            for topic in try await global.client().allTopics() { try printJSON(topic) }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a topic.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The topic ID.") var topic: String

        func run() async throws {
            try await global.client().deleteTopic(topic)
        }
    }
}

// MARK: - subscriptions

struct Subscriptions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, get, list and delete subscriptions.",
        subcommands: [Create.self, Get.self, List.self, Delete.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a pull subscription.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The subscription ID.") var subscription: String
        @Option(help: "The topic to subscribe to.") var topic: String
        @Option(help: "Ack deadline in seconds, 10 to 600 (service default 10).") var ackDeadline: Int?
        @Option(help: "Dead-letter topic for messages that keep failing.") var deadLetterTopic: String?
        @Option(help: "Delivery attempts before dead-lettering, 5 to 100 (service default 5).") var maxDeliveryAttempts: Int?
        @Option(help: "Retry policy minimum backoff, e.g. 10s.") var minRetryDelay: String?
        @Option(help: "Retry policy maximum backoff, e.g. 600s.") var maxRetryDelay: String?
        @Flag(help: "Deliver messages with one ordering key in order.") var enableMessageOrdering = false
        @Flag(help: "Exactly-once delivery.") var enableExactlyOnceDelivery = false
        @Option(help: "Filter on attributes, e.g. 'attributes.type = \"x\"'.") var filter: String?
        @Option(help: "How long to keep unacknowledged messages, e.g. 604800s.") var messageRetentionDuration: String?
        @Option(name: .customLong("label"), help: "A label, key=value (repeatable).") var labels: [KeyValue] = []
        @Flag(help: "Succeed when the subscription already exists.") var ifMissing = false

        func validate() throws {
            if maxDeliveryAttempts != nil && deadLetterTopic == nil {
                throw ValidationError("--max-delivery-attempts needs --dead-letter-topic")
            }
        }

        func run() async throws {
            let client = try await global.client()
            let settings = Subscription(
                topic: topic,
                ackDeadlineSeconds: ackDeadline,
                messageRetentionDuration: messageRetentionDuration,
                labels: labels.isEmpty ? nil : labels.dictionary,
                enableMessageOrdering: enableMessageOrdering ? true : nil,
                filter: filter,
                deadLetterPolicy: deadLetterTopic.map { DeadLetterPolicy(deadLetterTopic: $0, maxDeliveryAttempts: maxDeliveryAttempts) },
                retryPolicy: (minRetryDelay != nil || maxRetryDelay != nil) ? RetryPolicy(minimumBackoff: minRetryDelay, maximumBackoff: maxRetryDelay) : nil,
                enableExactlyOnceDelivery: enableExactlyOnceDelivery ? true : nil
            )
            do {
                try printJSON(try await client.createSubscription(subscription, settings))
            } catch let error as PubSubError where ifMissing && error.code == .alreadyExists {
                try printJSON(try await client.getSubscription(subscription))
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a subscription as JSON.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The subscription ID.") var subscription: String

        func run() async throws {
            try printJSON(try await global.client().getSubscription(subscription))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the project's subscriptions, one JSON object per line.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            for subscription in try await global.client().allSubscriptions() { try printJSON(subscription) }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a subscription.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The subscription ID.") var subscription: String

        func run() async throws {
            try await global.client().deleteSubscription(subscription)
        }
    }
}

// MARK: - publish

struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish messages; prints each message ID on its own line.",
        discussion: "Without --data, every line of standard input is one message (empty lines are skipped)."
    )
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The topic ID.") var topic: String
    @Option(help: "The message payload.") var data: String?
    @Option(name: .customLong("attribute"), help: "An attribute, key=value (repeatable).") var attributes: [KeyValue] = []
    @Option(help: "The ordering key.") var orderingKey: String?

    func run() async throws {
        let client = try await global.client()
        let attributes = attributes.dictionary
        if let data {
            let ids = try await client.publish(topic: topic, messages: [PubSubMessage(data, attributes: attributes, orderingKey: orderingKey)])
            ids.forEach { print($0) }
            return
        }
        var batch: [PubSubMessage] = []
        var batchBytes = 0
        func flush() async throws {
            guard !batch.isEmpty else { return }
            let ids = try await client.publish(topic: topic, messages: batch)
            ids.forEach { print($0) }
            batch.removeAll(keepingCapacity: true)
            batchBytes = 0
        }
        while let line = Swift.readLine(strippingNewline: true) {
            if line.isEmpty { continue }
            let message = PubSubMessage(line, attributes: attributes, orderingKey: orderingKey)
            if batch.count == PubSubClient.Limits.maxMessagesPerPublish || batchBytes + message.byteSize * 2 > 5_000_000 {
                try await flush()
            }
            batch.append(message)
            batchBytes += message.byteSize
        }
        try await flush()
    }
}

// MARK: - pull

/// One line of `pull` output, shaped like the REST API's `receivedMessages[]` entry.
struct PulledLine: Encodable {
    struct Message: Encodable {
        let data: String
        let attributes: [String: String]?
        let messageId: String
        let publishTime: String
        let orderingKey: String?
    }
    let ackId: String
    let message: Message
    let deliveryAttempt: Int?
}

struct Pull: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pull messages; prints one JSON object per line, shaped like the REST API's receivedMessages[] entry."
    )
    @OptionGroup var global: GlobalOptions
    @Argument(help: "The subscription ID.") var subscription: String
    @Option(help: "At most this many messages (1 to 1000).") var max = 1
    @Flag(help: "Acknowledge the pulled messages.") var ack = false
    @Flag(help: "Wait (long-poll, up to about 90 s) for messages instead of returning at once.") var wait = false

    func validate() throws {
        guard (1...1000).contains(max) else { throw ValidationError("--max must be 1 to 1000") }
    }

    func run() async throws {
        let client = try await global.client()
        let messages = try await client.pull(subscription: subscription, maxMessages: max, returnImmediately: !wait)
        for received in messages {
            try printJSON(PulledLine(
                ackId: received.ackID,
                message: .init(
                    data: received.message.data.base64EncodedString(),
                    attributes: received.message.attributes.isEmpty ? nil : received.message.attributes,
                    messageId: received.messageID,
                    publishTime: received.publishTime,
                    orderingKey: received.message.orderingKey
                ),
                deliveryAttempt: received.deliveryAttempt
            ))
        }
        if ack && !messages.isEmpty {
            try await client.acknowledge(subscription: subscription, ackIDs: messages.map(\.ackID))
        }
    }
}

// MARK: - auth

struct Auth: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Credentials.", subcommands: [PrintToken.self])

    struct PrintToken: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the bearer token the library would send.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let client = try await global.client()
            guard let header = try await client.authorizationHeaderValue() else {
                throw RuntimeError(message: "no token: PUBSUB_EMULATOR_HOST is set, and the emulator takes no credentials")
            }
            print(header.hasPrefix("Bearer ") ? String(header.dropFirst("Bearer ".count)) : header)
        }
    }
}
