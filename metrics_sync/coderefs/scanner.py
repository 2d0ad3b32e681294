"""Find the event keys application code sends: list the files, skip what is not the team's source, lex the rest.

Files come from `git ls-files` inside a repository (so `.gitignore` is respected: tracked files and new files
that are not ignored), else from a walk of the folder. Vendored folders, generated files, binary files,
symbolic links and files over the size limit are skipped, and counted, so a report says what it read.

Reads are bounded (the number of files, each file's size) and nothing read is trusted: paths and keys are
only ever printed escaped, by the renderers. The token never reaches git: its environment has no token.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import stat
import subprocess
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from metrics_sync.coderefs.languages import (
    BY_EXTENSION,
    GENERIC,
    OTHER_ANALYTICS,
    RECEIVER,
    TRIGGERS,
    Lexer,
    literal_text,
)
from metrics_sync.coderefs.settings import Settings, compile_pattern
from metrics_sync.core.errors import TOKEN_VARIABLES, UsageError

MAX_FILES = 1_000_000  # listed per folder: more is not an application, it is a mistake in --code
MAX_REFS = 500_000  # track calls in all: more is generated code, or a file made to exhaust memory
GIT_TIMEOUT = 120.0
VENDORED = frozenset({"node_modules", "bower_components", "jspm_packages", "vendor", "third_party", "third-party",
                      "Pods", "Carthage", "dist", "build", "__pycache__", ".venv", "venv", "site-packages", ".git",
                      ".hg", ".svn", "coverage", ".next", ".nuxt", ".tox", ".gradle"})
GENERATED_NAME = re.compile(r"\.min\.[cm]?js$|\.bundle\.js$|\.pb\.go$|_pb2(?:_grpc)?\.pyi?$|\.g\.cs$"
                            r"|\.designer\.cs$|\.generated\.\w+$|_generated\.go$|\.d\.ts$", re.I)
CALL_TEXT = 80  # characters of a dynamic call kept to show it


@dataclass(frozen=True, slots=True)
class Ref:
    """One place the code sends an event: `event` is None when its key is not known before run time."""

    file: str
    line: int
    column: int
    event: str | None
    call: str  # the call as written (first line, shortened), to show the dynamic ones


@dataclass
class Scan:
    folders: tuple[str, ...]
    refs: list[Ref] = field(default_factory=list)
    listed: int = 0
    scanned: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)


class Scanner:
    """Compiled once per run: the lexers (with the team's aliases) and the team's patterns."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lexers: dict[str, Lexer] = {}
        self.patterns = [compile_pattern(p) for p in settings.patterns]
        # A file is lexed only when it holds one of these (one pass over its bytes); the team's patterns are
        # run on every source file.
        # (`bytes in` is a fast substring search; a regular expression of alternatives is ~50 times slower.)
        self.triggers = TRIGGERS + tuple(a.rsplit(".", 1)[-1].encode() for a in settings.aliases)
        self.any_text = bool(settings.aliases or settings.patterns)

    def lexer(self, extension: str) -> Lexer | None:
        language = BY_EXTENSION.get(extension, GENERIC if self.any_text else None)
        if language is None:
            return None
        lexer = self._lexers.get(language.name)
        if lexer is None:
            lexer = self._lexers[language.name] = Lexer.build(language, self.settings.aliases)
        return lexer

    def scan_text(self, data: bytes, shown_path: str, lexer: Lexer) -> list[Ref]:
        """The refs in one file's bytes."""
        first, *more = self.triggers
        if not self.patterns and first not in data and not any(trigger in data for trigger in more):
            return []
        lines = _Lines(data)
        refs: list[Ref] = []
        calls: list[re.Match[bytes]] = []
        skipped: list[tuple[int, int]] = []  # comments and strings, in order
        for match in lexer.pattern.finditer(data):
            if match.lastgroup == "call":
                calls.append(match)
            else:
                skipped.append(match.span())
        starts = [start for start, _ in skipped]

        def outside(offset: int) -> bool:
            at = bisect_right(starts, offset) - 1
            return at < 0 or skipped[at][1] <= offset

        names: dict[bytes, set[bytes]] | None = None  # the file's constants, found when a call needs one
        for call in calls:
            if lexer.language.receiver_checked and _other_analytics(data, call.start()):
                continue
            key = lexer.key.match(data, call.end())
            if key is not None and key.group("literal") is None and names is None:
                names = lexer.definitions(data, outside)
            event, at = _event(lexer, key, names or {})
            refs.append(Ref(shown_path, *lines.at(at if at is not None else call.start()), event,
                            _call_text(data, call.start())))
        for pattern in self.patterns:
            group = pattern.group
            for match in pattern.regex.finditer(data):
                if not outside(match.start()):
                    continue  # inside a comment or a string
                found = match.group(group)
                event = found.decode("utf-8", errors="replace") if found else None
                at = match.start(group) if found else match.start()
                refs.append(Ref(shown_path, *lines.at(at), event, _call_text(data, match.start())))
        refs.sort(key=lambda r: (r.line, r.column))
        return refs

    def scan(self, folders: Iterable[str], cwd: Path, environ: Mapping[str, str]) -> Scan:
        """Every ref under `folders` (relative to `cwd`), in file order."""
        result = Scan(tuple(folders))
        for folder in result.folders:
            if any(part.lower() == ".git" for part in Path(folder).parts):
                raise UsageError(f"{folder}: a repository's .git folder is not application code (it holds its "
                                 "config and any token actions/checkout left there)")
            root = cwd / folder
            if not root.is_dir():
                source = self.settings.paths_source
                if source and result.folders == self.settings.paths:  # not given on the command line
                    raise UsageError(f"{folder}: no such folder (named in codeRefs.paths at {source})")
                raise UsageError(f"--code {folder}: no such folder")
            files, note = list_files(root, environ)
            if note:
                result.notes.append(note)
            result.listed += len(files)
            prefix = os.path.normpath(folder).replace(os.sep, "/")  # paths are shown as the user named the folder
            # One thread: the work is many small system calls, and threads fighting over Python's lock made it
            # slower (100,000 files: 2.6 s in one thread, 3.8 s in 4, 5.4 s in 8; docs/performance.md).
            self._read(str(root), prefix, self._candidates(files, result.skipped), result)
        return result

    def _candidates(self, files: list[str], skipped: Counter[str]) -> Iterator[tuple[str, Lexer]]:
        exclude = self.settings.exclude
        for rel in files:
            folder, _, name = rel.rpartition("/")
            if folder and not VENDORED.isdisjoint(folder.split("/")):
                skipped["vendored"] += 1
                continue
            lexer = self.lexer(os.path.splitext(name)[1].lower())
            if lexer is None:
                skipped["not source code"] += 1
            elif GENERATED_NAME.search(name):
                skipped["generated"] += 1
            elif exclude and any(fnmatch.fnmatchcase(rel, glob) for glob in exclude):
                skipped["excluded"] += 1
            else:
                yield rel, lexer

    def _read(self, root: str, prefix: str, wanted: Iterable[tuple[str, Lexer]], result: Scan) -> None:
        limit = self.settings.max_file_bytes
        skipped = result.skipped
        folders = _Folders(root)
        try:
            for rel, lexer in wanted:
                folder, _, name = rel.rpartition("/")
                folder_fd = folders.open(folder)
                data, why = (None, "links and special files") if folder_fd is None else read_bounded(
                    name, limit, dir_fd=folder_fd)
                if data is None:
                    skipped[why] += 1
                elif data.find(b"\0", 0, 8000) != -1:
                    skipped["binary"] += 1
                elif _generated(data):
                    skipped["generated"] += 1
                else:
                    result.scanned += 1
                    result.refs.extend(self.scan_text(data, rel if prefix == "." else f"{prefix}/{rel}", lexer))
                    if len(result.refs) > MAX_REFS:
                        raise UsageError(f"over {MAX_REFS:,} track calls under {prefix} (the last in {rel})",
                                         "point --code at the application's own source, or add the generated "
                                         "files to codeRefs.exclude")
        finally:
            folders.close()


class _Folders:
    """The folders under a scanned root, opened one component at a time without following a symbolic link on
    any of them (O_NOFOLLOW on the last component alone would still follow `src/` if `src` were a link). git's
    index and the working tree can disagree (the index lists `src/a.js`, the tree has `src -> /`), so a listed
    path is never trusted to stay inside the root. Files come in git's order, so the last folder is kept open."""

    def __init__(self, root: str) -> None:
        self._root = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        self._last: tuple[str, int | None] | None = None

    def open(self, folder: str) -> int | None:
        """A descriptor of `folder` (relative, `/`-separated; "" for the root), or None when a component is a
        link, not a folder, or unreadable."""
        if not folder:
            return self._root
        if self._last is not None and self._last[0] == folder:
            return self._last[1]
        self._close_last()
        fd: int | None = self._root
        for part in folder.split("/"):
            step: int | None = None
            if part not in ("", ".", ".."):
                with contextlib.suppress(OSError):  # a link, not a folder, or unreadable: the file is skipped
                    step = os.open(part, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW, dir_fd=fd)
            if fd is not None and fd != self._root:
                os.close(fd)
            fd = step
            if fd is None:
                break
        self._last = (folder, fd)
        return fd

    def _close_last(self) -> None:
        if self._last is not None and self._last[1] is not None and self._last[1] != self._root:
            os.close(self._last[1])
        self._last = None

    def close(self) -> None:
        self._close_last()
        os.close(self._root)


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def read_bounded(path: str | Path, limit: int, *, dir_fd: int | None = None) -> tuple[bytes | None, str]:
    """A regular file's bytes, or None and why not: never through a link, never more than `limit` bytes.
    With `dir_fd`, `path` is a name in that folder."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0), dir_fd=dir_fd)
    except OSError as exc:
        try:
            link = stat.S_ISLNK(os.lstat(path, dir_fd=dir_fd).st_mode)
        except OSError:
            link = False
        return None, "links and special files" if link else f"unreadable ({exc.strerror})"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, "links and special files"
        if info.st_size > limit:
            return None, "over the size limit"
        # A buffer of the file's size (plus one byte, to notice growth), not of the limit: a 1 MB buffer per
        # read costs an mmap and an munmap each (walking 100,000 files: 1.25 s of reads instead of 0.19 s).
        chunks = [os.read(fd, info.st_size + 1)]
        total = len(chunks[0])
        if total == info.st_size:
            return chunks[0], ""  # the whole file, and not a byte more
        while chunks[-1] and total <= limit:  # a short read, or the file grew since fstat
            chunk = os.read(fd, min(64 * 1024, limit + 1 - total))
            total += len(chunk)
            chunks.append(chunk)
        if total > limit:  # grew since fstat
            return None, "over the size limit"
        return chunks[0] if len(chunks) <= 2 else b"".join(chunks), ""
    finally:
        os.close(fd)


def list_files(root: Path, environ: Mapping[str, str]) -> tuple[list[str], str | None]:
    """The files under `root` as POSIX paths relative to it: git's list inside a repository (respecting
    .gitignore), else a walk that leaves out hidden and vendored folders."""
    env = {k: v for k, v in environ.items() if k not in TOKEN_VARIABLES}
    try:
        # core.fsmonitor off: listing must not run a hook a repository configures.
        listed = subprocess.run(["git", "-c", "core.fsmonitor=false", "-C", str(root), "ls-files", "-z", "--cached",
                                 "--others", "--exclude-standard"], capture_output=True, env=env, timeout=GIT_TIMEOUT,
                                check=False)
    except FileNotFoundError:
        return _walk(root), "git is not installed: .gitignore was not applied"
    except subprocess.TimeoutExpired:
        raise UsageError(f"git ls-files in {root} took over {GIT_TIMEOUT:.0f} s") from None
    if listed.returncode != 0:
        return _walk(root), None  # not a repository
    files = list(dict.fromkeys(p.decode("utf-8", errors="surrogateescape")
                               for p in listed.stdout.split(b"\0") if p))
    if len(files) > MAX_FILES:
        raise UsageError(f"--code {root}: over {MAX_FILES:,} files", "point --code at the application's source")
    if not files and any(os.scandir(root)):
        return files, f"git lists no files under {root}: the repository ignores them (.gitignore)"
    return files, None


def _walk(root: Path) -> list[str]:
    files: list[str] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in VENDORED and not d.startswith("."))
        base = os.path.relpath(folder, root).replace(os.sep, "/")
        files.extend(name if base == "." else f"{base}/{name}" for name in sorted(names))
        if len(files) > MAX_FILES:
            raise UsageError(f"--code {root}: over {MAX_FILES:,} files", "point --code at the application's source")
    return files


def _event(lexer: Lexer, key: re.Match[bytes] | None, names: dict[bytes, set[bytes]]) -> tuple[str | None, int | None]:
    """The event key of a call's first argument and where it is written (None, None when the argument is
    neither a literal nor a name the file assigns one literal to)."""
    if key is None:
        return None, None
    literal = key.group("literal")
    where = key.start("literal") if literal is not None else key.start("ref")
    if literal is None:
        name = re.split(rb"\s*(?:\?\.|\.|::|->)\s*", key.group("ref"))[-1]
        values = names.get(name, set())
        if len(values) != 1:
            return None, where
        literal = next(iter(values))
    return literal_text(lexer.language, literal), where


def _generated(data: bytes) -> bool:
    """The conventions generators mark their files with, in the first 1,000 bytes: `@generated`, .NET's
    `<auto-generated>`, Go's `// Code generated by X. DO NOT EDIT.`"""
    return (data.find(b"@generated", 0, 1000) != -1 or data.find(b"<auto-generated", 0, 1000) != -1
            or (data.find(b"DO NOT EDIT", 0, 1000) != -1 and b"generated" in data[:1000].lower()))


def _other_analytics(data: bytes, call_start: int) -> bool:
    receiver = RECEIVER.search(data, max(0, call_start - 40), call_start)
    return receiver is not None and receiver.group(1).lower() in OTHER_ANALYTICS


def _call_text(data: bytes, start: int) -> str:
    line_end = data.find(b"\n", start)
    line_start = data.rfind(b"\n", 0, start) + 1
    snippet = data[line_start:line_end if line_end != -1 else len(data)].strip()
    text = snippet.decode("utf-8", errors="replace")
    return text if len(text) <= CALL_TEXT else text[:CALL_TEXT - 1] + "…"


class _Lines:
    """Offset → (line, column), with the newlines found once per file and only when asked."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._starts: list[int] | None = None

    def at(self, offset: int) -> tuple[int, int]:
        if self._starts is None:
            self._starts = [0] + [m.end() for m in re.finditer(rb"\n", self._data)]
        line = bisect_right(self._starts, offset)
        return line, offset - self._starts[line - 1] + 1
