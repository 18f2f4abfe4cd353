import Foundation

/// A Google Cloud service-account key, as downloaded from the console (a JSON file with
/// `"type": "service_account"`).
///
/// The private key is parsed by OpenSSL when the key is loaded and is never stored as text;
/// `description` and `debugDescription` show only the client e-mail and the key id.
public struct ServiceAccountKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The token endpoint used when the file has no `token_uri`: `https://oauth2.googleapis.com/token`.
    public static let defaultTokenURI = "https://oauth2.googleapis.com/token"

    /// The project the service account belongs to (`project_id`).
    public let projectID: String
    /// The id of the private key (`private_key_id`), sent as the JWT `kid` header.
    public let privateKeyID: String
    /// The service account's e-mail (`client_email`), the JWT `iss` and `sub`.
    public let clientEmail: String
    /// The OAuth2 token endpoint (`token_uri`); defaults to ``defaultTokenURI``.
    public let tokenURI: String
    /// Where the key was read from (a path, or what the caller passed as `source`).
    public let source: String

    let signer: RSASigner

    /// Reads and parses a service-account key file.
    ///
    /// - Throws: `PubSubError` of kind `.credentials` naming the file and the problem.
    public static func load(path: String) throws -> ServiceAccountKey {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw PubSubError(
                kind: .credentials,
                message: "The service-account key file \(path) does not exist. Check the path "
                    + "(GOOGLE_APPLICATION_CREDENTIALS must name a JSON key file readable by this process)."
            )
        }
        guard !isDirectory.boolValue else {
            throw PubSubError(
                kind: .credentials,
                message: "The service-account key file \(path) is a directory, not a file. "
                    + "Point GOOGLE_APPLICATION_CREDENTIALS at the JSON key file itself."
            )
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw PubSubError(
                kind: .credentials,
                message: "The service-account key file \(path) could not be read (\(error.localizedDescription)). "
                    + "Check its permissions: it must be readable by the user running this process."
            )
        }
        return try ServiceAccountKey(jsonData: data, source: path)
    }

    /// Parses the JSON text of a service-account key.
    ///
    /// - Parameters:
    ///   - jsonData: the file's bytes.
    ///   - source: where the bytes came from (a path), used in error messages and descriptions.
    /// - Throws: `PubSubError` of kind `.credentials` naming `source` and the problem. Messages
    ///   never contain the private key.
    public init(jsonData: Data, source: String) throws {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: jsonData)
        } catch {
            throw PubSubError(
                kind: .credentials,
                message: "The service-account key file \(source) is not valid JSON. "
                    + "Download the key again from the Google Cloud console (IAM > Service accounts > Keys) "
                    + "and use the .json file as is."
            )
        }
        guard let fields = object as? [String: Any] else {
            throw PubSubError(
                kind: .credentials,
                message: "The service-account key file \(source) is JSON but not an object. "
                    + "Download the key again from the Google Cloud console and use the .json file as is."
            )
        }

        func field(_ name: String) throws -> String {
            guard let value = fields[name] else {
                throw PubSubError(
                    kind: .credentials,
                    message: "The service-account key file \(source) has no \"\(name)\" field. "
                        + "Download a complete JSON key for the service account from the Google Cloud console."
                )
            }
            guard let text = value as? String else {
                throw PubSubError(
                    kind: .credentials,
                    message: "The \"\(name)\" field in the service-account key file \(source) is not a string. "
                        + "Download a complete JSON key for the service account from the Google Cloud console."
                )
            }
            guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw PubSubError(
                    kind: .credentials,
                    message: "The \"\(name)\" field in the service-account key file \(source) is empty. "
                        + "Download a complete JSON key for the service account from the Google Cloud console."
                )
            }
            return text
        }

        let type = try field("type")
        guard type == "service_account" else {
            let hint = type == "authorized_user"
                ? "It holds user credentials (from `gcloud auth application-default login`), which this library does not support"
                : "This library supports only service-account keys"
            throw PubSubError(
                kind: .credentials,
                message: "The credentials file \(source) has \"type\": \"\(PubSubError.printableExcerpt(Data(type.utf8), limit: 40))\", "
                    + "not \"service_account\". \(hint); create a JSON key for a service account and point "
                    + "GOOGLE_APPLICATION_CREDENTIALS at it."
            )
        }
        let projectID = try field("project_id")
        let privateKeyID = try field("private_key_id")
        let privateKey = try field("private_key")
        let clientEmail = try field("client_email")
        let tokenURI: String
        if fields["token_uri"] == nil {
            tokenURI = Self.defaultTokenURI
        } else {
            tokenURI = try field("token_uri")
        }

        self.projectID = projectID
        self.privateKeyID = privateKeyID
        self.clientEmail = clientEmail
        self.tokenURI = tokenURI
        self.source = source
        self.signer = try RSASigner(pem: privateKey, source: source)
    }

    /// `ServiceAccountKey(client_email: ..., private_key_id: ...)`; never the private key.
    public var description: String {
        "ServiceAccountKey(client_email: \(clientEmail), private_key_id: \(privateKeyID))"
    }

    /// Same as `description`: the private key is redacted.
    public var debugDescription: String {
        "ServiceAccountKey(client_email: \(clientEmail), private_key_id: \(privateKeyID), project_id: \(projectID), "
            + "token_uri: \(tokenURI), source: \(source), private_key: <redacted>)"
    }
}
