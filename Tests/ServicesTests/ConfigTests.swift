import DaemonSupport
import Logging
import ReportingApp
import ReservationsApp
import Testing

@Suite struct ConfigTests {
    let base = ["PROJECT_ID": "test-project", "PUBSUB_EMULATOR_HOST": "127.0.0.1:8085"]

    func reservationsError(_ env: [String: String]) -> ConfigError? {
        do {
            _ = try ReservationsConfig.fromEnvironment(env)
            return nil
        } catch {
            return error
        }
    }

    @Test func defaults() throws {
        let config = try ReservationsConfig.fromEnvironment(base)
        #expect(config.topicID == "reservation-created")
        #expect(config.port == 8080)
        #expect(config.publishTimeout == .seconds(10))
        #expect(config.logFormat == .json)
        #expect(config.logLevel == .info)
        #expect(config.pubSub.autoCreate, "auto-create defaults on with the emulator")
        let reporting = try ReportingConfig.fromEnvironment(base)
        #expect(reporting.subscriptionID == "reservation-created-subscription")
        #expect(reporting.topicID == "reservation-created")
        #expect(reporting.port == nil)
    }

    @Test func autoCreateOffWithoutEmulator() throws {
        let config = try ReservationsConfig.fromEnvironment(["PROJECT_ID": "p-1234"])
        #expect(!config.pubSub.autoCreate)
        #expect(config.pubSub.emulatorHost == nil)
        let forced = try ReservationsConfig.fromEnvironment(base.merging(["PUBSUB_AUTO_CREATE": "false"]) { $1 })
        #expect(!forced.pubSub.autoCreate)
    }

    @Test func missingProjectID() throws {
        let error = try #require(reservationsError(["PUBSUB_EMULATOR_HOST": "127.0.0.1:8085"]))
        #expect(error.variable == "PROJECT_ID")
        #expect(error.description.hasPrefix("PROJECT_ID is not set"))
        #expect(!error.description.contains("\n"))
    }

    @Test func badPort() throws {
        let error = try #require(reservationsError(base.merging(["PORT": "abc"]) { $1 }))
        #expect(error.variable == "PORT")
        #expect(error.description == "PORT is 'abc': expected a TCP port number from 1 to 65535")
        #expect(reservationsError(base.merging(["PORT": "70000"]) { $1 })?.variable == "PORT")
    }

    @Test func badLogFormatAndLevel() throws {
        let format = try #require(reservationsError(base.merging(["LOG_FORMAT": "xml"]) { $1 }))
        #expect(format.variable == "LOG_FORMAT")
        #expect(format.description.contains("'xml'"))
        let level = try #require(reservationsError(base.merging(["LOG_LEVEL": "loud"]) { $1 }))
        #expect(level.variable == "LOG_LEVEL")
    }

    @Test func badPublishTimeoutAndIDs() throws {
        #expect(reservationsError(base.merging(["PUBLISH_TIMEOUT": "-1"]) { $1 })?.variable == "PUBLISH_TIMEOUT")
        #expect(reservationsError(base.merging(["TOPIC_ID": "1bad"]) { $1 })?.variable == "TOPIC_ID")
        #expect(reservationsError(base.merging(["PUBSUB_EMULATOR_HOST": "nohost"]) { $1 })?.variable == "PUBSUB_EMULATOR_HOST")
        #expect(reservationsError(base.merging(["PUBSUB_AUTO_CREATE": "maybe"]) { $1 })?.variable == "PUBSUB_AUTO_CREATE")
        let config = try ReservationsConfig.fromEnvironment(base.merging(["PUBLISH_TIMEOUT": "2.5"]) { $1 })
        #expect(config.publishTimeout == .milliseconds(2500))
        #expect(config.publishDelayThreshold == .milliseconds(10))
        #expect(reservationsError(base.merging(["PUBLISH_DELAY_THRESHOLD": "soon"]) { $1 })?.variable == "PUBLISH_DELAY_THRESHOLD")
        let quick = try ReservationsConfig.fromEnvironment(base.merging(["PUBLISH_DELAY_THRESHOLD": "0.002"]) { $1 })
        #expect(quick.publishDelayThreshold == .milliseconds(2))
    }

    @Test func missingCredentialsFile() throws {
        let error = try #require(reservationsError(["PROJECT_ID": "p-1234", "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json"]))
        #expect(error.variable == "GOOGLE_APPLICATION_CREDENTIALS")
    }

    @Test func reportingPortOptionalButValidated() throws {
        #expect(throws: ConfigError.self) { try ReportingConfig.fromEnvironment(base.merging(["PORT": "x"]) { $1 }) }
        let config = try ReportingConfig.fromEnvironment(base.merging(["PORT": "9001", "SUBSCRIPTION_ID": "sub-b"]) { $1 })
        #expect(config.port == 9001)
        #expect(config.subscriptionID == "sub-b")
    }
}
