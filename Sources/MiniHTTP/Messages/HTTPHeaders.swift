/// An ordered list of HTTP header fields.
///
/// Names keep the spelling they were added with; every lookup compares names
/// case-insensitively (ASCII), as HTTP requires. Repeated fields are kept as separate entries.
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    public typealias Element = (name: String, value: String)

    @usableFromInline
    var storage: [Element]

    /// Creates an empty header list.
    public init() {
        storage = []
    }

    /// Creates a header list from name/value pairs, keeping their order.
    public init(_ fields: [(String, String)]) {
        storage = fields.map { (name: $0.0, value: $0.1) }
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        self.init(elements)
    }

    /// Number of header fields, repeated names counted separately.
    public var count: Int { storage.count }

    public var isEmpty: Bool { storage.isEmpty }

    /// The first value of the field `name` (case-insensitive), or `nil`.
    ///
    /// Setting a value replaces every field with that name; setting `nil` removes them.
    public subscript(name: String) -> String? {
        get {
            for field in storage where field.name.equalsCaseInsensitive(name) {
                return field.value
            }
            return nil
        }
        set {
            if let newValue {
                replaceOrAdd(name: name, value: newValue)
            } else {
                remove(name: name)
            }
        }
    }

    /// Appends a field, keeping any existing fields with the same name.
    public mutating func add(name: String, value: String) {
        storage.append((name: name, value: value))
    }

    /// Replaces every field named `name` with a single field, or appends it.
    public mutating func replaceOrAdd(name: String, value: String) {
        remove(name: name)
        storage.append((name: name, value: value))
    }

    /// Removes every field named `name` (case-insensitive).
    public mutating func remove(name: String) {
        storage.removeAll { $0.name.equalsCaseInsensitive(name) }
    }

    /// Every value of the field `name` (case-insensitive), in order.
    public func values(forName name: String) -> [String] {
        storage.compactMap { $0.name.equalsCaseInsensitive(name) ? $0.value : nil }
    }

    /// Whether a field named `name` is present (case-insensitive).
    public func contains(name: String) -> Bool {
        storage.contains { $0.name.equalsCaseInsensitive(name) }
    }

    public func makeIterator() -> IndexingIterator<[Element]> {
        storage.makeIterator()
    }

    public var description: String {
        storage.map { "\($0.name): \($0.value)" }.joined(separator: ", ")
    }
}

extension String {
    /// ASCII case-insensitive equality without allocating.
    @inlinable
    func equalsCaseInsensitive(_ other: String) -> Bool {
        let lhs = self.utf8
        let rhs = other.utf8
        guard lhs.count == rhs.count else { return false }
        for (a, b) in zip(lhs, rhs) where a != b {
            guard asciiLowercased(a) == asciiLowercased(b) else { return false }
        }
        return true
    }
}

@inlinable
func asciiLowercased(_ byte: UInt8) -> UInt8 {
    (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) ? byte | 0x20 : byte
}

/// Whether a comma-separated header value contains `token` (ASCII case-insensitive),
/// e.g. `close` in `Connection: keep-alive, close`.
func headerValue(_ value: String, containsToken token: String) -> Bool {
    for part in value.utf8.split(separator: UInt8(ascii: ",")) {
        var slice = part[...]
        while let first = slice.first, first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
            slice = slice.dropFirst()
        }
        while let last = slice.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") {
            slice = slice.dropLast()
        }
        let tokenBytes = token.utf8
        if slice.count == tokenBytes.count,
            zip(slice, tokenBytes).allSatisfy({ asciiLowercased($0) == asciiLowercased($1) })
        {
            return true
        }
    }
    return false
}
