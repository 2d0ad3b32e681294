"""The optional `metrics-sync.yaml` config file.

Settings (all optional): `project`, `paths`, `baseUrl`, `ownershipTag`, `maxFileBytes`,
`protectRunningExperiments` (refuse changes that change the results of running experiments), `codeRefs`
(where the application code is and how it sends events: `paths`, `exclude`, `aliases`, `patterns`,
`maxFileBytes`). Relative `paths` are taken relative to the config file's folder, so the tool behaves the
same from any working directory.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from metrics_sync.coderefs.settings import DEFAULT_MAX_FILE_BYTES as DEFAULT_CODE_FILE_BYTES
from metrics_sync.coderefs.settings import Settings as CodeRefs
from metrics_sync.coderefs.settings import compile_pattern
from metrics_sync.core.errors import ConfigError
from metrics_sync.definitions.schema import follows_rule
from metrics_sync.definitions.yaml_reader import (
    DEFAULT_MAX_FILE_BYTES,
    FileTooLarge,
    NotRegularFile,
    load_yaml_file,
    read_regular_file,
)

DEFAULT_CONFIG_FILE = "metrics-sync.yaml"
DEFAULT_OWNERSHIP_TAG = "managed-by-metrics-sync"
DEFAULT_PATHS = ("metrics",)


@dataclass(frozen=True)
class Config:
    project: str | None = None
    paths: tuple[str, ...] = ()
    base_url: str | None = None
    base_url_source: str | None = None  # where the config sets `baseUrl` (file:line:col)
    ownership_tag: str = DEFAULT_OWNERSHIP_TAG
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    project_source: str | None = None  # where the config names `project` (file:line:col), for messages
    paths_source: str | None = None  # where the config sets `paths` (file:line:col): a missing one says so
    protect_running: bool = False  # `protectRunningExperiments`: refuse, not only warn about, such changes
    code_refs: CodeRefs = field(default_factory=CodeRefs)


def find_config(cwd: Path) -> Path | None:
    """`metrics-sync.yaml` in the working directory or the nearest folder above it, up to the repository
    root (a folder holding `.git`), as git and pre-commit find their files. In a repository, a config that is a
    link out of it (a pull request can commit one) is refused: it would be read, and quoted, from elsewhere."""
    for folder in (cwd, *cwd.parents):
        candidate = folder / DEFAULT_CONFIG_FILE
        if candidate.is_file():
            root = _repository(folder)
            if (root / ".git").exists() and _outside_repository(DEFAULT_CONFIG_FILE, folder, root):
                raise ConfigError(f"{candidate} leads outside the repository",
                                  "make it a file of the repository, or pass --config")
            return candidate
        if (folder / ".git").exists():
            return None
    return None


def default_paths(cwd: Path) -> tuple[str, ...]:
    """The PATHs when neither the command line nor the config names any: ./metrics. In a repository it must stay
    inside it: a link out of it (a pull request can commit one) is refused, as a config's own paths are."""
    root = _repository(cwd)
    if (root / ".git").exists():
        for given in DEFAULT_PATHS:
            why = _outside_repository(given, cwd, root)
            if why:
                raise ConfigError(f"./{given} {why}", "make it a folder of the repository, or pass the PATHs to read")
    return DEFAULT_PATHS


