import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How the daemons write log lines.
public enum LogFormat: String, Sendable, CaseIterable {
    /// One JSON object per line: `time`, `level`, `message`, `service`, then the metadata.
    case json
    /// structlog's console layout, as in the tutorial:
    /// `2024-09-23 11:14:33 [info     ] Publishing event               data=...`.
    case console
}

/// Where finished log lines go. The default writes each line to stdout with one `write(2)`
/// under a lock, so lines from concurrent tasks never interleave and nothing waits in a buffer
/// when the process is killed.
public struct LogSink: Sendable {
    public let write: @Sendable (String) -> Void

    public init(_ write: @escaping @Sendable (String) -> Void) {
        self.write = write
    }

    public static let standardOutput = LogSink { line in FileDescriptorWriter.stdout.write(line + "\n") }
    public static let standardError = LogSink { line in FileDescriptorWriter.stderr.write(line + "\n") }
}

final class FileDescriptorWriter: Sendable {
    static let stdout = FileDescriptorWriter(fd: 1)
    static let stderr = FileDescriptorWriter(fd: 2)

    private let fd: Int32
    private let lock = Mutex<Void>(())

    init(fd: Int32) { self.fd = fd }

    func write(_ text: String) {
        var bytes = Array(text.utf8)
        lock.withLock { _ in
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeMutableBytes { raw in
                    Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                }
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
        bytes.removeAll()
    }
}

/// Time stamps, formatted without `DateFormatter` (not thread-safe on every platform).
public enum Timestamp {
    /// RFC 3339 in UTC with milliseconds: `2024-09-23T11:14:33.723Z`.
    public static func rfc3339(_ date: Date = Date()) -> String {
        let (tm, millis) = utc(date)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
            Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec), millis
        )
    }

    /// structlog's console time stamp: `2024-09-23 11:14:33` (UTC).
    public static func console(_ date: Date = Date()) -> String {
        let (tm, _) = utc(date)
        return String(
            format: "%04d-%02d-%02d %02d:%02d:%02d",
            Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
            Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec)
        )
    }

    private static func utc(_ date: Date) -> (tm, Int) {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(interval.rounded(.down))
        var millis = Int(((interval - Double(seconds)) * 1000).rounded(.down))
        if millis >= 1000 { seconds += 1; millis -= 1000 }
        var result = tm()
        gmtime_r(&seconds, &result)
        return (result, max(0, millis))
    }
}
