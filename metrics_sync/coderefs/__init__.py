"""Event keys in the application code: which events the code sends, matched against the metrics."""
