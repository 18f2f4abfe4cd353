import Testing

@Test func placeholder_DeploymentTests() {}
