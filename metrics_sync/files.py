"""Writing files the tool produces (exported definitions): all or nothing, never a surprise overwrite."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from metrics_sync.errors import UsageError


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and a rename, so a reader never sees half a file."""
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: the folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_files(folder: Path, files: Mapping[str, str], *, force: bool) -> list[str]:
    """Write `files` (name -> text) into `folder`. Refuses before writing anything when a file exists with
    other content and `force` is not set. Returns the names written, sorted."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} exists and is not a folder")
    clashes = sorted(name for name, text in files.items()
                     if (folder / name).exists() and (folder / name).read_text(encoding="utf-8") != text)
    if clashes and not force:
        raise UsageError(f"refusing to overwrite {', '.join(str(folder / n) for n in clashes)}",
                         "pass --force to overwrite, or --out another folder; nothing was written")
    folder.mkdir(parents=True, exist_ok=True)
    for name in sorted(files):
        write_atomic(folder / name, files[name])
    return sorted(files)
