public enum ReportingAppPlaceholder {}
