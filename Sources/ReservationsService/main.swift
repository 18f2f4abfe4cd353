import DaemonSupport
import Foundation
import Logging
import ReservationsApp

// Reads the environment, sets up logs and metrics, and runs until SIGTERM/SIGINT.
await DaemonMain.run(service: "reservations-service") {
    let config = try ReservationsConfig.fromEnvironment(ProcessInfo.processInfo.environment)
    DaemonMain.bootstrapLogging(service: "reservations-service", format: config.logFormat, level: config.logLevel)
    let metrics = DaemonMetrics()
    metrics.bootstrapMetricsSystem()
    let app = try await buildApplication(config, logger: Logger(label: "reservations-service"), metrics: metrics)
    try await app.run()
}
