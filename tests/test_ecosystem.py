"""Fitting the ecosystem: the pre-commit hook for real, the LaunchDarkly integration manifest, and packaging
(pip and pipx from a fresh environment). The GitHub Action and the CI examples are in test_ci.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import jsonschema
import pytest

from metrics_sync import __version__
from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False)


# --- pre-commit ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def user_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("user-repo")
    (repo / "metrics").mkdir()
    (repo / "metrics-sync.yaml").write_text("project: shop\n")
    (repo / "metrics" / "good.yaml").write_text(
        "metrics:\n  - key: order-placed\n    name: Order placed\n    kind: custom\n    eventKey: order-placed\n")
    (repo / "metrics" / "bad.yaml").write_text(
        "metrics:\n  - key: order value\n    name: Order value\n    kind: custom\n    isNumeric: true\n"
        "    eventKey: order-placed\n")
    (repo / "docker-compose.yml").write_text("services: {}\n")  # not a definitions file: never checked
    for args in (["init", "-q"], ["config", "user.email", "ci@example.com"], ["config", "user.name", "CI"],
                 ["add", "."], ["commit", "-qm", "metrics"]):
        assert run("git", *args, cwd=repo).returncode == 0
    return repo


@pytest.mark.slow
def test_pre_commit_hook_for_real(user_repo: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "NO_COLOR": "1"}
    bad = run(BIN / "pre-commit", "try-repo", ROOT, "metrics-sync-validate", "--files", "metrics/bad.yaml",
              "metrics/good.yaml", "docker-compose.yml", cwd=user_repo, env=env)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "metrics-sync validate" in bad.stdout and "Failed" in bad.stdout
    assert ("metrics/bad.yaml:2:5: missing required field `successCriteria` (at metrics[0]); hint: numeric "
            "metrics need `successCriteria`: HigherThanBaseline or LowerThanBaseline") in bad.stdout
    assert "metrics/bad.yaml:2:10: metric keys may only contain" in bad.stdout
    assert "docker-compose.yml" not in bad.stdout
    good = run(BIN / "pre-commit", "try-repo", ROOT, "metrics-sync-validate", "--files", "metrics/good.yaml",
               "docker-compose.yml", cwd=user_repo, env=env)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout


@pytest.mark.slow
def test_the_readme_pre_commit_snippet_works(user_repo: Path, tmp_path: Path) -> None:
    """The snippet users copy, with this checkout as the repository and its HEAD as `rev`."""
    config = readme_pre_commit_config()
    head = run("git", "rev-parse", "HEAD", cwd=ROOT).stdout.strip()
    assert f"rev: {head}" in config and f"repo: {ROOT}" in config
    repo = tmp_path / "repo"
    shutil.copytree(user_repo, repo)
    (repo / ".pre-commit-config.yaml").write_text(config)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "NO_COLOR": "1"}
    result = run(BIN / "pre-commit", "run", "--files", "metrics/bad.yaml", "metrics/good.yaml", cwd=repo, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "metrics/bad.yaml:2:10: metric keys may only contain letters" in result.stdout


def readme_pre_commit_config() -> str:
    """The snippet users copy, with this checkout as the repository and its HEAD as `rev`."""
    readme = (ROOT / "README.md").read_text()
    snippet = readme.split("### 1. pre-commit")[1].split("```yaml\n")[1].split("```")[0]
    head = run("git", "rev-parse", "HEAD", cwd=ROOT).stdout.strip()
    config = re.sub(r"repo: \S+", f"repo: {ROOT}", snippet)
    return re.sub(r"rev: [0-9a-f]{40}", f"rev: {head}", config)


@pytest.mark.slow
def test_the_readme_pre_commit_snippet_passes_the_examples_beside_an_exported_schema(tmp_path: Path) -> None:
    """The examples as a user's `metrics/`, with the schema copy `export` writes beside them: all files pass."""
    from metrics_sync.cli.commands.export import SCHEMA_COPY

    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "examples" / "metrics", repo / "metrics")
    shutil.copy(ROOT / "schemas" / "metrics.schema.json", repo / "metrics" / SCHEMA_COPY)
    (repo / "metrics-sync.yaml").write_text("project: shop\n")
    (repo / ".pre-commit-config.yaml").write_text(readme_pre_commit_config())
    for args in (["init", "-q"], ["config", "user.email", "ci@example.com"], ["config", "user.name", "CI"],
                 ["add", "."], ["commit", "-qm", "metrics"]):
        assert run("git", *args, cwd=repo).returncode == 0
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "NO_COLOR": "1"}
    result = run(BIN / "pre-commit", "run", "--all-files", cwd=repo, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "metrics-sync validate" in result.stdout and "Passed" in result.stdout


def test_the_readme_snippet_matches_only_definition_files() -> None:
    import yaml

    from metrics_sync.cli.commands.export import SCHEMA_COPY
    from metrics_sync.definitions.yaml_reader import SCHEMA_COPY_NAME

    (hook,) = yaml.safe_load(readme_pre_commit_config())["repos"][0]["hooks"]
    files = re.compile(hook["files"])
    assert files.search("metrics/checkout.yaml") and files.search("metrics/team/funnel.yml")
    assert not files.search(f"metrics/{SCHEMA_COPY}") and not files.search("metrics/README.md")
    assert not files.search("app/metrics/checkout.yaml")  # only the repository's own metrics/ folder
    assert SCHEMA_COPY == SCHEMA_COPY_NAME  # what export writes is what validate skips


def test_validate_skips_the_schema_copy_even_when_it_is_given(tmp_path: Path) -> None:
    from tests.conftest import run_cli

    shutil.copytree(ROOT / "examples" / "metrics", tmp_path / "metrics")
    shutil.copy(ROOT / "schemas" / "metrics.schema.json", tmp_path / "metrics" / "metrics.schema.json")
    given = run_cli("validate", "--project", "shop", "metrics/metrics.schema.json", "metrics/checkout.yaml",
                    cwd=tmp_path)
    assert given.code == 0, given.out + given.err
    assert given.out == "OK: 5 metrics and 2 metric groups in 1 file valid.\n"
    folder = run_cli("validate", "--project", "shop", "metrics", cwd=tmp_path)
    assert folder.code == 0 and folder.out == "OK: 8 metrics and 2 metric groups in 2 files valid.\n"


def test_the_hook_file_names_a_version_that_exists() -> None:
    header = (ROOT / ".pre-commit-hooks.yaml").read_text().split("\n- id:")[0]
    rev = re.search(r"rev: (.*)", header)
    assert rev and "commit SHA" in rev.group(1), header
    for tag in re.findall(r"\bv\d+\.\d+\.\d+\b", header):  # a release tag it names must exist (v0.1.0 did not)
        assert run("git", "rev-parse", "--verify", "--quiet", f"refs/tags/{tag}", cwd=ROOT).returncode == 0, tag


def test_hook_definition() -> None:
    import yaml

    hook, refs = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert refs["id"] == "metrics-sync-code-refs" and refs["entry"] == "metrics-sync validate --strict-refs"
    assert refs["pass_filenames"] is False  # all the definitions against all the code
    code = re.compile(refs["files"])
    assert code.search("web/src/Checkout.tsx") and code.search("metrics/x.yaml") and code.search("metrics-sync.yaml")
    assert not code.search("README.md")
    assert hook["id"] == "metrics-sync-validate" and hook["entry"] == "metrics-sync validate"
    assert hook["language"] == "python" and hook["require_serial"] is True
    pattern = re.compile(hook["files"])
    assert pattern.search("metrics/checkout.yaml") and pattern.search("app/metrics/x.yml")
    assert not pattern.search(".github/workflows/ci.yml") and not pattern.search("docker-compose.yml")


# --- LaunchDarkly integration manifest ---------------------------------------------------------------

MANIFEST_DIR = ROOT / "integration"


def test_integration_manifest_follows_launchdarklys_framework() -> None:
    schema = json.loads((ROOT / "tests" / "data" / "integration-manifest.schema.json").read_text())
    manifest = json.loads((MANIFEST_DIR / "manifest.json").read_text())
    jsonschema.Draft7Validator(schema).validate(manifest)
    assert manifest["otherCapabilities"] == ["external"]
    assert manifest["overview"].endswith(".")  # the framework's own repository test
    assert manifest["version"] == __version__
    for icon in manifest["icons"].values():
        path = MANIFEST_DIR / icon
        assert path.is_file() and path.suffix == ".svg"
        assert path.read_text().lstrip().startswith("<svg")


# --- packaging ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    result = run(sys.executable, "-m", "hatchling", "build", "-d", out, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.slow
def test_sdist_and_wheel_contain_the_schema(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    assert "metrics_sync/schemas/metrics.schema.json" in zipfile.ZipFile(wheel).namelist()
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    assert f"metrics_sync-{__version__}/schemas/metrics.schema.json" in names


@pytest.mark.slow
def test_pip_install_from_a_fresh_venv_gives_a_working_command(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    installed = run(python, "-m", "pip", "install", "--quiet", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    command = tmp_path / "venv" / "bin" / "metrics-sync"
    assert run(command, "--version", cwd=tmp_path).stdout == f"metrics-sync {__version__}\n"
    checked = run(command, "validate", ROOT / "examples" / "metrics", cwd=tmp_path)
    assert checked.returncode == 0 and checked.stdout == "OK: 8 metrics and 2 metric groups in 2 files valid.\n"
    where = run(command, "schema", "--path", cwd=tmp_path).stdout.strip()
    assert "site-packages/metrics_sync/schemas/metrics.schema.json" in where and Path(where).is_file()


@pytest.mark.slow
def test_pipx_install_gives_a_working_command(tmp_path: Path) -> None:
    if shutil.which("pipx", path=str(BIN)) is None:
        pytest.skip("pipx is not installed in the test environment")
    env = {**os.environ, "PIPX_HOME": str(tmp_path / "pipx"), "PIPX_BIN_DIR": str(tmp_path / "bin"),
           "PIPX_MAN_DIR": str(tmp_path / "man")}
    installed = run(BIN / "pipx", "install", "--python", sys.executable, ROOT, cwd=tmp_path, env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    result = run(tmp_path / "bin" / "metrics-sync", "validate", ROOT / "examples" / "metrics", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == "OK: 8 metrics and 2 metric groups in 2 files valid.\n"
