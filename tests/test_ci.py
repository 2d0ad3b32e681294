"""Pull-request checks that work on the first try: the GitHub Action (action.yml) and the hash-pinned install it
runs, the GitHub workflow example that uses it, and the GitLab CI example. Each is checked against its published
schema (check-jsonschema's vendored copies), the GitHub files by zizmor (offline), and the steps themselves run
here: the action's own scripts, with the inputs the workflow gives them, against the emulator."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
import venv
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

BIN = Path(sys.executable).parent
ACTION = ROOT / "action.yml"
WORKFLOW = ROOT / "examples" / "github" / "metrics-sync.yml"
GITLAB = ROOT / "examples" / "gitlab" / ".gitlab-ci.yml"
LOCK = ROOT / "requirements.lock"
PLACEHOLDER = "<owner>/metrics-sync@<sha>"
FILLED_IN = "metrics-sync/metrics-sync@0123456789abcdef0123456789abcdef01234567"


def run(*args: str | Path, cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def schema_check(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    return run(BIN / "check-jsonschema", "--builtin-schema", f"vendor.{schema}", path, cwd=path.parent)


# --- the action ---------------------------------------------------------------------------------------

def test_the_action_follows_the_published_schema_for_actions(tmp_path: Path) -> None:
    result = schema_check("github-actions", ACTION)
    assert result.returncode == 0 and "ok -- validation done" in result.stdout, result.stdout + result.stderr
    broken = tmp_path / "action.yml"  # the check is not vacuous: a composite step without `shell` is refused
    broken.write_text(ACTION.read_text().replace("      shell: bash\n", "", 1))
    assert schema_check("github-actions", broken).returncode == 1


def test_the_action_takes_the_documented_inputs_and_gives_outputs() -> None:
    action = load(ACTION)
    assert action["runs"]["using"] == "composite"
    assert set(action["inputs"]) == {"command", "paths", "project", "format", "plan-file", "args", "working-directory",
                                     "output-file", "errors-file", "ok-exit-codes", "python"}
    assert action["inputs"]["command"]["required"] is True
    assert all(spec.get("default") is not None for name, spec in action["inputs"].items() if name != "command")
    assert {"exit-code", "plan-file", "command-path"} <= set(action["outputs"])
    install, command = action["runs"]["steps"]
    # The install, exactly: the locked dependencies with their hashes, then this checkout without dependencies.
    assert '--require-hashes --only-binary :all: -r "$ACTION_PATH/requirements.lock"' in install["run"]
    assert '--no-deps --no-build-isolation "$ACTION_PATH"' in install["run"]
    assert install["env"]["ACTION_PATH"] == "${{ github.action_path }}"
    assert install["run"].index("unset LD_ACCESS_TOKEN LAUNCHDARKLY_ACCESS_TOKEN") < install["run"].index("-m pip")
    # Inputs reach the scripts only through the environment: no expression is pasted into shell code.
    for step in action["runs"]["steps"]:
        assert "${{" not in step["run"], step["name"]
    assert command["working-directory"] == "${{ inputs.working-directory }}"


def test_the_lock_pins_every_dependency_and_the_build_backend_by_hash() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    text = LOCK.read_text()
    pins: dict[str, str] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        first = block.split("\n", 1)[0].rstrip(" \\")
        if not first or first.startswith("#"):
            continue
        name, version = first.split("==")
        hashes = re.findall(r"--hash=sha256:[0-9a-f]{64}", block)
        assert hashes, f"{name} has no hash"
        pins[canonicalize_name(name)] = version
    needed = [Requirement(r) for r in project["project"]["dependencies"]]
    needed += [Requirement(r) for r in project["build-system"]["requires"]]
    for requirement in needed:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements.lock (run `make lock`)"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} does not satisfy {requirement}"
    # Compiled dependencies carry the hash of more than one platform's wheel (Linux, macOS and Windows runners).
    compiled = re.search(r"^jsonschema-rs==.*?(?=^\S)", text, re.MULTILINE | re.DOTALL)
    assert compiled and compiled.group().count("--hash=") > 5


class Step:
    """One step of the composite action, run as the runner runs it: bash, its `env` with every `${{ }}`
    expression resolved from the given values, GITHUB_OUTPUT collected."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec = spec

    def run(self, values: Mapping[str, str], cwd: Path, env: Mapping[str, str], temp: Path
            ) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
        output = temp / "github-output"
        output.write_text("")
        step_env = {name: expand(str(value), values) for name, value in self.spec.get("env", {}).items()}
        where = cwd / expand(self.spec.get("working-directory", "."), values)
        full_env = {"PATH": os.environ["PATH"], "HOME": str(temp), "RUNNER_TEMP": str(temp),
                    "GITHUB_OUTPUT": str(output), **env, **step_env}
        result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", self.spec["run"]],
                                cwd=where, env=full_env, capture_output=True, text=True, check=False)
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
        return result, outputs


