public enum PubSubTestSupportPlaceholder {}
