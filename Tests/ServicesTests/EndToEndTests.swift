import DaemonSupport
import Foundation
import PubSubREST
import PubSubTestSupport
import Synchronization
import Testing

/// The real executables against the emulator, talking over sockets, stopped with SIGTERM.
@Suite
struct EndToEndTests {
    /// 500 concurrent POSTs; three reporting replicas share subscription A, one insights
    /// service reads subscription B; one replica gets SIGTERM halfway. Every reservation
    /// reaches A's replicas (each at least once, and exactly one replica unless it was the
    /// one stopped) and B; every process exits 0 on SIGTERM within 15 s.
    @Test func fanOutAcrossReplicasAndSubscriptions() async throws {
        let emulator = try await Emulator.shared()
        let client = emulator.client()
        let topic = uniqueName("e2e-topic"), subA = uniqueName("e2e-a"), subB = uniqueName("e2e-b")
        try await client.createTopic(topic)
        try await client.createSubscription(subA, Subscription(topic: topic, ackDeadlineSeconds: 60))
        try await client.createSubscription(subB, Subscription(topic: topic, ackDeadlineSeconds: 60))

        let common = ["PUBSUB_EMULATOR_HOST": emulator.host, "PROJECT_ID": "test-project", "TOPIC_ID": topic]
        let port = try freePort()
        let reservations = try DaemonProcess("ReservationsService", environment: common.merging(["PORT": "\(port)"]) { $1 })
        var replicas: [DaemonProcess] = []
        for index in 0..<3 {
            replicas.append(try DaemonProcess(
                "ReportingService", name: "reporting-\(index)",
                environment: common.merging(["SUBSCRIPTION_ID": subA, "PORT": "\(try freePort())"]) { $1 }
            ))
        }
        let insights = try DaemonProcess("ReportingService", name: "insights", environment: common.merging(["SUBSCRIPTION_ID": subB]) { $1 })
        let all = [reservations] + replicas + [insights]

        try await reservations.waitForLog("Listening")
        for process in replicas + [insights] {
            let line = try await process.waitForLog("Subscribing to topic")
            #expect((line["subscription"] as? String)?.hasSuffix("/subscriptions/" + (process === insights ? subB : subA)) == true)
        }
        let startup = try #require(reservations.logs(message: "Starting reservations service").first)
        #expect(startup["topic"] as? String == topic)
        #expect(startup["credentials"] as? String != nil)

        // 500 POSTs from 32 workers.
        let http = HTTP(port: port)
        let total = 500, workers = 32
        let next = SharedCounter()
        let stoppedReplica = SharedBox<(status: Int32?, took: Duration)?>(nil)
        let victim = replicas[0]
        let results = try await withThrowingTaskGroup(of: [(Int, String?)].self) { group in
            for _ in 0..<workers {
                group.addTask {
                    var mine: [(Int, String?)] = []
                    while true {
                        let n = next.next()
                        if n >= total { break }
                        let response = try await http.request("POST", "/reservations")
                        let body = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]
                        mine.append((response.status, body?["reservation_id"] as? String))
                    }
                    return mine
                }
            }
            // SIGTERM one replica in the middle of the run.
            group.addTask {
                while next.value < total / 2 { try await Task.sleep(for: .milliseconds(20)) }
                let outcome = await victim.terminate(timeout: .seconds(15))
                stoppedReplica.value = outcome
                return []
            }
            var all: [(Int, String?)] = []
            for try await part in group { all += part }
            return all
        }
        #expect(results.count == total)
        #expect(results.allSatisfy { $0.0 == 201 }, "statuses: \(Dictionary(grouping: results, by: \.0).mapValues(\.count))")
        let ids = Set(results.compactMap(\.1))
        #expect(ids.count == total)
        let stopped = stoppedReplica.value
        #expect(stopped?.status == 0, "the replica stopped mid-run exits 0")
        #expect((stopped?.took ?? .seconds(99)) < .seconds(15))

        func received(_ process: DaemonProcess) -> [String] {
            process.logs(message: "Received event").compactMap { $0["reservation_id"] as? String }
        }
        // Wait until every id has arrived on both subscriptions.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let onA = Set(replicas.flatMap(received)), onB = Set(received(insights))
            if ids.isSubset(of: onA) && ids.isSubset(of: onB) { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        let perReplica = replicas.map { Set(received($0)) }
        let onA = perReplica.reduce(into: Set<String>()) { $0.formUnion($1) }
        #expect(ids.subtracting(onA).isEmpty, "\(ids.subtracting(onA).count) reservations never reached subscription A")
        #expect(ids.subtracting(Set(received(insights))).isEmpty, "the insights service misses some")
        // The replicas that kept running never share an id; overlaps can only involve the one
        // stopped (a message it handled whose ack did not make it before it exited).
        #expect(perReplica[1].intersection(perReplica[2]).isEmpty)
        #expect(perReplica.filter { !$0.isEmpty }.count >= 2, "the work was spread over replicas")
        let line = try #require(insights.logs(message: "Received event").first)
        #expect(line["type"] as? String == "reservation_created")
        #expect(line["message_id"] as? String != nil)
        #expect(line["event_time"] as? String != nil)

        // /metrics on a replica counts what it received.
        let metrics = try await HTTP(port: Int(replicas[1].environmentPort!)!).request("GET", "/metrics")
        #expect(String(decoding: metrics.body, as: UTF8.self).contains("reporting_messages_received_total \(received(replicas[1]).count)"))

        for process in all where process !== victim {
            let outcome = await process.terminate(timeout: .seconds(15))
            #expect(outcome.status == 0, "\(process.name) exits 0 on SIGTERM; stderr: \(process.errors.suffix(3))")
        }
        #expect(reservations.logs(message: "Stopped").count == 1)
    }
}

extension DaemonProcess {
    var environmentPort: String? { process.environment?["PORT"] }
}

final class SharedCounter: Sendable {
    private let storage = Atomic<Int>(0)
    /// Returns the current value and increments it.
    func next() -> Int { storage.add(1, ordering: .relaxed).oldValue }
    var value: Int { storage.load(ordering: .relaxed) }
}

final class SharedBox<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>
    init(_ value: Value) { storage = Mutex(value) }
    var value: Value {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}
