"""The config a new team writes first: empty is fine (every setting is optional), a typo gets a "did you mean"
at the key, and a path the config names that does not exist says it came from the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from metrics_sync.definitions.config import Config, load_config
from tests.conftest import ROOT, run_cli


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    (tmp_path / "metrics").mkdir()
    for name in ("checkout.yaml", "storefront.yaml"):
        (tmp_path / "metrics" / name).write_text((ROOT / "examples" / "metrics" / name).read_text())
    return tmp_path


@pytest.mark.parametrize("text", ["", "\n\n", "# metrics-sync settings: none yet\n", "   \n# one\n  # two\n"])
def test_an_empty_config_is_accepted(repo: Path, text: str) -> None:
    (repo / "metrics-sync.yaml").write_text(text)
    assert load_config(None, repo) == Config()
    result = run_cli("validate", "--project", "shop", cwd=repo)
    assert result.code == 0, result.err
    assert result.out == "OK: 8 metrics and 2 metric groups in 2 files valid.\n"


def test_a_config_that_is_not_a_mapping_is_still_refused(repo: Path) -> None:
    (repo / "metrics-sync.yaml").write_text("- project: shop\n")
    result = run_cli("validate", cwd=repo)
    assert result.code == 1 and result.err == "error: metrics-sync.yaml: the config must be a mapping of settings\n"


@pytest.mark.parametrize(("text", "message"), [
    ("project: shop\npahts: [metrics]\n", "metrics-sync.yaml:2:1: unknown setting `pahts` (known: baseUrl, codeRefs, "
     "maxFileBytes, ownershipTag, paths, project, protectRunningExperiments) (did you mean `paths`?)"),
    ("protectRunningExperiment: true\n", "metrics-sync.yaml:1:1: unknown setting `protectRunningExperiment` (known: "
     "baseUrl, codeRefs, maxFileBytes, ownershipTag, paths, project, protectRunningExperiments) (did you mean "
     "`protectRunningExperiments`?)"),
    ("codeRefs:\n  alias: [send]\n", "metrics-sync.yaml:2:3: unknown codeRefs setting `alias` (known: aliases, "
     "exclude, maxFileBytes, paths, patterns) (did you mean `aliases`?)"),
    ("zzz: 1\n", "metrics-sync.yaml:1:1: unknown setting `zzz` (known: baseUrl, codeRefs, maxFileBytes, ownershipTag, "
     "paths, project, protectRunningExperiments)"),
])
def test_a_typo_gets_a_did_you_mean_at_the_key(repo: Path, text: str, message: str) -> None:
    (repo / "metrics-sync.yaml").write_text(text)
    result = run_cli("validate", "--project", "shop", cwd=repo)
    assert result.code == 1
    assert result.err == f"error: {message}\n"


def test_a_missing_path_from_the_config_says_where_the_config_names_it(repo: Path) -> None:
    (repo / "metrics-sync.yaml").write_text("project: shop\npaths: [metrics, more-metrics]\n")
    result = run_cli("validate", cwd=repo)
    assert result.code == 1
    assert result.out.splitlines()[0] == ("more-metrics: no such file or folder (named in `paths` at "
                                          "metrics-sync.yaml:2:8)")
    given = run_cli("validate", "more-metrics", cwd=repo)  # given on the command line: no such note
    assert given.out.splitlines()[0] == "more-metrics: no such file or folder"


def test_a_missing_code_folder_from_the_config_says_so(repo: Path) -> None:
    (repo / "metrics-sync.yaml").write_text("project: shop\ncodeRefs:\n  paths: [src]\n")
    result = run_cli("validate", cwd=repo)
    assert result.code == 1
    assert result.err == "error: src: no such folder (named in codeRefs.paths at metrics-sync.yaml:3:10)\n"
    given = run_cli("validate", "--code", "web", cwd=repo)
    assert given.err == "error: --code web: no such folder\n"
