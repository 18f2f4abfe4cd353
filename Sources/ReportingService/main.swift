import DaemonSupport
import Foundation
import Logging
import ReportingApp

// Reads the environment, sets up logs and metrics, and receives until SIGTERM/SIGINT.
await DaemonMain.run(service: "reporting-service") {
    let config = try ReportingConfig.fromEnvironment(ProcessInfo.processInfo.environment)
    DaemonMain.bootstrapLogging(service: "reporting-service", format: config.logFormat, level: config.logLevel)
    let metrics = DaemonMetrics()
    metrics.bootstrapMetricsSystem()
    let app = try await buildApplication(config, logger: Logger(label: "reporting-service"), metrics: metrics)
    try await app.run()
}
