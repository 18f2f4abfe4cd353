// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "swift-pubsub-reservations",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "PubSubREST", targets: ["PubSubREST"]),
        .library(name: "MiniHTTP", targets: ["MiniHTTP"]),
        .executable(name: "pubsubctl", targets: ["pubsubctl"]),
        .executable(name: "ReservationsService", targets: ["ReservationsService"]),
        .executable(name: "ReportingService", targets: ["ReportingService"]),
        .executable(name: "pubsub-bench", targets: ["PubSubBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
    ],
    targets: [
        // C shims
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),

        // The Pub/Sub REST client library.
        .target(
            name: "PubSubREST",
            dependencies: [
                "CCurl",
                "COpenSSL",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // epoll, eventfd and accept4 for MiniHTTP (not imported by Glibc).
        .systemLibrary(name: "CMiniHTTPLinux"),

        // The small socket HTTP server.
        .target(
            name: "MiniHTTP",
            dependencies: [
                "CMiniHTTPLinux",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // What both daemons share: environment config, JSON logs, metrics, health endpoints.
        .target(
            name: "DaemonSupport",
            dependencies: [
                "PubSubREST",
                "MiniHTTP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "ReservationsApp",
            dependencies: [
                "PubSubREST", "MiniHTTP", "DaemonSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "ReportingApp",
            dependencies: [
                "PubSubREST", "MiniHTTP", "DaemonSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // Thin executables.
        .executableTarget(name: "ReservationsService", dependencies: ["ReservationsApp", "DaemonSupport"]),
        .executableTarget(name: "ReportingService", dependencies: ["ReportingApp", "DaemonSupport"]),
        .executableTarget(
            name: "pubsubctl",
            dependencies: [
                "PubSubREST",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "PubSubBench",
            dependencies: [
                "PubSubREST",
                "PubSubTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Test helpers shared by the test targets and the benchmark: the emulator fixture,
        // free ports, child processes.
        .target(
            name: "PubSubTestSupport",
            dependencies: ["PubSubREST"]
        ),

        .testTarget(
            name: "PubSubRESTTests",
            dependencies: ["PubSubREST", "PubSubTestSupport", "pubsubctl"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "MiniHTTPTests",
            dependencies: ["MiniHTTP", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "ServicesTests",
            dependencies: [
                "ReservationsApp", "ReportingApp", "DaemonSupport", "PubSubREST", "PubSubTestSupport",
                "ReservationsService", "ReportingService",
            ]
        ),
        .testTarget(
            name: "DeploymentTests",
            dependencies: []
        ),
    ],
    swiftLanguageModes: [.v6]
)
