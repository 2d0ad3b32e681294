"""Probing LaunchDarkly's contract on a real account."""
