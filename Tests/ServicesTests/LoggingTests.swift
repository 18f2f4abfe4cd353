import DaemonSupport
import Foundation
import Logging
import Synchronization
import Testing

/// Collects log lines in memory.
final class LineCollector: Sendable {
    private let lines = Mutex<[String]>([])
    var sink: LogSink { LogSink { line in self.lines.withLock { $0.append(line) } } }
    var all: [String] { lines.withLock { $0 } }
}

@Suite struct LoggingTests {
    @Test func jsonLineShape() throws {
        let collector = LineCollector()
        var logger = Logger(label: "test") { _ in JSONLogHandler(service: "reservations-service", level: .info, sink: collector.sink) }
        logger[metadataKey: "replica"] = "r1"
        logger.info("Publishing event", metadata: ["data": "{\"a\":\"b\\nc\"}", "nested": ["k": "v"], "message": "collides"])
        logger.debug("not written at info")
        let lines = collector.all
        #expect(lines.count == 1)
        let line = try #require(lines.first)
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["level"] as? String == "info")
        #expect(object["message"] as? String == "Publishing event")
        #expect(object["service"] as? String == "reservations-service")
        #expect(object["replica"] as? String == "r1")
        #expect(object["data"] as? String == "{\"a\":\"b\\nc\"}")
        #expect((object["nested"] as? [String: Any])?["k"] as? String == "v")
        #expect(object["meta_message"] as? String == "collides")
        let time = try #require(object["time"] as? String)
        // 2024-09-23T11:14:33.723Z
        #expect(time.count == 24)
        #expect(time.hasSuffix("Z"))
        #expect(time.contains("T"))
        #expect(line.hasPrefix("{\"time\":"))
    }

    @Test func consoleLineShape() throws {
        let collector = LineCollector()
        let logger = Logger(label: "test") { _ in ConsoleLogHandler(service: "s", level: .info, sink: collector.sink) }
        logger.info("Message published successfully", metadata: ["message_id": "42"])
        logger.info("Publishing event", metadata: ["data": "x"])
        let lines = collector.all
        #expect(lines.count == 2)
        // 2024-09-23 11:14:33 [info     ] Publishing event               data=x
        let pattern = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \[info     \] Message published successfully message_id=42$/
        #expect(lines[0].wholeMatch(of: pattern) != nil, "\(lines[0])")
        #expect(lines[1].hasSuffix("[info     ] Publishing event               data=x"), "\(lines[1])")
    }

    @Test func timestampFormats() {
        let date = Date(timeIntervalSince1970: 1_727_090_073.7239)
        #expect(Timestamp.rfc3339(date) == "2024-09-23T11:14:33.723Z")
        #expect(Timestamp.console(date) == "2024-09-23 11:14:33")
    }
}
