"""One error tree for everything the tool reports to a user.

Every error knows its exit code, so `cli.py` maps errors to exit codes in one place. Messages are
written for the person at the terminal: one line, what went wrong, and what to do about it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

if TYPE_CHECKING:
    from metrics_sync.core.model import Problem


TOKEN_VARIABLES = ("LD_ACCESS_TOKEN", "LAUNCHDARKLY_ACCESS_TOKEN")
REDACTED = "[redacted]"


def token_problem(token: str) -> str | None:
    """Why `token` cannot be an access token (None when it can): LaunchDarkly's tokens are printable ASCII
    with no spaces. A secret saved with a trailing newline is common; sent, it would make the HTTP library
    quote the header (token included) in its error, and a non-ASCII one could not be encoded at all."""
    if not token.isascii():
        return "holds characters that are not ASCII"
    if any(c.isspace() for c in token):
        return "holds whitespace (a trailing newline?)"
    if not token.isprintable():
        return "holds control characters"
    return None


def token_forms(token: str) -> tuple[str, ...]:
    """Every way a token may be written in a message: as it is, escaped as Python's repr and JSON write it
    (a header value quoted in an error), its bytes' repr, and URL-encoded. Longest first, so a form that
    contains another is replaced whole."""
    if not token:
        return ()
    forms = {token, repr(token)[1:-1], json.dumps(token)[1:-1], repr(token.encode("utf-8", "replace"))[2:-1],
             token.encode("unicode_escape").decode("ascii"), quote(token, safe="", errors="surrogateescape"),
             quote_plus(token, errors="surrogateescape")}  # (a token from the environment may hold undecodable bytes)
    return tuple(sorted(forms, key=len, reverse=True))


def redact_token(text: str, token: str) -> str:
    for form in token_forms(token):
        text = text.replace(form, REDACTED)
    return text


def redact(text: str, environ: Mapping[str, str]) -> str:
    """Remove any access token found in `environ` from `text`, in any of its written forms (a last line of
    defence for output)."""
    for name in TOKEN_VARIABLES:
        token = environ.get(name)
        if token and len(token) >= 4:
            text = redact_token(text, token)
    return text


class MetricsSyncError(Exception):
    """Base class: an expected failure with a user-facing message."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(MetricsSyncError):
    """Bad command-line usage or configuration."""


class ConfigError(MetricsSyncError):
    """The config file or environment is not usable."""


class DefinitionsError(MetricsSyncError):
    """The YAML definitions have problems; `problems` lists every one of them."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        count = len(problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the metric definitions (listed above); "
                         "nothing was changed in LaunchDarkly")
        self.problems = list(problems)


class PlanError(MetricsSyncError):
    """A plan cannot be made or used (refused change, stale or foreign plan file)."""


class ApiError(MetricsSyncError):
    """A LaunchDarkly API call failed; carries what a user needs to act on it.

    The access token is never part of any field: the client builds these from the method, the path,
    the status and LaunchDarkly's own error body.
    """

    def __init__(
        self,
        method: str,
        path: str,
        status: int | None,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        retryable: bool = False,
        ambiguous: bool = False,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.api_message = message
        self.retryable = retryable
        # True when the request may or may not have taken effect (timeout, reset, 5xx on a write).
        self.ambiguous = ambiguous
        where = f"{method} {path}"
        status_text = f"{status}" if status is not None else "no response"
        code_text = f" {code}" if code else ""
        super().__init__(f"{where} failed: {status_text}{code_text}: {message}", hint)
