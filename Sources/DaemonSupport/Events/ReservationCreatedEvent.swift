import Foundation

/// The `reservation_created` event, as published by ReservationsService and consumed by
/// ReportingService:
///
/// ```json
/// {"time": "2024-09-23T11:14:33.723Z", "type": "reservation_created",
///  "data": {"reservation_id": "1336dff2-2ba4-4fae-9980-008aaaea31b1"}}
/// ```
///
/// `time` is RFC 3339 in UTC (the tutorial's `datetime.now().isoformat()` had no zone).
/// `data` may hold more fields (those of the request body); `reservation_id` is always there.
public struct ReservationCreatedEvent: Sendable, Equatable {
    public static let type = "reservation_created"

    public var time: String
    public var reservationID: String
    /// Every field of `data`, `reservation_id` included.
    public var data: [String: JSONValue]

    /// A new event; `extra` fields go into `data`, but `reservation_id` is always `reservationID`.
    public init(reservationID: String, time: Date = Date(), extra: [String: JSONValue] = [:]) {
        self.time = Timestamp.rfc3339(time)
        self.reservationID = reservationID
        var data = extra
        data["reservation_id"] = .string(reservationID)
        self.data = data
    }

    /// The JSON bytes published to Pub/Sub (keys sorted, so equal events are equal bytes).
    public func encoded() -> Data {
        let object: JSONValue = .object(["time": .string(time), "type": .string(Self.type), "data": .object(data)])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding a JSONValue of strings and finite numbers cannot fail.
        return (try? encoder.encode(object)) ?? Data()
    }

    /// Decodes and validates a message's data.
    /// - Throws: ``EventDecodingError`` saying what is wrong (not JSON, wrong type, no id...).
    public static func decode(_ bytes: Data) throws(EventDecodingError) -> ReservationCreatedEvent {
        let value: JSONValue
        do {
            value = try JSONDecoder().decode(JSONValue.self, from: bytes)
        } catch {
            throw EventDecodingError("not JSON (\(bytes.count) bytes)")
        }
        guard let object = value.objectValue else {
            throw EventDecodingError("not a JSON object")
        }
        guard let type = object["type"]?.stringValue else {
            throw EventDecodingError("no string field 'type'")
        }
        guard type == Self.type else {
            throw EventDecodingError("type is '\(type)', not '\(Self.type)'")
        }
        guard let data = object["data"]?.objectValue else {
            throw EventDecodingError("no object field 'data'")
        }
        guard let id = data["reservation_id"]?.stringValue, !id.isEmpty else {
            throw EventDecodingError("no string field 'data.reservation_id'")
        }
        guard let time = object["time"]?.stringValue else {
            throw EventDecodingError("no string field 'time'")
        }
        var event = ReservationCreatedEvent(reservationID: id)
        event.time = time
        event.data = data
        return event
    }
}

/// Why a message is not a valid ``ReservationCreatedEvent``.
public struct EventDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
