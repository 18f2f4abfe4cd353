import DaemonSupport
import Foundation
import Logging
import ReportingApp
import Testing

@Suite struct EventTests {
    @Test func roundTrip() throws {
        let event = ReservationCreatedEvent(reservationID: "abc-1", extra: ["guests": .number(2), "reservation_id": .string("not-ours")])
        let object = try #require(try JSONSerialization.jsonObject(with: event.encoded()) as? [String: Any])
        #expect(object["type"] as? String == "reservation_created")
        let data = try #require(object["data"] as? [String: Any])
        #expect(data["reservation_id"] as? String == "abc-1", "reservation_id is always ours")
        #expect(data["guests"] as? Int == 2)
        let decoded = try ReservationCreatedEvent.decode(event.encoded())
        #expect(decoded.reservationID == "abc-1")
        #expect(decoded.time == event.time)
    }

    @Test(arguments: [
        ("not json", "not JSON"),
        ("[1,2]", "not a JSON object"),
        (#"{"type":"other","time":"t","data":{"reservation_id":"x"}}"#, "type is 'other'"),
        (#"{"type":"reservation_created","time":"t","data":{}}"#, "data.reservation_id"),
        (#"{"type":"reservation_created","time":"t"}"#, "'data'"),
        (#"{"type":"reservation_created","data":{"reservation_id":"x"}}"#, "'time'"),
    ])
    func invalidPayloads(payload: String, reason: String) {
        #expect {
            try ReservationCreatedEvent.decode(Data(payload.utf8))
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test func duplicateWindowIsBounded() {
        let window = DuplicateWindow(capacity: 3)
        #expect(!window.observe("a"))
        #expect(window.observe("a"))
        #expect(!window.observe("b"))
        #expect(!window.observe("c"))
        #expect(!window.observe("d"), "evicts a")
        #expect(window.count == 3)
        #expect(!window.observe("a"), "a was forgotten")
        #expect(window.observe("d"))
        for i in 0..<10_000 { _ = window.observe("x\(i)") }
        #expect(window.count == 3)
    }

    @Test func handlerDispositions() {
        let collector = LineCollector()
        let logger = Logger(label: "t") { _ in JSONLogHandler(service: "reporting-service", sink: collector.sink) }
        let metrics = DaemonMetrics()
        let plain = EventHandler(hasDeadLetterPolicy: false, window: DuplicateWindow(capacity: 10), metrics: metrics, logger: logger)
        let withDLQ = EventHandler(hasDeadLetterPolicy: true, window: DuplicateWindow(capacity: 10), metrics: metrics, logger: logger)
        let good = ReservationCreatedEvent(reservationID: "r-1").encoded()
        #expect(plain.handle(data: good, messageID: "m1", deliveryAttempt: 1) == .ack)
        #expect(plain.handle(data: good, messageID: "m1", deliveryAttempt: 2) == .ack)
        #expect(plain.handle(data: Data("junk".utf8), messageID: "m2", deliveryAttempt: nil) == .ack)
        #expect(withDLQ.handle(data: Data("junk".utf8), messageID: "m3", deliveryAttempt: 1) == .nack)
        let lines = collector.all
        #expect(lines.filter { $0.contains("\"message\":\"Received event\"") && $0.contains("\"reservation_id\":\"r-1\"") }.count == 2)
        #expect(lines.contains { $0.contains("\"level\":\"error\"") && $0.contains("\"message_id\":\"m2\"") })
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(text.contains("reporting_messages_received_total 4"), "\(text)")
        #expect(text.contains("reporting_duplicates_total 1"))
        #expect(text.contains("reporting_invalid_messages_total 2"))
    }
}