def load_config(explicit: str | None, cwd: Path) -> Config:
    """Read `explicit` (must exist; relative to `cwd`) or the `metrics-sync.yaml` `find_config` finds; else
    the defaults."""
    path = cwd / explicit if explicit else find_config(cwd)
    if path is None or not path.is_file():
        if explicit:
            raise ConfigError(f"config file {explicit} not found")
        return Config()
    display = explicit or _relative(path, cwd)
    if _only_comments(path):
        return Config()  # every setting is optional: an empty config (or one of comments only) sets none
    doc, problems = load_yaml_file(path, display=display)
    if problems:
        first = problems[0]
        where = f"{first.file}:{first.line}:{first.column}" if first.line else first.file
        raise ConfigError(f"{where}: {first.message}", first.hint)
    assert doc is not None
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise ConfigError(f"{display}: the config must be a mapping of settings")

    def fail(key: str, message: str, hint: str | None = None, *, at_key: bool = False) -> ConfigError:
        line, col = doc.position((key,), key=at_key)
        return ConfigError(f"{display}:{line}:{col}: {message}", hint)

    known = {"project", "paths", "baseUrl", "ownershipTag", "maxFileBytes", "protectRunningExperiments", "codeRefs"}
    for key in data:
        if key not in known:
            raise fail(key, f"unknown setting `{key}` (known: {', '.join(sorted(known))})", _did_you_mean(key, known),
                       at_key=True)
    project = data.get("project")
    if project is not None and (not isinstance(project, str) or not follows_rule(project, "properties", "project")):
        raise fail("project", "`project` must be a LaunchDarkly project key")
    paths_value: Any = data.get("paths", [])
    if isinstance(paths_value, str):
        paths_value = [paths_value]
    if not isinstance(paths_value, list) or not all(isinstance(p, str) for p in paths_value):
        raise fail("paths", "`paths` must be a list of files or folders")
    base = path.parent
    root = _repository(base)
    in_git = (root / ".git").exists()  # a pull request's checkout always is; elsewhere nothing is limited
    for i, given in enumerate(paths_value if in_git else []):
        # The config may be a pull request's, read before review: its definitions stay inside the repository
        # (validate quotes what it reads), as its code paths do.
        why = ("is not relative to the config: definition paths in the config must stay inside the repository"
               if Path(given).is_absolute() else _outside_repository(given, base, root))
        if why:
            line, col = doc.position(("paths", i) if isinstance(data.get("paths"), list) else ("paths",))
            raise ConfigError(f"{display}:{line}:{col}: `{given}` {why}", "name definition files or folders inside "
                              "the repository; PATHs given on the command line are not limited")
    paths = tuple(_relative(base / p, cwd) for p in paths_value)
    base_url = data.get("baseUrl")
    if base_url is not None and not isinstance(base_url, str):
        raise fail("baseUrl", "`baseUrl` must be a URL such as https://app.launchdarkly.com")
    tag = data.get("ownershipTag", DEFAULT_OWNERSHIP_TAG)
    if not isinstance(tag, str) or not follows_rule(tag, "$defs", "metric", "properties", "tags", "items"):
        raise fail("ownershipTag", "`ownershipTag` must be a LaunchDarkly tag (letters, numbers, '.', '_', '-')")
    max_bytes = data.get("maxFileBytes", DEFAULT_MAX_FILE_BYTES)
    if not _file_size(max_bytes):
        raise fail("maxFileBytes", f"`maxFileBytes` must be a positive whole number up to {MAX_FILE_BYTES_LIMIT:,}")
    protect = data.get("protectRunningExperiments", False)
    if not isinstance(protect, bool):
        raise fail("protectRunningExperiments", "`protectRunningExperiments` must be true or false")
    named_at = "{}:{}:{}".format(display, *doc.position(("project",))) if project is not None else None
    paths_at = "{}:{}:{}".format(display, *doc.position(("paths",))) if "paths" in data else None
    base_url_at = "{}:{}:{}".format(display, *doc.position(("baseUrl",))) if base_url is not None else None
    code_refs = _code_refs(data.get("codeRefs"), doc, display, base, cwd)
    return Config(project=project, paths=paths, base_url=base_url, base_url_source=base_url_at, ownership_tag=tag,
                  max_file_bytes=max_bytes, project_source=named_at, paths_source=paths_at, protect_running=protect,
                  code_refs=code_refs)


# A pull request can change metrics-sync.yaml, and the shipped workflow runs `plan` on the pull request's config
# with a read token before anyone reviews it: a `baseUrl` of the pull request's choosing would receive the token.
# So the config may name only LaunchDarkly's own hosts (and loopback, for the emulator); another host needs the
# runner's consent (METRICS_SYNC_ALLOW_BASE_URL), and --base-url and LD_BASE_URL, which the runner sets, are not
# limited.
LAUNCHDARKLY_HOSTS = frozenset({"app.launchdarkly.com", "app.eu.launchdarkly.com", "app.launchdarkly.us"})
ALLOW_BASE_URL = "METRICS_SYNC_ALLOW_BASE_URL"


def check_config_base_url(cfg: Config, environ: Mapping[str, str]) -> str:
    """The config's `baseUrl`, when it names a LaunchDarkly host, loopback, or a host the environment allows."""
    assert cfg.base_url is not None
    try:
        host = (urlsplit(cfg.base_url).hostname or "").lower()
    except ValueError:
        host = ""
    allowed = {h.strip().lower() for h in environ.get(ALLOW_BASE_URL, "").split(",") if h.strip()}
    if host in LAUNCHDARKLY_HOSTS or host in allowed or _loopback(host):
        return cfg.base_url
    where = f"{cfg.base_url_source}: " if cfg.base_url_source else ""
    raise ConfigError(f"{where}`baseUrl` names {host or 'no host'}, which is not LaunchDarkly's (app.launchdarkly.com, "
                      f"app.eu.launchdarkly.com, app.launchdarkly.us) nor loopback: the access token is not sent "
                      f"there on the config's word",
                      f"if that host is yours, set {ALLOW_BASE_URL}={host or 'HOST'} (or LD_BASE_URL, or --base-url) "
                      f"where the tool runs")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _only_comments(path: Path) -> bool:
    try:
        text = read_regular_file(path, DEFAULT_MAX_FILE_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError, NotRegularFile, FileTooLarge):
        return False  # load_yaml_file reports it
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())


