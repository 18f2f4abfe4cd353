/// Google's rules for Pub/Sub resource names, checked before any request is sent.
///
/// A topic or subscription ID must be 3 to 255 characters, start with a letter, contain only
/// letters, digits, `-` `_` `.` `~` `+` `%`, and not start with `goog`.
/// See https://cloud.google.com/pubsub/docs/pubsub-basics#resource_names
public enum ResourceName {
    /// Checks a topic or subscription ID. `kind` is used in the error ("topic", "subscription").
    public static func validateID(_ id: String, kind: String) throws {
        func fail(_ reason: String) -> PubSubError {
            PubSubError(kind: .invalidArgument, message: "invalid \(kind) ID '\(id)': \(reason)")
        }
        let count = id.utf8.count
        guard count >= 3 else { throw fail("it must be at least 3 characters long") }
        guard count <= 255 else { throw fail("it must be at most 255 characters long (it has \(count))") }
        guard let first = id.unicodeScalars.first, first.isASCIILetter else {
            throw fail("it must start with a letter")
        }
        if id.lowercased().hasPrefix("goog") { throw fail("it must not start with 'goog'") }
        for scalar in id.unicodeScalars where !(scalar.isASCIILetter || scalar.isASCIIDigit || "-_.~+%".unicodeScalars.contains(scalar)) {
            throw fail("'\(scalar)' is not allowed (use letters, digits and - _ . ~ + %)")
        }
    }

    /// Checks a project ID: 6 to 30 characters of lowercase letters, digits and hyphens,
    /// starting with a letter (the emulator accepts any non-empty ID without `/`).
    public static func validateProjectID(_ project: String) throws {
        guard !project.isEmpty else {
            throw PubSubError(kind: .invalidArgument, message: "the project ID is empty: set PROJECT_ID or pass --project")
        }
        for scalar in project.unicodeScalars where !(scalar.isASCIILetter || scalar.isASCIIDigit || "-.:_".unicodeScalars.contains(scalar)) {
            throw PubSubError(kind: .invalidArgument, message: "invalid project ID '\(project)': '\(scalar)' is not allowed")
        }
    }

    /// `projects/<project>/<collection>/<id>` for an ID, or the name itself when it is already a
    /// full name (`projects/p/topics/t`), after checking it.
    static func fullName(_ idOrName: String, project: String, collection: String, kind: String) throws -> String {
        if idOrName.hasPrefix("projects/") {
            let parts = idOrName.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 4, parts[2] == collection else {
                throw PubSubError(kind: .invalidArgument, message: "invalid \(kind) name '\(idOrName)': expected projects/PROJECT/\(collection)/ID")
            }
            try validateProjectID(String(parts[1]))
            try validateID(String(parts[3]), kind: kind)
            return idOrName
        }
        try validateProjectID(project)
        try validateID(idOrName, kind: kind)
        return "projects/\(project)/\(collection)/\(idOrName)"
    }

    /// The last path component of a full name (`projects/p/topics/t` -> `t`).
    public static func shortID(_ name: String) -> String {
        name.split(separator: "/").last.map(String.init) ?? name
    }
}

extension Unicode.Scalar {
    var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
