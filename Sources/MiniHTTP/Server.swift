public enum MiniHTTPPlaceholder {}
