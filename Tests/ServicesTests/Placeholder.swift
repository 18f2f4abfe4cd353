import Testing

@Test func placeholder_ServicesTests() {}
