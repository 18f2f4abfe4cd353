import Testing

@Test func placeholder_MiniHTTPTests() {}
