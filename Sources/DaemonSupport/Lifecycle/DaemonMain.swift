import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// What an executable's `main.swift` calls: configuration or start-up errors become ONE line on
/// stderr (`<service>: <what is wrong>`) and exit status 1; a clean shutdown exits 0.
public enum DaemonMain {
    public static func run(service: String, _ body: () async throws -> Void) async -> Never {
        signal(SIGPIPE, SIG_IGN)
        do {
            try await body()
            exit(0)
        } catch let error as ConfigError {
            fail(service, "configuration error: \(error)")
        } catch let error as StartupError {
            fail(service, error.description)
        } catch {
            fail(service, "\(error)")
        }
    }

    private static func fail(_ service: String, _ line: String) -> Never {
        let oneLine = line.replacingOccurrences(of: "\n", with: " ")
        FileDescriptorWriter.stderr.write("\(service): \(oneLine)\n")
        exit(1)
    }

    /// Bootstraps swift-log with the daemon's handler. Executables only, once.
    public static func bootstrapLogging(service: String, format: LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap { _ in format.makeHandler(service: service, level: level) }
    }
}
