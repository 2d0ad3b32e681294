"""A local LaunchDarkly metrics API: the embedded default for demos, CI and tests.

It speaks LaunchDarkly's metric endpoints and error contract and imports nothing from the rest of
metrics-sync (stdlib only), so it stays faithful to LaunchDarkly rather than to our client.
"""

from metrics_sync.emulator.app import EmulatorApp, Faults
from metrics_sync.emulator.store import Store

__all__ = ["EmulatorApp", "Faults", "Store"]
