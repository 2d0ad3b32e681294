"""When metrics-sync itself fails (a bug, not a user error): write a crash report a user can attach.

The report holds the traceback, the version, the platform and the command line; every access token found
in the environment is removed from it. It is written to a new file in the temporary folder (`TMPDIR`),
readable only by the user, and the CLI prints its path and where to report it.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

from metrics_sync import __version__
from metrics_sync.core.errors import redact

ISSUES_URL = "https://github.com/metrics-sync/metrics-sync/issues"


def report_text(exc: BaseException, argv: Sequence[str], environ: Mapping[str, str]) -> str:
    lines = [
        f"metrics-sync {__version__} crash report",
        f"python: {platform.python_version()} ({sys.executable})",
        f"platform: {platform.platform()}",
        f"command: metrics-sync {shlex.join(argv)}",
        "",
        "".join(traceback.format_exception(exc)),
    ]
    return redact("\n".join(lines), environ)


def write_report(exc: BaseException, argv: Sequence[str], environ: Mapping[str, str]) -> Path | None:
    """Write the report; None when even that fails (the caller still prints the one-line error)."""
    folder = environ.get("TMPDIR") or tempfile.gettempdir()
    try:
        fd, name = tempfile.mkstemp(prefix="metrics-sync-crash-", suffix=".txt", dir=folder)
        # mkstemp: mode 0600, a new file, never a link. An argument or variable may hold bytes that are not UTF-8.
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(report_text(exc, argv, environ))
    except OSError:
        return None
    return Path(name)
