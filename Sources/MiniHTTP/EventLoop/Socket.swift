import CMiniHTTPLinux
import Glibc

/// The text for the current `errno`, e.g. `"Address already in use"`.
func errnoDescription(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}

/// Monotonic time in nanoseconds.
func monotonicNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
}

extension Duration {
    /// Whole nanoseconds, clamped to `0...UInt64.max / 2`.
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        let (scaled, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow, scaled < UInt64.max / 2 else { return UInt64.max / 2 }
        return scaled + UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}

/// Creates a non-blocking listening TCP socket bound to `host:port`.
/// - Returns: the socket and the bound port (the chosen one when `port` is 0).
func makeListeningSocket(host: String, port: Int, backlog: Int) throws(HTTPServerError) -> (fd: Int32, port: Int) {
    guard (0...65535).contains(port) else {
        throw .invalidAddress("cannot bind \(host):\(port): the port is not in 0...65535")
    }
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
    var result: UnsafeMutablePointer<addrinfo>?
    let status = getaddrinfo(host, String(port), &hints, &result)
    guard status == 0, let info = result else {
        let reason = String(cString: gai_strerror(status))
        throw .invalidAddress("cannot bind \(host):\(port): \(reason)")
    }
    defer { freeaddrinfo(result) }

    let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
    let fd = socket(info.pointee.ai_family, type, 0)
    guard fd >= 0 else {
        throw .systemCallFailed("cannot create a socket for \(host):\(port): \(errnoDescription())")
    }
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
        let reason = errnoDescription()
        close(fd)
        throw .bindFailed("cannot bind \(host):\(port): \(reason)")
    }
    guard listen(fd, Int32(clamping: max(1, backlog))) == 0 else {
        let reason = errnoDescription()
        close(fd)
        throw .listenFailed("cannot listen on \(host):\(port): \(reason)")
    }
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let named = withUnsafeMutablePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0, let (_, boundPort) = describeAddress(storage) else {
        let reason = errnoDescription()
        close(fd)
        throw .systemCallFailed("cannot read the bound address of \(host):\(port): \(reason)")
    }
    return (fd, boundPort)
}

/// `("ip", port)` for an IPv4 or IPv6 socket address.
func describeAddress(_ storage: sockaddr_storage) -> (String, Int)? {
    var storage = storage
    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
    switch Int32(storage.ss_family) {
    case AF_INET:
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                var ip = address.pointee.sin_addr
                guard inet_ntop(AF_INET, &ip, &text, socklen_t(text.count)) != nil else { return nil }
                return (string(fromCChars: text), Int(UInt16(bigEndian: address.pointee.sin_port)))
            }
        }
    case AF_INET6:
        return withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                var ip = address.pointee.sin6_addr
                guard inet_ntop(AF_INET6, &ip, &text, socklen_t(text.count)) != nil else { return nil }
                return ("[\(string(fromCChars: text))]", Int(UInt16(bigEndian: address.pointee.sin6_port)))
            }
        }
    default:
        return nil
    }
}

/// The current time as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) for the `Date` header.
func httpDateNow() -> String {
    var now = time(nil)
    var parts = tm()
    gmtime_r(&now, &parts)
    var text = [CChar](repeating: 0, count: 64)
    let count = strftime(&text, text.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
    return String(decoding: text[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// A NUL-terminated C character array as a String.
private func string(fromCChars chars: [CChar]) -> String {
    String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
