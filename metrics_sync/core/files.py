"""Writing files the tool produces (plans, exported definitions, reports): atomic, all or nothing, never a
surprise overwrite, and never through a special file or a symbolic link.

`plan --out /dev/null` run as root in CI must not replace /dev/null, and `--out link` must not replace a
link with a file: a path that exists and is not a regular file is refused. New files get the usual
permissions (0644 under the usual umask), not a temporary file's 0600.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path

from metrics_sync.core.errors import UsageError


def _check_target(path: Path) -> None:
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: the folder {path.parent} does not exist")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode):
        raise UsageError(f"refusing to write {path}: it is a symbolic link", "give the path of a regular file")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"refusing to write {path}: it exists and is not a regular file",
                         "give the path of a regular file")


def write_atomic(path: Path, text: str) -> None:
    """Write via a new temporary file and a rename, so a reader never sees half a file."""
    _check_target(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        # O_EXCL: a new file, never one planted there; 0o666 masked by the umask, as any program's new file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def write_files(folder: Path, files: Mapping[str, str], *, force: bool) -> list[str]:
    """Write `files` (name -> text) into `folder`. Refuses before writing anything when a file exists with
    other content and `force` is not set, or when any target is not a regular file. Returns the names
    written, sorted."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} exists and is not a folder")
    if folder.is_dir():
        for name in files:
            _check_target(folder / name)
    clashes = sorted(name for name, text in files.items()
                     if (folder / name).exists() and (folder / name).read_text(encoding="utf-8") != text)
    if clashes and not force:
        raise UsageError(f"refusing to overwrite {', '.join(str(folder / n) for n in clashes)}",
                         "pass --force to overwrite, or --out another folder; nothing was written")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a link loop, a folder in /proc, a file where a parent folder should be
        raise UsageError(f"cannot create the folder {folder}: {exc.strerror or exc}") from None
    for name in sorted(files):
        write_atomic(folder / name, files[name])
    return sorted(files)