def expand(text: str, values: Mapping[str, str]) -> str:
    """Resolve `${{ name }}` from `values`; an expression the test does not know fails the test."""
    return re.sub(r"\$\{\{\s*(.+?)\s*\}\}", lambda m: values[m.group(1)], text)


def action_values(inputs: Mapping[str, str]) -> dict[str, str]:
    spec = load(ACTION)["inputs"]
    unknown = set(inputs) - set(spec)
    assert not unknown, f"inputs the action does not take: {unknown}"
    values = {f"inputs.{name}": str(inputs.get(name, field.get("default", ""))) for name, field in spec.items()}
    values["github.action_path"] = str(ROOT)
    return values


def run_action(inputs: Mapping[str, str], cwd: Path, temp: Path, *, env: Mapping[str, str] | None = None,
               installed: Path | None = None) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """Run the action's steps with these inputs: the install (unless `installed` names a metrics-sync command
    to use instead, which saves a virtual environment per call), then the command."""
    install, command = (Step(s) for s in load(ACTION)["runs"]["steps"])
    values = action_values(inputs)
    if installed is None:
        installed_run, outputs = install.run(values, cwd, env or {}, temp)
        assert installed_run.returncode == 0, installed_run.stdout + installed_run.stderr
        installed = Path(outputs["command-path"])
    values["steps.install.outputs.command-path"] = str(installed)
    return command.run(values, cwd, env or {}, temp)


