import Testing

@Test func placeholder_PubSubRESTTests() {}
