"""Find the event keys application code sends: list the files, skip what is not the team's source, lex the rest.

Files come from `git ls-files` inside a repository (so `.gitignore` is respected: tracked files and new files
that are not ignored), else from a walk of the folder. Vendored folders, generated files, binary files,
symbolic links and files over the size limit are skipped, and counted, so a report says what it read.

Reads are bounded (the number of files, each file's size) and nothing read is trusted: paths and keys are
only ever printed escaped, by the renderers. The token never reaches git: its environment has no token.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import subprocess
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
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
from metrics_sync.errors import TOKEN_VARIABLES, UsageError

MAX_FILES = 1_000_000  # listed per folder: more is not an application, it is a mistake in --code
GIT_TIMEOUT = 120.0
READERS = 8  # threads reading files: the time goes to system calls, which run outside Python's lock
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
        # A file is lexed only when it holds one of these; the team's patterns are run on every source file.
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
        if not self.patterns and not any(t in data for t in self.triggers):
            return []
        lines = _Lines(data)
        refs: list[Ref] = []
        calls: list[re.Match[bytes]] = []
        names: dict[bytes, set[bytes]] = {}
        skipped_spans: list[tuple[int, int]] = []
        for match in lexer.pattern.finditer(data):
            kind = match.lastgroup
            if kind == "call":
                calls.append(match)
            elif kind == "def":
                name, value, value_span = lexer.definition(match)
                names.setdefault(name, set()).add(value)
                if self.patterns:
                    skipped_spans.append(value_span)  # a string all the same
            elif self.patterns:
                skipped_spans.append(match.span())
        language = lexer.language
        for call in calls:
            if language.receiver_checked and _other_analytics(data, call.start()):
                continue
            event, at = _event(lexer, data, call.end(), names)
            refs.append(Ref(shown_path, *lines.at(at if at is not None else call.start()), event,
                            _call_text(data, call.start())))
        if self.patterns:
            starts = [start for start, _ in skipped_spans]
            for pattern in self.patterns:
                for match in pattern.finditer(data):
                    at = bisect_right(starts, match.start()) - 1
                    if at >= 0 and skipped_spans[at][1] > match.start():
                        continue  # inside a comment or a string
                    group = "key" if "key" in pattern.groupindex else 1
                    key = match.group(group)
                    event = key.decode("utf-8", errors="replace") if key else None
                    at = match.start(group) if key else match.start()
                    refs.append(Ref(shown_path, *lines.at(at), event, _call_text(data, match.start())))
        refs.sort(key=lambda r: (r.line, r.column))
        return refs

    def scan(self, folders: Iterable[str], cwd: Path, environ: Mapping[str, str]) -> Scan:
        """Every ref under `folders` (relative to `cwd`), in file order."""
        result = Scan(tuple(folders))
        for folder in result.folders:
            root = cwd / folder
            if not root.is_dir():
                raise UsageError(f"--code {folder}: no such folder")
            files, note = list_files(root, environ)
            if note:
                result.notes.append(note)
            result.listed += len(files)
            prefix = os.path.normpath(folder).replace(os.sep, "/")  # paths are shown as the user named the folder
            wanted = list(self._candidates(files, result.skipped))
            with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="code") as pool:
                chunk = max(1, len(wanted) // (READERS * 4))
                batches = [wanted[i:i + chunk] for i in range(0, len(wanted), chunk)]
                for refs, scanned, skipped in pool.map(partial(self._read, root, prefix), batches):
                    result.refs.extend(refs)
                    result.scanned += scanned
                    result.skipped.update(skipped)
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

    def _read(self, root: Path, prefix: str, batch: list[tuple[str, Lexer]]) -> tuple[list[Ref], int, Counter[str]]:
        refs: list[Ref] = []
        skipped: Counter[str] = Counter()
        scanned = 0
        limit = self.settings.max_file_bytes
        for rel, lexer in batch:
            data, why = read_bounded(root / rel, limit)
            if data is None:
                skipped[why] += 1
                continue
            if data.find(b"\0", 0, 8000) != -1:
                skipped["binary"] += 1
                continue
            if _generated(data[:1000]):
                skipped["generated"] += 1
                continue
            scanned += 1
            refs.extend(self.scan_text(data, rel if prefix == "." else f"{prefix}/{rel}", lexer))
        return refs, scanned, skipped


def read_bounded(path: Path, limit: int) -> tuple[bytes | None, str]:
    """A regular file's bytes, or None and why not: never through a link, never more than `limit` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        return None, "links and special files" if os.path.islink(path) else f"unreadable ({exc.strerror})"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, "links and special files"
        if info.st_size > limit:
            return None, "over the size limit"
        data = os.read(fd, limit + 1)
        if len(data) > limit:  # grew since fstat
            return None, "over the size limit"
        while len(data) < info.st_size:
            more = os.read(fd, limit + 1 - len(data))
            if not more:
                break
            data += more
        return data, ""
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


def _event(lexer: Lexer, data: bytes, at: int, names: dict[bytes, set[bytes]]) -> tuple[str | None, int | None]:
    """The event key of the call whose arguments start at `at`, and where the key is written (None, None when
    the first argument is neither a literal nor a name the file assigns one literal to)."""
    key = lexer.key.match(data, at)
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


def _generated(head: bytes) -> bool:
    """The conventions generators mark their files with: `@generated`, .NET's `<auto-generated>`, Go's
    `// Code generated by X. DO NOT EDIT.`"""
    return b"@generated" in head or b"<auto-generated" in head or (b"DO NOT EDIT" in head
                                                                   and b"generated" in head.lower())


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