@pytest.mark.slow
def test_the_install_step_installs_from_the_checkout_with_hashes_and_the_command_runs(tmp_path: Path) -> None:
    """The action's install step as it is (a fresh venv, `pip install --require-hashes -r requirements.lock`,
    then `pip install --no-deps` of this checkout), then `metrics-sync validate examples/metrics`."""
    status_before = run("git", "status", "--porcelain", "--ignored", cwd=ROOT).stdout
    result, outputs = run_action({"command": "validate", "paths": "examples/metrics"}, ROOT, tmp_path,
                                 env={"LD_ACCESS_TOKEN": "api-secret-for-this-test"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "OK: 8 metrics and 2 metric groups in 2 files valid.\n"
    assert outputs == {"exit-code": "0"}
    (venv_dir,) = tmp_path.glob("metrics-sync-*")
    assert (venv_dir / "bin" / "metrics-sync").is_file()
    assert run("git", "status", "--porcelain", "--ignored", cwd=ROOT).stdout == status_before  # no litter
    # A second use in the same job reuses the environment.
    again, _ = run_action({"command": "validate", "paths": "examples/metrics"}, ROOT, tmp_path)
    assert again.returncode == 0 and list(tmp_path.glob("metrics-sync-*")) == [venv_dir]


@pytest.mark.slow
def test_installed_without_a_dependency_the_command_says_how_to_install(tmp_path: Path) -> None:
    """The console command of a real install that lacks PyYAML (the lock without it, then the checkout with
    --no-deps, as a user who skipped the first step would have)."""
    lock = re.sub(r"^pyyaml==.*?(?=^\S)", "", LOCK.read_text(), flags=re.MULTILINE | re.DOTALL)
    assert "pyyaml==" not in lock
    (tmp_path / "lock.txt").write_text(lock)
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    for args in (["--require-hashes", "--only-binary", ":all:", "-r", tmp_path / "lock.txt"],
                 ["--no-deps", "--no-build-isolation", ROOT]):
        installed = run(python, "-m", "pip", "install", "--quiet", *args, cwd=tmp_path)
        assert installed.returncode == 0, installed.stderr
    result = run(tmp_path / "venv" / "bin" / "metrics-sync", "validate", ROOT / "examples" / "metrics", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("metrics-sync cannot start: the package `yaml` (PyYAML) is not installed; "
                                    "install metrics-sync with its dependencies"), result.stderr
    assert "internal error" not in result.stderr


def test_the_command_step_passes_the_inputs_as_arguments(tmp_path: Path) -> None:
    """Every input lands where it should, words split on blanks and new lines, nothing globbed or run."""
    recorder = tmp_path / "metrics-sync"
    recorder.write_text('#!/bin/sh\nfor a in "$@"; do printf "[%s]" "$a"; done\necho\necho oops >&2\nexit 2\n')
    recorder.chmod(0o755)
    (tmp_path / "work").mkdir()
    result, outputs = run_action(
        {"command": "plan", "paths": "metrics\nmore-metrics  *.yaml", "project": "shop", "format": "markdown",
         "plan-file": "plan.json", "args": "--detailed-exitcode $(touch pwned) --code src", "ok-exit-codes": "0 2",
         "working-directory": "work", "output-file": "plan.md", "errors-file": "errors.txt"},
        tmp_path, tmp_path, installed=recorder)
    assert result.returncode == 0, result.stderr  # 2 is an ok exit code here
    expected = ("[plan][--out][plan.json][--project][shop][--format][markdown][--detailed-exitcode][$(touch][pwned)]"
                "[--code][src][metrics][more-metrics][*.yaml]\n")
    assert result.stdout == expected
    assert (tmp_path / "work" / "plan.md").read_text() == expected
    assert (tmp_path / "work" / "errors.txt").read_text() == "oops\n" and "oops" in result.stderr
    assert outputs == {"exit-code": "2", "plan-file": str(tmp_path / "work" / "plan.json")}
    assert not list(tmp_path.rglob("pwned"))
    failed, outputs = run_action({"command": "apply", "plan-file": "p.json"}, tmp_path, tmp_path, installed=recorder)
    assert failed.returncode == 2 and outputs["exit-code"] == "2"  # not an ok exit code by default
    assert failed.stdout == "[apply][--plan][p.json]\n"
    unknown, _ = run_action({"command": "rm -rf /"}, tmp_path, tmp_path, installed=recorder)
    assert unknown.returncode == 1 and "unknown command" in unknown.stdout


# --- the GitHub workflow example ------------------------------------------------------------------------

def test_the_workflow_follows_githubs_workflow_schema() -> None:
    result = schema_check("github-workflows", WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def zizmor(*paths: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run(BIN / "zizmor", "--offline", "--persona", "pedantic", "--no-progress", *paths, cwd=cwd,
               env={"PATH": os.environ["PATH"], "HOME": str(cwd), "NO_COLOR": "1"})


def filled_in_workflow(folder: Path, text: str | None = None) -> Path:
    """The workflow with its placeholder filled in as its header says (zizmor rightly flags `@<sha>`)."""
    path = folder / ".github" / "workflows" / "metrics-sync.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((text or WORKFLOW.read_text()).replace(PLACEHOLDER, FILLED_IN))
    return path


def test_zizmor_finds_nothing_in_the_action_and_the_workflow(tmp_path: Path) -> None:
    shutil.copy(ACTION, tmp_path / "action.yml")
    workflow = filled_in_workflow(tmp_path)
    result = zizmor(tmp_path / "action.yml", workflow, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout
    # Not vacuous: credentials persisted by checkout are a finding.
    careless = filled_in_workflow(tmp_path / "careless", WORKFLOW.read_text().replace(
        "        with:\n          persist-credentials: false\n", ""))
    flagged = zizmor(careless, cwd=tmp_path)
    assert flagged.returncode != 0 and "artipacked" in flagged.stdout


def steps_using_the_action(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if step.get("uses") == PLACEHOLDER]


def test_the_workflow_pins_every_action_and_uses_metrics_syncs_own() -> None:
    text = WORKFLOW.read_text()
    uses = re.findall(r"uses: (\S+)(.*)", text)
    assert uses
    for action, comment in uses:
        if action != PLACEHOLDER:
            assert re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", action), action
            assert re.fullmatch(r"\s+# v\d+\.\d+\.\d+", comment), f"{action}: the version in a comment"
    assert f"uses: {PLACEHOLDER}" in text and "full 40-character commit" in text  # the placeholder is explained
    flow = load(WORKFLOW)
    for job in flow["jobs"].values():
        checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
        assert checkout["with"]["persist-credentials"] is False


def test_the_workflow_does_what_the_readme_says() -> None:
    flow = load(WORKFLOW)
    plan, apply = flow["jobs"]["plan"], flow["jobs"]["apply"]
    validate_step, plan_step = steps_using_the_action(plan)
    assert validate_step["with"] == {"command": "validate", "format": "github", "paths": "${{ env.METRICS_PATHS }}",
                                          "args": "${{ env.CODE_REFS }}", "output-file": "validate.txt"}
    assert plan_step["with"] == {"command": "plan", "format": "markdown", "plan-file": "plan.json",
                                 "paths": "${{ env.METRICS_PATHS }}",
                                 "args": "--detailed-exitcode ${{ env.CODE_REFS }}", "ok-exit-codes": "0 2",
                                 "output-file": "plan.md", "errors-file": "plan-errors.txt"}
    assert flow["env"]["CODE_REFS"] == "" and flow["env"]["METRICS_PATHS"] == ""
    comment = next(step for step in plan["steps"] if step.get("uses", "").startswith("actions/github-script@"))
    script = comment["with"]["script"]
    assert "<!-- metrics-sync plan -->" in script and "updateComment" in script  # sticky, not stacked
    # A failed validate or plan replaces the sticky comment instead of leaving a stale passing plan there.
    assert comment["if"].startswith("${{ always()") and "Validation failed" in script and "Plan failed" in script
    upload = next(step for step in plan["steps"] if step.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == "plan.json" and upload["with"]["name"] == "metrics-sync-plan"
    assert apply["concurrency"] == {"group": "metrics-sync-apply", "cancel-in-progress": False}
    assert apply["environment"] == "launchdarkly"
    # The reviewed plan: by the pull request's head SHA and head repository, never by branch name.
    lookup = next(step for step in apply["steps"] if step.get("id") == "reviewed")["run"]
    assert "head_sha=$head_sha" in lookup and ".head_repository.full_name ==" in lookup
    assert "--branch" not in lookup and "head.ref" not in lookup
    reviewed, fresh_plan, fresh_apply = steps_using_the_action(apply)
    assert reviewed["with"] == {"command": "apply", "plan-file": "reviewed/plan.json",
                                "paths": "${{ env.METRICS_PATHS }}"}
    assert reviewed["continue-on-error"] is True
    # The fallback plans with --protect-running and applies exactly the plan it made.
    assert fresh_plan["with"] == {"command": "plan", "plan-file": "fresh-plan.json", "args": "--protect-running",
                                  "paths": "${{ env.METRICS_PATHS }}"}
    assert "steps.reviewed_apply.outcome == 'failure'" in fresh_plan["if"]
    assert fresh_apply["with"] == {"command": "apply", "plan-file": "fresh-plan.json",
                                   "paths": "${{ env.METRICS_PATHS }}"}
    assert fresh_apply["if"] == "steps.fresh.outcome == 'success'"
    everything = str(flow)
    assert "--auto-approve" not in everything and "--prune" not in everything  # prune is never automatic
    assert plan["timeout-minutes"] and apply["timeout-minutes"]


def test_the_workflow_gives_tokens_only_to_the_steps_that_call_launchdarkly() -> None:
    flow = load(WORKFLOW)
    assert "secrets." not in str(flow.get("env", {}))
    tokens = {"plan": "${{ secrets.LD_READ_TOKEN }}", "apply": "${{ secrets.LD_ACCESS_TOKEN }}"}
    for name, job in flow["jobs"].items():
        assert "secrets." not in str(job.get("env", {})), name
        for step in job["steps"]:
            calls_launchdarkly = step.get("uses") == PLACEHOLDER and step["with"]["command"] in ("plan", "apply")
            assert ("secrets." in str(step.get("env", {}))) == calls_launchdarkly, (name, step.get("name"))
            assert "secrets." not in str(step.get("with", {})), (name, step.get("name"))  # inputs are logged
            if calls_launchdarkly:
                assert step["env"] == {"LD_ACCESS_TOKEN": tokens[name]}, (name, step.get("name"))
    # The writer token is a secret of the `launchdarkly` environment: only the job in it may read it.
    assert "environment" not in flow["jobs"]["plan"] and flow["jobs"]["apply"]["environment"] == "launchdarkly"
    # The markdown plan starts with the marker the sticky-comment step looks for.
    from metrics_sync.core.model import Plan
    from metrics_sync.output.plan import markdown as plan_markdown

    assert plan_markdown(Plan([], False, "t", "h", "v")).startswith("<!-- metrics-sync plan -->\n")


# --- both jobs against the emulator, with two definition folders -------------------------------------------

@pytest.fixture
def emulator_url() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "metrics_sync", "emulator", "--port", "0", "--project", "shop"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    assert first.startswith("listening on http://127.0.0.1:"), first
    try:
        yield first.removeprefix("listening on ")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)


def job_inputs(step: Mapping[str, Any], flow: Mapping[str, Any]) -> dict[str, str]:
    """The inputs a workflow step gives the action, its `${{ env.* }}` resolved from the workflow's env."""
    values = {f"env.{name}": str(value) for name, value in flow["env"].items()}
    return {name: expand(str(value), values) for name, value in step["with"].items()}


@pytest.mark.slow
def test_plan_and_apply_jobs_read_the_same_paths_and_the_reviewed_plan_applies(tmp_path: Path,
                                                                                emulator_url: str) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "examples" / "metrics", repo / "metrics")
    (repo / "more-metrics").mkdir()
    (repo / "more-metrics" / "newsletter.yaml").write_text(
        "metrics:\n  - key: newsletter-signup\n    name: Newsletter signup\n    kind: custom\n"
        "    eventKey: newsletter-signup\n")
    (repo / "metrics-sync.yaml").write_text("project: shop\npaths: [metrics, more-metrics]\n")
    env = {"LD_BASE_URL": emulator_url, "LD_ACCESS_TOKEN": "emulator-token", "NO_COLOR": "1"}
    command = BIN / "metrics-sync"
    flow = load(WORKFLOW)
    plan_job, apply_job = flow["jobs"]["plan"], flow["jobs"]["apply"]

    validate_step, plan_step = steps_using_the_action(plan_job)
    validated, _ = run_action(job_inputs(validate_step, flow), repo, tmp_path, installed=command)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    planned, outputs = run_action(job_inputs(plan_step, flow), repo, tmp_path, env=env, installed=command)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert outputs == {"exit-code": "2", "plan-file": str(repo / "plan.json")}  # 2: changes, fine in a PR
    assert (repo / "plan.md").read_text().startswith("<!-- metrics-sync plan -->")
    (repo / "reviewed").mkdir()
    shutil.copy(repo / "plan.json", repo / "reviewed" / "plan.json")  # the artifact, downloaded

    reviewed_step, fresh_plan_step, fresh_apply_step = steps_using_the_action(apply_job)
    # Had the apply job named only `metrics`, the plan would be refused for the files, and say so.
    narrower = {**job_inputs(reviewed_step, flow), "paths": "metrics"}
    refused, _ = run_action(narrower, repo, tmp_path, env=env, installed=command)
    assert refused.returncode == 1
    assert "the plan covered 3 definition files, you gave 2 (not given: more-metrics/newsletter.yaml)" \
        in refused.stderr
    applied, outputs = run_action(job_inputs(reviewed_step, flow), repo, tmp_path, env=env, installed=command)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert applied.stdout.endswith("Apply complete: 11 created, 0 updated, 0 archived, 0 failed.\n")
    # The fallback, as it runs when the reviewed plan is stale: plan again, apply exactly that plan.
    fresh, _ = run_action(job_inputs(fresh_plan_step, flow), repo, tmp_path, env=env, installed=command)
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    again, _ = run_action(job_inputs(fresh_apply_step, flow), repo, tmp_path, env=env, installed=command)
    assert again.returncode == 0 and "No changes. The saved plan has nothing to apply." in again.stdout


# --- the GitLab CI example ----------------------------------------------------------------------------------

def test_the_gitlab_example_follows_gitlabs_schema(tmp_path: Path) -> None:
    result = schema_check("gitlab-ci", GITLAB)
    assert result.returncode == 0 and "ok -- validation done" in result.stdout, result.stdout + result.stderr
    broken = tmp_path / ".gitlab-ci.yml"  # not vacuous: a misspelt job keyword is refused
    broken.write_text(GITLAB.read_text().replace("  resource_group:", "  resource-group:"))
    assert schema_check("gitlab-ci", broken).returncode == 1


def metrics_sync_commands(job: Mapping[str, Any]) -> list[str]:
    lines = [" ".join(str(line).split()) for line in job["script"]]
    return [line for line in lines if "metrics-sync " in line and not line.startswith("python3")]


def test_the_gitlab_jobs_read_the_same_paths_and_apply_on_the_default_branch() -> None:
    pipeline = load(GITLAB)
    validate, plan, apply = pipeline["validate"], pipeline["plan"], pipeline["apply"]
    for job in (validate, plan, apply, pipeline[".metrics-sync"]):
        for line in job.get("script", []) + job.get("before_script", []):
            assert isinstance(line, str), line  # a `: ` in a plain scalar would make it a mapping
    assert pipeline["variables"]["METRICS_PATHS"] == ""
    commands = metrics_sync_commands(validate) + metrics_sync_commands(plan) + metrics_sync_commands(apply)
    assert len(commands) == 5
    for line in commands:
        assert re.search(r"metrics-sync \w+ .*\$METRICS_PATHS( |;|$)", line), line
    assert any("metrics-sync plan --detailed-exitcode --format markdown --out plan.json" in c for c in commands)
    assert "plan.json" in plan["artifacts"]["paths"]
    assert [r["if"] for r in plan["rules"]] == ['$CI_PIPELINE_SOURCE == "merge_request_event"']
    assert [r["if"] for r in apply["rules"]] == ["$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"]
    applied = "\n".join(metrics_sync_commands(apply))
    assert "metrics-sync apply --plan reviewed/plan.json" in applied
    assert ("metrics-sync plan --protect-running --out fresh-plan.json $METRICS_PATHS\n"
            'LD_ACCESS_TOKEN="$LD_WRITE_TOKEN" metrics-sync apply --plan fresh-plan.json') in applied
    assert apply["environment"] == {"name": "launchdarkly"} and apply["resource_group"] == "metrics-sync-apply"
    scripts = "\n".join(plan["script"])
    assert "/merge_requests/" in scripts and "/notes" in scripts and "<!-- metrics-sync plan -->" in scripts
    lookup = next(line for line in apply["script"] if line.startswith("python3"))
    assert 'pipeline["sha"] != mr["sha"]' in lookup  # the reviewed plan of the merge request's last commit
    everything = str(pipeline)  # the jobs, not the comments
    assert "--auto-approve" not in everything and "--prune" not in everything
    # The writer token only in the apply job, the read token only in the plan job.
    assert "LD_WRITE_TOKEN" not in str(plan) and "LD_READ_TOKEN" not in str(apply)
    install = "\n".join(pipeline[".metrics-sync"]["before_script"])
    assert "--require-hashes --only-binary :all: -r /tmp/metrics-sync-src/requirements.lock" in install
    assert "--no-deps --no-build-isolation /tmp/metrics-sync-src" in install


# --- the nightly drift and health workflow ------------------------------------------------------------------

NIGHTLY = ROOT / "examples" / "github" / "metrics-health.yml"


def test_the_nightly_workflow_follows_githubs_schema_and_zizmor_finds_nothing(tmp_path: Path) -> None:
    result = schema_check("github-workflows", NIGHTLY)
    assert result.returncode == 0, result.stdout + result.stderr
    path = tmp_path / ".github" / "workflows" / "metrics-health.yml"
    path.parent.mkdir(parents=True)
    path.write_text(NIGHTLY.read_text().replace(PLACEHOLDER, FILLED_IN))
    checked = zizmor(path, cwd=tmp_path)
    assert checked.returncode == 0 and "No findings to report" in checked.stdout, checked.stdout + checked.stderr
    # Not vacuous: a step that pastes an expression into its script is a finding.
    careless = tmp_path / "careless" / ".github" / "workflows" / "metrics-health.yml"
    careless.parent.mkdir(parents=True)
    careless.write_text(path.read_text().replace("const marker = '<!-- metrics-sync nightly -->';",
                                                 "const marker = '${{ github.event.inputs.marker }}';"))
    assert zizmor(careless, cwd=tmp_path).returncode != 0


def test_the_nightly_workflow_pins_every_action() -> None:
    uses = re.findall(r"uses: (\S+)(.*)", NIGHTLY.read_text())
    assert uses
    for action, comment in uses:
        if action != PLACEHOLDER:
            assert re.fullmatch(r"[\w-]+/[\w-]+@[0-9a-f]{40}", action), action
            assert re.fullmatch(r"\s+# v\d+\.\d+\.\d+", comment), f"{action}: the version in a comment"
    job = load(NIGHTLY)["jobs"]["nightly"]
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["persist-credentials"] is False


def test_the_nightly_workflow_checks_drift_and_health_and_keeps_one_issue_and_the_page() -> None:
    flow = load(NIGHTLY)
    assert "schedule" in flow[True] and "workflow_dispatch" in flow[True]  # (YAML 1.1 reads `on` as True)
    job = flow["jobs"]["nightly"]
    assert job["permissions"] == {"contents": "read", "issues": "write"}
    drift, health, page = steps_using_the_action(job)
    assert drift["with"]["command"] == "plan" and "--detailed-exitcode" in drift["with"]["args"]
    assert drift["with"]["ok-exit-codes"] == "0 2"
    assert health["with"]["command"] == "health" and health["with"]["format"] == "markdown"
    assert health["with"]["output-file"] == "health.md"
    assert page["with"]["command"] == "health" and page["with"]["format"] == "html"
    assert page["with"]["args"].startswith("--out metrics-catalogue.html")
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == "metrics-catalogue.html"
    issue = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/github-script@"))
    script = issue["with"]["script"]
    assert "issues.update" in script and "issues.create" in script and "marker" in script
    assert "${{" not in script  # the outcomes come in through the environment
    # The read-only token, only in the steps that call LaunchDarkly.
    for step in job["steps"]:
        token = (step.get("env") or {}).get("LD_ACCESS_TOKEN")
        assert (token == "${{ secrets.LD_READ_TOKEN }}") == (step in (drift, health, page)), step.get("name")


def test_the_action_runs_health() -> None:
    text = ACTION.read_text()
    assert "validate|plan|apply|show|refs|health|export|doctor) ;;" in text
