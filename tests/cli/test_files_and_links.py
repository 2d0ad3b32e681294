"""Files metrics-sync writes and reads: never through special files or links, never a hidden export that
validate would skip, normal permissions, and no file content echoed out of the definitions folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from metrics_sync.emulator import EmulatorApp, Store
from tests.conftest import ROOT, TOKEN, run_cli

ENV = {"LD_ACCESS_TOKEN": TOKEN, "LD_BASE_URL": "http://127.0.0.1:8765"}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "examples" / "metrics", tmp_path / "metrics")
    (tmp_path / "metrics-sync.yaml").write_text("project: shop\n")
    return tmp_path


def _plan_out(repo: Path, out: str) -> tuple[int, str]:
    transport = httpx.WSGITransport(app=EmulatorApp(Store(["shop"]), token=TOKEN))
    result = run_cli("plan", "--out", out, cwd=repo, env=ENV, transport=transport)
    return result.code, result.err


def test_plan_out_refuses_special_files_and_links(repo: Path) -> None:
    os.mkfifo(repo / "fifo")
    (repo / "target.json").write_text("keep me")
    (repo / "link.json").symlink_to(repo / "target.json")
    assert _plan_out(repo, "fifo") == (1, f"error: refusing to write {repo / 'fifo'}: it exists and is not a "
                                          "regular file (give the path of a regular file)\n")
    assert _plan_out(repo, "link.json") == (1, f"error: refusing to write {repo / 'link.json'}: it is a symbolic "
                                               "link (give the path of a regular file)\n")
    assert (repo / "target.json").read_text() == "keep me" and (repo / "link.json").is_symlink()
    assert _plan_out(repo, "no/such/plan.json") == (1, f"error: cannot write {repo / 'no/such/plan.json'}: the "
                                                       f"folder {repo / 'no/such'} does not exist\n")


def test_plan_out_writes_a_normal_file(repo: Path) -> None:
    previous = os.umask(0o022)
    try:
        code, _ = _plan_out(repo, "plan.json")
    finally:
        os.umask(previous)
    assert code == 0
    assert oct((repo / "plan.json").stat().st_mode & 0o777) == oct(0o644)
    assert not [p for p in repo.iterdir() if p.name.startswith(".plan.json.")]  # no temporary file left


def test_export_never_writes_a_hidden_file_and_plan_sees_every_metric(tmp_path: Path) -> None:
    store = Store(["shop"])
    base = {"kind": "custom", "isNumeric": False}
    store.seed({"projects": {"shop": [{**base, "key": "a", "name": "A", "eventKey": "a", "tags": [".internal"]},
                                      {**base, "key": "b", "name": "B", "eventKey": "b", "tags": [".."]}]}})
    transport = httpx.WSGITransport(app=EmulatorApp(store, token=TOKEN))
    previous = os.umask(0o022)
    try:
        exported = run_cli("export", "--project", "shop", "--adopt", "--out", "metrics", cwd=tmp_path, env=ENV,
                           transport=transport)
    finally:
        os.umask(previous)
    assert exported.code == 0, exported.err
    names = sorted(p.name for p in (tmp_path / "metrics").iterdir())
    assert names == ["internal.yaml", "metrics.schema.json", "untagged.yaml"]
    assert all(oct(p.stat().st_mode & 0o777) == oct(0o644) for p in (tmp_path / "metrics").iterdir())
    validated = run_cli("validate", "metrics", cwd=tmp_path)
    assert validated.out == "OK: 2 metrics in 2 files valid.\n"
    applied = run_cli("apply", "metrics", "--auto-approve", cwd=tmp_path, env=ENV, transport=transport)
    assert applied.code == 0
    pruned = run_cli("plan", "metrics", "--prune", "--detailed-exitcode", cwd=tmp_path, env=ENV, transport=transport)
    assert pruned.code == 0 and "archive" not in pruned.out


def test_links_out_of_the_definitions_folder_are_not_followed(repo: Path, tmp_path_factory: pytest.TempPathFactory
                                                              ) -> None:
    outside = tmp_path_factory.mktemp("elsewhere")
    (outside / ".env").write_text(f"LD_ACCESS_TOKEN={TOKEN}\n")
    (outside / "more").mkdir()
    (outside / "more" / "x.yaml").write_text("project: shop\nmetrics: []\n")
    (repo / "metrics" / "secrets.yaml").symlink_to(outside / ".env")
    (repo / "metrics" / "more").symlink_to(outside / "more")
    (repo / "metrics" / "inside.yaml").symlink_to(repo / "metrics" / "checkout.yaml")
    result = run_cli("validate", cwd=repo, env=ENV)
    assert result.code == 1
    hint = "; hint: if it holds definitions, pass its target as a PATH; otherwise remove the link"
    assert result.out.splitlines() == [
        "metrics/more: symbolic link to a place outside the definitions folder; not followed" + hint,
        "metrics/secrets.yaml: symbolic link to a place outside the definitions folder; not followed" + hint,
        "Found 2 errors (8 metrics and 2 metric groups in 2 files read).",
    ]
    assert TOKEN not in result.out
    assert run_cli("validate", "metrics/checkout.yaml", str(outside / "more"), cwd=repo).code == 0


def test_a_file_that_is_one_long_value_is_never_echoed(repo: Path) -> None:
    (repo / "metrics" / "token.yaml").write_text(f"{TOKEN}-and-then-much-more-text-that-would-be-echoed\n")
    result = run_cli("validate", cwd=repo, env=ENV)
    assert result.code == 1
    assert TOKEN not in result.out
    assert ("metrics/token.yaml:1:1: the file must be a mapping with a `metrics:` list; got a string "
            "('[redacted]-and...')") in result.out
