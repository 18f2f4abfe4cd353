import Testing
@testable import MiniHTTP