def _did_you_mean(word: str, known: set[str]) -> str | None:
    guess = difflib.get_close_matches(word, sorted(known), n=1, cutoff=0.6)
    return f"did you mean `{guess[0]}`?" if guess else None


ALIAS = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*")
MAX_PATTERN_CHARS = 1000


def _code_refs(section: Any, doc: Any, display: str, base: Path, cwd: Path) -> CodeRefs:
    """The `codeRefs:` section; each problem is located at the setting or item it is about."""
    if section is None:
        return CodeRefs()

    def fail(path: tuple[str | int, ...], message: str, hint: str | None = None, *, at_key: bool = False
             ) -> ConfigError:
        line, col = doc.position(("codeRefs", *path), key=at_key)
        return ConfigError(f"{display}:{line}:{col}: {message}", hint)

    if not isinstance(section, dict):
        raise fail((), "`codeRefs` must be a mapping (paths, exclude, aliases, patterns, maxFileBytes)")
    known = {"paths", "exclude", "aliases", "patterns", "maxFileBytes"}
    for key in section:
        if key not in known:
            raise fail((key,), f"unknown codeRefs setting `{key}` (known: {', '.join(sorted(known))})",
                       _did_you_mean(key, known), at_key=True)
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("paths", "exclude", "aliases", "patterns"):
        value = section.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise fail((key,), f"`codeRefs.{key}` must be a list of strings")
        lists[key] = tuple(value)
    for i, alias in enumerate(lists["aliases"]):
        if not ALIAS.fullmatch(alias):
            raise fail(("aliases", i), f"`{alias}` is not a function or method name (such as trackConversion or "
                                       "Analytics.send)")
    for i, pattern in enumerate(lists["patterns"]):
        if len(pattern) > MAX_PATTERN_CHARS:
            raise fail(("patterns", i), f"the pattern is over {MAX_PATTERN_CHARS} characters")
        try:
            compile_pattern(pattern)
        except ValueError as exc:
            raise fail(("patterns", i), f"the pattern {exc}") from None
    max_bytes = section.get("maxFileBytes", DEFAULT_CODE_FILE_BYTES)
    if not _file_size(max_bytes):
        raise fail(("maxFileBytes",), f"`codeRefs.maxFileBytes` must be a positive whole number up to "
                                      f"{MAX_FILE_BYTES_LIMIT:,}")
    root = _repository(base)
    for i, folder in enumerate(lists["paths"]):
        why = _outside_repository(folder, base, root)
        if why:
            raise fail(("paths", i), f"`{folder}` {why}", "name folders of the application's code inside the "
                       "repository; --code DIR on the command line is not limited")
    paths = tuple(_relative(base / p, cwd) for p in lists["paths"])
    paths_at = "{}:{}:{}".format(display, *doc.position(("codeRefs", "paths"))) if "paths" in section else None
    return CodeRefs(paths=paths, exclude=lists["exclude"], aliases=lists["aliases"], patterns=lists["patterns"],
                    max_file_bytes=max_bytes, paths_source=paths_at)


# The largest maxFileBytes a config may set: 1 GiB (a file is read whole, up to the limit, in one read).
MAX_FILE_BYTES_LIMIT = 1 << 30


def _file_size(value: Any) -> bool:
    """Whether `value` can be a maxFileBytes: a whole number from 1 to MAX_FILE_BYTES_LIMIT."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_FILE_BYTES_LIMIT


def _repository(base: Path) -> Path:
    """The repository the config belongs to: the nearest folder holding `.git` from the config's folder up, else
    the config's folder."""
    for folder in (base, *base.parents):
        if (folder / ".git").exists():
            return folder
    return base


def _outside_repository(folder: str, base: Path, root: Path) -> str | None:
    """Why `codeRefs.paths` may not name `folder`, or None. The config is the pull request's to change and is
    read before review: it may not send the scanner (which prints lines of what it reads) outside the repository
    or into `.git`, where actions/checkout keeps the token it was given."""
    if Path(folder).is_absolute():
        return "is not a folder relative to the config: code paths must stay inside the repository"
    try:
        resolved = (base / folder).resolve()
    except (OSError, RuntimeError, ValueError):  # a symbolic link loop, a NUL
        return "cannot be resolved (a symbolic link loop, or a character no path may hold)"
    try:
        inside = resolved.relative_to(root.resolve())
    except ValueError:
        return "leads outside the repository"
    if any(part.lower() == ".git" for part in (*Path(folder).parts, *inside.parts)):
        return "names the repository's .git folder, which is not application code"
    return None


def _relative(path: Path, cwd: Path) -> str:
    # Shown in messages, so keep it short: relative to where the user runs the tool (`../metrics` for a
    # config found above it). A path that cannot be resolved (a link loop, a NUL) is shown as it is.
    try:
        return os.path.relpath(path.resolve(), cwd.resolve())
    except (OSError, RuntimeError, ValueError):
        return str(path)
