print("ReportingService")
