"""The trading core: detection, risk guards, alerting and execution."""
