import Foundation

/// Base64url encoding without padding (RFC 4648 §5), as used by JWTs (RFC 7515).
public enum Base64URL {
    /// Encodes bytes as base64url with no `=` padding.
    public static func encode(_ data: Data) -> String {
        var text = data.base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-")
        text = text.replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }

    /// Encodes the UTF-8 bytes of a string as base64url with no padding.
    public static func encode(_ string: String) -> String {
        encode(Data(string.utf8))
    }

    /// Decodes base64url text, with or without `=` padding. Returns `nil` when the text is not
    /// base64url (characters outside `A-Z a-z 0-9 - _`, or an impossible length).
    public static func decode(_ text: String) -> Data? {
        var body = Substring(text)
        while body.hasSuffix("=") { body.removeLast() }
        guard body.utf8.allSatisfy({ byte in
            (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                || byte == 0x2D || byte == 0x5F
        }) else { return nil }
        if body.utf8.count % 4 == 1 { return nil }
        var standard = body.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        let remainder = standard.utf8.count % 4
        if remainder > 0 { standard += String(repeating: "=", count: 4 - remainder) }
        return Data(base64Encoded: standard)
    }
}
