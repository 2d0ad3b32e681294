"""A pull request's own metrics-sync.yaml runs before review (the shipped workflow plans on the pull request's code
and config): its code-reference settings and its `baseUrl` must not be able to hang the run, read outside the
repository or send the token elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from metrics_sync.coderefs.scanner import Scanner
from metrics_sync.coderefs.settings import Settings
from tests.conftest import run_cli

HAS_GIT = shutil.which("git") is not None
CATASTROPHIC = "(?P<key>(a+)+)$"


def test_a_catastrophic_pattern_runs_in_linear_time(tmp_path: Path) -> None:
    """Python's backtracking engine takes about 2^40 steps here; RE2 microseconds. A subprocess, so that the old
    engine cannot hang the test run: it is stopped at the time limit."""
    (tmp_path / "src").mkdir()
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "m.yaml").write_text("project: shop\nmetrics: []\n")
    (tmp_path / "src" / "a.txt").write_text("a" * 40 + "!\n" + "a" * 5000 + "!\n")
    (tmp_path / "metrics-sync.yaml").write_text(f"codeRefs:\n  paths: [src]\n  patterns: ['{CATASTROPHIC}']\n")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONPATH": str(Path(__file__).parents[2])}
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "metrics_sync", "refs"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("the pattern hung the scan")
    assert time.monotonic() - started < 30
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


def test_a_pattern_only_a_backtracking_engine_runs_is_refused_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "metrics-sync.yaml").write_text("codeRefs:\n  patterns:\n    - 'track\\(\"(?P<key>\\w+)\"'\n"
                                                "    - '(?P<key>[a-z]+)\\1'\n")
    result = run_cli("refs", "--code", ".", cwd=tmp_path)
    assert result.code == 1
    assert result.err.startswith("error: metrics-sync.yaml:4:7: the pattern uses what the linear-time engine (RE2) "
                                 "does not have, such as backreferences or lookaround (invalid escape sequence: "
                                 "\\1)"), result.err
    assert len(result.err.splitlines()) == 1


@pytest.mark.parametrize(("paths", "message"), [
    ("[.git]", "metrics-sync.yaml:2:11: `.git` names the repository's .git folder, which is not application code"),
    ("[src, ./.git/]", "metrics-sync.yaml:2:16: `./.git/` names the repository's .git folder"),
    ("[src/../.git]", "metrics-sync.yaml:2:11: `src/../.git` names the repository's .git folder"),
    ("[/etc]", "metrics-sync.yaml:2:11: `/etc` is not a folder relative to the config: code paths must stay inside "
               "the repository"),
    ("[../outside]", "metrics-sync.yaml:2:11: `../outside` leads outside the repository"),
    ("[escape]", "metrics-sync.yaml:2:11: `escape` leads outside the repository"),  # a link out of it
])
def test_code_paths_stay_inside_the_repository_and_out_of_git(tmp_path: Path, paths: str, message: str) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "config").write_text('[http]\n\textraheader = AUTHORIZATION: basic c2VjcmV0\nclient.track("x")\n')
    (repo / "src").mkdir()
    (tmp_path / "outside").mkdir()
    (repo / "escape").symlink_to(tmp_path / "outside")
    (repo / "metrics-sync.yaml").write_text(f"codeRefs:\n  paths: {paths}\n")
    result = run_cli("refs", cwd=repo)
    assert result.code == 1
    assert result.err.startswith(f"error: {message}"), result.err
    assert "AUTHORIZATION" not in result.out + result.err


def test_the_scanner_refuses_a_git_folder_given_directly(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "m.yaml").write_text("project: shop\nmetrics: []\n")
    result = run_cli("refs", "--code", ".git", cwd=tmp_path)
    assert result.code == 1 and "not application code" in result.err


@pytest.mark.skipif(not HAS_GIT, reason="git is not installed")
def test_a_symlinked_folder_the_index_lists_files_under_is_not_followed(tmp_path: Path) -> None:
    """The index lists `src/app.js`; in the working tree `src` is now a link to a folder outside the repository
    (a checkout of a crafted tree can leave this). O_NOFOLLOW on `app.js` alone would still read through `src`."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "app.js").write_text("client.track('secret-from-outside')")
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "app.js").write_text("client.track('inside')")
    (repo / "lib").mkdir()
    (repo / "lib" / "ok.js").write_text("client.track('kept')")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "add", "."], cwd=repo, check=True, env=env)
    shutil.rmtree(repo / "src")
    (repo / "src").symlink_to(outside)  # the index still lists src/app.js
    scan = Scanner(Settings()).scan(["repo"], tmp_path, env)
    assert [r.event for r in scan.refs] == ["kept"]
    assert scan.skipped["links and special files"] == 1
    nested = Scanner(Settings()).scan(["."], repo, env)  # the same from inside, and a link deeper down
    assert [r.event for r in nested.refs] == ["kept"]


@pytest.mark.parametrize(("paths", "message"), [
    ("[../outside]", "metrics-sync.yaml:1:9: `../outside` leads outside the repository"),
    ("[/etc]", "metrics-sync.yaml:1:9: `/etc` is not relative to the config"),
    ("[.git]", "metrics-sync.yaml:1:9: `.git` names the repository's .git folder"),
    ("[escape]", "metrics-sync.yaml:1:9: `escape` leads outside the repository"),
])
def test_definition_paths_in_the_config_stay_inside_the_repository(tmp_path: Path, paths: str, message: str) -> None:
    """validate quotes the definitions it reads: a pull request's config may not point it at files outside the
    repository (a link included) or into `.git`."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.yaml").write_text("token: api-secret-value\n")
    (repo / "escape").symlink_to(tmp_path / "outside")
    (repo / "metrics-sync.yaml").write_text(f"paths: {paths}\n")
    result = run_cli("validate", cwd=repo)
    assert result.code == 1
    assert result.err.startswith(f"error: {message}"), result.err
    assert "api-secret-value" not in result.out + result.err


def test_outside_a_repository_the_config_may_name_a_sibling_folder(tmp_path: Path) -> None:
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "m.yaml").write_text("project: shop\nmetrics: []\n")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "metrics-sync.yaml").write_text("paths: [../metrics]\n")
    result = run_cli("validate", "--config", "conf/metrics-sync.yaml", cwd=tmp_path)
    assert result.code == 0, result.err


def test_the_default_metrics_folder_may_not_be_a_link_out_of_the_repository(tmp_path: Path) -> None:
    """Without PATHs or a config, ./metrics is read: a pull request can commit it as a link to elsewhere."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "creds.yaml").write_text("token: ghp_TOPSECRET\n")
    (repo / "metrics").symlink_to(tmp_path / "secret")
    result = run_cli("validate", cwd=repo)
    assert result.code == 1
    assert result.err.startswith("error: ./metrics leads outside the repository"), result.err
    assert "TOPSECRET" not in result.out + result.err


def test_a_found_config_may_not_be_a_link_out_of_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "metrics").mkdir()
    (tmp_path / "elsewhere.yaml").write_text("project: shop\n")
    (repo / "metrics-sync.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    result = run_cli("validate", cwd=repo)
    assert result.code == 1 and "metrics-sync.yaml leads outside the repository" in result.err, result.err
