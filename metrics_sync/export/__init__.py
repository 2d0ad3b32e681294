"""Adopting a project: LaunchDarkly's metrics and groups written as definitions."""
