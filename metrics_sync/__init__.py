"""metrics-sync: LaunchDarkly metrics as code (validate, plan, apply)."""

__version__ = "0.1.0"
