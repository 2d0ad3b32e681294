"""The README's commands work when pasted: every shell block marked ```sh tested runs, in order, in a copy
of the repository's examples, against the emulator the README itself starts (on a free port)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"


def runnable_blocks(text: str) -> list[str]:
    blocks = []
    for match in re.finditer(r"^( *)```sh tested\n(.*?)^\1```", text, re.MULTILINE | re.DOTALL):
        indent = len(match.group(1))
        blocks.append("\n".join(line[indent:] for line in match.group(2).splitlines()))
    return blocks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_readme_marks_its_runnable_blocks() -> None:
    blocks = runnable_blocks(README.read_text())
    assert len(blocks) >= 5
    joined = "\n".join(blocks)
    for command in ("validate", "emulator", "plan", "apply", "export", "show", "doctor"):
        assert f"metrics-sync {command}" in joined, command


@pytest.mark.slow
def test_every_tested_readme_block_runs(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("*.py"))
    # A clone: the README's commands must leave no untracked file in it (outputs go to the temporary folder,
    # or are ones the project's .gitignore names).
    shutil.copy(ROOT / ".gitignore", tmp_path / ".gitignore")
    for args in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm",
                                                "clone"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
    script = "set -e\n" + "\n".join(runnable_blocks(README.read_text())).replace("8765", str(free_port()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LD_", "LAUNCHDARKLY_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    env["TMPDIR"] = str(tmp_path.parent / f"{tmp_path.name}-tmp")
    Path(env["TMPDIR"]).mkdir()
    proc = subprocess.Popen(["bash", "-c", script], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the emulator the README starts in the background
    assert proc.returncode == 0, out
    assert "OK: 8 metrics and 2 metric groups in 2 files valid." in out
    assert "Apply complete: 10 created, 0 updated, 0 archived, 0 failed." in out
    assert out.count("No changes. 8 metrics and 2 metric groups match the definitions.") >= 2
    assert "Exported 8 metric(s) and 2 metric group(s) of project shop to exported/" in out
    assert "No changes. The saved plan has nothing to apply." in out
    assert "All 6 assumptions metrics-sync needs hold" in out
    untracked = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=tmp_path,
                               capture_output=True, text=True, check=True).stdout
    assert untracked == "", f"the README's commands left files in the clone:\n{untracked}"
    assert (Path(env["TMPDIR"]) / "metrics-sync-emulator.log").is_file()
