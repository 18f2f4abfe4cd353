import COpenSSL
import Foundation
import Synchronization

/// An RSA private key held by OpenSSL, signing RS256 (RSASSA-PKCS1-v1_5 with SHA-256).
///
/// Owns one `EVP_PKEY*`, freed in `deinit`. The pointer lives in a `Mutex`, so signing from
/// several tasks at once is serialised; the C type never leaves this file.
final class RSASigner: Sendable {
    private let key: Mutex<OpaquePointer>

    /// Parses a PEM private key (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`).
    ///
    /// - Parameter source: where the key came from, for error messages (never the key itself).
    /// - Throws: `PubSubError` of kind `.credentials` carrying OpenSSL's error text.
    init(pem: String, source: String) throws {
        ERR_clear_error()
        let bytes = Array(pem.utf8)
        let parsed: OpaquePointer? = bytes.withUnsafeBufferPointer { buffer -> OpaquePointer? in
            guard let base = buffer.baseAddress, let bio = BIO_new_mem_buf(base, Int32(buffer.count)) else {
                return nil
            }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let pkey = parsed else {
            throw PubSubError(
                kind: .credentials,
                message: "The private_key in \(source) could not be read by OpenSSL (\(OpenSSLError.drain())). "
                    + "Download a new JSON key for the service account and point GOOGLE_APPLICATION_CREDENTIALS at it."
            )
        }
        guard EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA else {
            EVP_PKEY_free(pkey)
            throw PubSubError(
                kind: .credentials,
                message: "The private_key in \(source) is not an RSA key; service-account keys must be RSA keys "
                    + "for RS256. Download a new JSON key for the service account."
            )
        }
        self.key = Mutex(pkey)
    }

    deinit {
        key.withLock { EVP_PKEY_free($0) }
    }

    /// The RS256 signature of `input`: PKCS#1 v1.5 over its SHA-256 digest.
    ///
    /// - Throws: `PubSubError` of kind `.credentials` carrying OpenSSL's error text.
    func sign(_ input: Data) throws -> Data {
        try key.withLock { pkey -> Data in
            ERR_clear_error()
            guard let context = EVP_MD_CTX_new() else {
                throw OpenSSLError.failure("EVP_MD_CTX_new")
            }
            defer { EVP_MD_CTX_free(context) }
            guard EVP_DigestSignInit(context, nil, EVP_sha256(), nil, pkey) == 1 else {
                throw OpenSSLError.failure("EVP_DigestSignInit")
            }
            return try input.withUnsafeBytes { raw -> Data in
                let message = raw.bindMemory(to: UInt8.self)
                var length = 0
                guard EVP_DigestSign(context, nil, &length, message.baseAddress, message.count) == 1 else {
                    throw OpenSSLError.failure("EVP_DigestSign (length)")
                }
                var signature = [UInt8](repeating: 0, count: length)
                let status = signature.withUnsafeMutableBufferPointer { out in
                    EVP_DigestSign(context, out.baseAddress, &length, message.baseAddress, message.count)
                }
                guard status == 1 else {
                    throw OpenSSLError.failure("EVP_DigestSign")
                }
                return Data(signature.prefix(length))
            }
        }
    }
}

/// OpenSSL's thread-local error queue, read into text.
enum OpenSSLError {
    /// Drains the calling thread's OpenSSL error queue into one line of text.
    static func drain() -> String {
        var messages: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            buffer.withUnsafeMutableBufferPointer { pointer in
                ERR_error_string_n(code, pointer.baseAddress, pointer.count)
            }
            let end = buffer.firstIndex(of: 0) ?? buffer.count
            messages.append(String(decoding: buffer[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return messages.isEmpty ? "OpenSSL reported no error detail" : messages.joined(separator: "; ")
    }

    /// The error for a failed OpenSSL call, with OpenSSL's own text.
    static func failure(_ function: String) -> PubSubError {
        PubSubError(kind: .credentials, message: "OpenSSL \(function) failed while signing a JWT: \(drain())")
    }
}
