public enum DaemonSupportPlaceholder {}
