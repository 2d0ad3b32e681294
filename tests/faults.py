"""Helpers for fault tests: the in-process counterpart of the emulator server's connection faults."""

from __future__ import annotations

import httpx

from metrics_sync.emulator.app import FAULT_HEADER, EmulatorApp


class FaultTransport(httpx.BaseTransport):
    """WSGITransport to the emulator, turning its `X-Emulator-Fault` answers into the transport errors a
    real connection gives (as seen over loopback): a reset becomes ReadError, a hang a ReadTimeout."""

    def __init__(self, app: EmulatorApp) -> None:
        self.inner = httpx.WSGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        fault = response.headers.get(FAULT_HEADER)
        if fault == "reset":
            raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)
        if fault and fault.startswith("hang"):
            raise httpx.ReadTimeout("The read operation timed out", request=request)
        return response
