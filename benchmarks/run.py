"""`make bench`: run the real CLI against generated repositories and a seeded emulator on loopback HTTP,
and print a table of figures with the exact commands.

    python benchmarks/run.py [--runs 5] [--quick] [--only NAME ...] [--out benchmarks/out]

Every figure is the median of `--runs` runs (wall time, and the peak RSS of the measured process from
wait4). Request counts come from the emulator's own `/_emulator/stats`, not from the client. Scenarios:

  startup       metrics-sync --version; validate of one small file
  validate      validate of N = 1,000 / 10,000 / 50,000 / 100,000 metrics in 100 files
  plan          plan of N metrics already in sync (same N), with list/per-metric request counts
  latency       plan of N metrics in sync against an emulator answering after 150 ms (a LaunchDarkly an ocean
                away), against the ⌈N/50⌉ × 150 ms of a sequential paged reader
  prerendered   plan of 10,000 and 100,000 metrics in sync against a stand-in answering from pre-rendered bytes
                (prerendered.py): wall, the client's CPU (user + sys from wait4) per listed metric, peak RSS; and
                validate of the same files in the same run (plan ≤ 1.25× validate); and at 150 ms per request
  big           plan of 100,000 metrics in sync (loopback): time and peak RSS
  apply-par     apply of 1,000 creates with --latency-ms 20, --parallelism 1 vs 4, against the floor
                (creates ÷ parallelism × latency)
  state         apply of 2,000 creates against the emulator with --state, vs without
  apply-rate    apply of 300 updates against --rate-limit 100: 429 share, time vs the rate-limit floor
  read-pattern  "one GET per metric, one at a time" (the Terraform provider's read) vs our paged read of
                10,000 metrics with --latency-ms 20
  eppo          eppo-metrics-sync --dryrun vs our validate on the same 10,000 metrics (eppo is installed
                into benchmarks/out/eppo-venv, never into the project's environment)
  refs          refs over a 100,000-file application (≈3 KB each, 5 languages, one file in 50 sends an
                event, plus 5,000 vendored files) against 1,000 metrics: from git's list, and walked
"""

from __future__ import annotations

import argparse
import compileall
import itertools
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from code_tree import write as write_code_tree  # noqa: E402  (benchmarks/ is a folder of scripts)
from eppo_repo import write as write_eppo_repo  # noqa: E402
from generate import generate, seed_metrics  # noqa: E402
from prerendered import StandIn  # noqa: E402

PY = sys.executable
CLI = [PY, "-m", "metrics_sync"]
TOKEN = "emulator-token"
OWNER = "managed-by-metrics-sync"


@dataclass
class Row:
    scenario: str
    figure: str
    value: str
    target: str = ""
    verdict: str = ""
    command: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, *args: Any, **kwargs: Any) -> None:
        row = Row(*args, **kwargs)
        self.rows.append(row)
        print(f"  {row.scenario:<13} {row.figure:<52} {row.value:>14}  {row.target:<18} {row.verdict}", flush=True)


# The measured command is started by a small launcher process, which reports the command's own figures. Linux's
# peak RSS (ru_maxrss) of a child started straight from this script would include this script's memory at the
# fork (the kernel keeps the high-water mark of the address space the child had before exec), and this script
# holds the generated repositories: with 100,000 metrics generated, every run would read at least ~140 MB.
_LAUNCHER = """
import json, os, subprocess, sys, time
report, args = int(sys.argv[1]), sys.argv[2:]
started = time.perf_counter()
proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=())
_, status, usage = os.wait4(proc.pid, 0)
elapsed = time.perf_counter() - started
os.write(report, json.dumps([elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
                             os.waitstatus_to_exitcode(status)]).encode())
"""


def run_usage(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds (user + system), peak RSS in MB, exit code) of one run of the command."""
    read, write = os.pipe()
    try:
        launcher = subprocess.Popen([PY, "-c", _LAUNCHER, str(write), *args], cwd=cwd, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(write,))
    finally:
        os.close(write)
    with os.fdopen(read, "rb") as report:
        figures = report.read()
    launcher.wait()
    if not figures:
        raise SystemExit(f"bench: the launcher of `{shown(args)}` reported nothing (exit {launcher.returncode})")
    elapsed, cpu, peak, code = json.loads(figures)
    return float(elapsed), float(cpu), float(peak), int(code)


def run_measured(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB of that process, exit code) of one run."""
    elapsed, _, peak, code = run_usage(args, cwd=cwd, env=env)
    return elapsed, peak, code


def median_run(args: list[str], runs: int, *, cwd: Path, env: dict[str, str] | None = None,
               ok: tuple[int, ...] = (0,), before: Callable[[], None] | None = None) -> tuple[float, float]:
    times, peaks = [], []
    for _ in range(runs):
        if before:
            before()
        seconds, peak, code = run_measured(args, cwd=cwd, env=env)
        if code not in ok:
            raise SystemExit(f"bench: `{shlex.join(args)}` exited {code}")
        times.append(seconds)
        peaks.append(peak)
    return statistics.median(times), statistics.median(peaks)


def shown(args: list[str]) -> str:
    """The command as a person would type it: `metrics-sync ...`, `python benchmarks/...`."""
    if args[:len(CLI)] == CLI:
        return shlex.join(["metrics-sync", *args[len(CLI):]])
    words = ["python" if a == PY else a.replace(str(HERE), "benchmarks") for a in args]
    return shlex.join(words)


# --- the emulator ------------------------------------------------------------------------------------

@dataclass
class Emulator:
    url: str
    proc: subprocess.Popen[str]

    def stats(self) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.url}/_emulator/stats", headers={"Authorization": TOKEN})
        with urllib.request.urlopen(request) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data

    def env(self) -> dict[str, str]:
        return {**os.environ, "LD_BASE_URL": self.url, "LD_ACCESS_TOKEN": TOKEN, "NO_COLOR": "1"}


@contextmanager
def emulator(*args: str) -> Iterator[Emulator]:
    proc = subprocess.Popen([*CLI, "emulator", "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    if not first.startswith("listening on "):
        raise SystemExit(f"bench: the emulator did not start: {first!r}")
    try:
        yield Emulator(first.removeprefix("listening on "), proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def write_seed(path: Path, project: str, metrics: list[dict[str, Any]]) -> None:
    path.write_text(json.dumps({"projects": {project: metrics}}), encoding="utf-8")


# --- scenarios ----------------------------------------------------------------------------------------

def startup(report: Report, out: Path, runs: int) -> None:
    small = out / "small"
    generate(small, 8, 1, "bench")
    seconds, _ = median_run([*CLI, "--version"], runs, cwd=small)
    report.add("startup", "metrics-sync --version", f"{seconds:.3f} s", "≤ 0.25 s", _ok(seconds <= 0.25),
               "metrics-sync --version")
    args = [*CLI, "validate", "metrics"]
    seconds, _ = median_run(args, runs, cwd=small)
    report.add("startup", "validate, one small file (8 metrics)", f"{seconds:.3f} s", "≤ 0.6 s",
               _ok(seconds <= 0.6), shown(args))


def repo(out: Path, n: int) -> tuple[Path, list[dict[str, Any]]]:
    folder = out / f"repo-{n}"
    metrics = generate(folder, n, 100, "bench")
    return folder, metrics


def validate(report: Report, out: Path, runs: int, sizes: list[int]) -> dict[int, float]:
    times = {}
    for n in sizes:
        folder, _ = repo(out, n)
        args = [*CLI, "validate", "metrics"]
        seconds, peak = median_run(args, runs, cwd=folder)
        times[n] = seconds
        target = {10_000: "≤ 2 s, ≤ 250 MB", 100_000: "≤ 6 s"}.get(n, "")
        verdict = _ok(seconds <= 2 and peak <= 250) if n == 10_000 else _ok(seconds <= 6) if n == 100_000 else ""
        report.add("validate", f"validate {n:,} metrics in 100 files", f"{seconds:.3f} s", target, verdict, shown(args))
        report.add("validate", f"  peak RSS, {n:,} metrics", f"{peak:.0f} MB")
    _growth(report, "validate", times)
    return times


def plan(report: Report, out: Path, runs: int, sizes: list[int]) -> dict[int, float]:
    times = {}
    for n in sizes:
        folder, metrics = repo(out, n)
        write_seed(folder / "seed.json", "bench", seed_metrics(metrics, 100, OWNER))
        with emulator("--project", "bench", "--seed", str(folder / "seed.json")) as emu:
            args = [*CLI, "plan", "metrics", "--detailed-exitcode"]
            before = emu.stats()
            seconds, peak = median_run(args, runs, cwd=folder, env=emu.env())
            after = emu.stats()
        lists = (after["byRoute"].get("GET /api/v2/metrics/{projectKey}", 0)
                 - before["byRoute"].get("GET /api/v2/metrics/{projectKey}", 0)) / runs
        per_metric = sum(v for k, v in after["byRoute"].items() if "{metricKey}" in k) - sum(
            v for k, v in before["byRoute"].items() if "{metricKey}" in k)
        expected = -(-n // 50)
        times[n] = seconds
        target = "≤ 5 s" if n == 10_000 else ""
        report.add("plan", f"plan {n:,} metrics in sync (loopback emulator)", f"{seconds:.3f} s", target,
                   _ok(seconds <= 5) if n == 10_000 else "", shown(args))
        report.add("plan", f"  list requests per plan (⌈N/50⌉ = {expected})", f"{lists:.0f}", f"= {expected}",
                   _ok(lists == expected))
        report.add("plan", "  per-metric requests", f"{per_metric}", "= 0", _ok(per_metric == 0))
        report.add("plan", f"  peak RSS, {n:,} metrics", f"{peak:.0f} MB")
    _growth(report, "plan", times)
    return times


def plan_latency(report: Report, out: Path, runs: int, sizes: list[int], latency_ms: int = 150) -> dict[int, float]:
    times = {}
    for n in sizes:
        folder, metrics = repo(out, n)
        write_seed(folder / "seed.json", "bench", seed_metrics(metrics, 100, OWNER))
        with emulator("--project", "bench", "--seed", str(folder / "seed.json"), "--latency-ms",
                      str(latency_ms)) as emu:
            args = [*CLI, "plan", "metrics", "--detailed-exitcode"]
            seconds, _ = median_run(args, runs, cwd=folder, env=emu.env())
        times[n] = seconds
        sequential = -(-n // 50) * latency_ms / 1000
        target = "≤ 5 s" if n == 10_000 else ""
        report.add("latency", f"plan {n:,} in sync, --latency-ms {latency_ms}", f"{seconds:.2f} s", target,
                   _ok(seconds <= 5) if n == 10_000 else "", shown(args))
        report.add("latency", f"  a sequential paged reader: ⌈N/50⌉ × {latency_ms} ms", f"{sequential:.1f} s")
    return times


def plan_big(report: Report, out: Path, runs: int, n: int = 100_000) -> tuple[float, float]:
    folder, metrics = repo(out, n)
    write_seed(folder / "seed.json", "bench", seed_metrics(metrics, 100, OWNER))
    with emulator("--project", "bench", "--seed", str(folder / "seed.json")) as emu:
        args = [*CLI, "plan", "metrics", "--detailed-exitcode"]
        seconds, peak = median_run(args, runs, cwd=folder, env=emu.env())
    report.add("big", f"plan {n:,} metrics in sync (loopback emulator)", f"{seconds:.2f} s", "≤ 10 s",
               _ok(seconds <= 10), shown(args))
    report.add("big", f"  peak RSS, {n:,} metrics", f"{peak:.0f} MB", "≤ 300 MB", _ok(peak <= 300))
    return seconds, peak


def prerendered(report: Report, out: Path, runs: int, sizes: list[int], latency_ms: int = 150) -> dict[int, float]:
    """plan of N metrics in sync against a stand-in that answers from pre-rendered bytes (prerendered.py): the
    client's own cost, wall and CPU, per listed metric; and, run by run in turn, validate of the same files
    (the ratio target). Then plan against the same stand-in answering after `latency_ms`."""
    times = {}
    for n in sizes:
        folder, metrics = repo(out, n)
        write_seed(folder / "seed.json", "bench", seed_metrics(metrics, 100, OWNER))
        plan_args = [*CLI, "plan", "metrics", "--detailed-exitcode"]
        validate_args = [*CLI, "validate", "metrics"]
        # Rate-limit headers as LaunchDarkly sends them, with a budget the recording never uses up.
        with emulator("--project", "bench", "--seed", str(folder / "seed.json"), "--rate-limit", "10000000") as emu:
            stand_in = StandIn(emu.url)
            _, _, _, code = run_usage(plan_args, cwd=folder, env={**emu.env(), "LD_BASE_URL": stand_in.url})
            stand_in.freeze()
        if code != 0:
            raise SystemExit(f"bench: recording `{shown(plan_args)}` exited {code}")
        env = {**os.environ, "LD_BASE_URL": stand_in.url, "LD_ACCESS_TOKEN": TOKEN, "NO_COLOR": "1"}
        plans, validates = [], []
        try:
            for _ in range(runs):  # interleaved: both see the same machine
                if n <= 10_000:
                    validates.append(run_usage(validate_args, cwd=folder))
                plans.append(run_usage(plan_args, cwd=folder, env=env))
            if stand_in.misses:
                raise SystemExit(f"bench: the plan asked for what was not recorded: {stand_in.misses[:3]}")
            if any(run[3] != 0 for run in plans + validates):
                raise SystemExit("bench: a run against the pre-rendered pages failed")
        finally:
            stand_in.close()
        wall, cpu, peak = (statistics.median(run[i] for run in plans) for i in range(3))
        times[n] = wall
        target = "≤ 8 s" if n >= 100_000 else ""
        report.add("prerendered", f"plan {n:,} in sync, pre-rendered pages", f"{wall:.3f} s", target,
                   _ok(wall <= 8) if target else "", shown(plan_args))
        report.add("prerendered", "  client CPU (user + sys)", f"{cpu:.3f} s")
        report.add("prerendered", "  client CPU per listed metric", f"{cpu / n * 1e6:.0f} µs")
        report.add("prerendered", f"  peak RSS, {n:,} metrics", f"{peak:.0f} MB", "≤ 250 MB" if target else "",
                   _ok(peak <= 250) if target else "")
        if validates:
            v_wall, v_cpu = (statistics.median(run[i] for run in validates) for i in range(2))
            report.add("prerendered", f"  validate {n:,} (same run): wall / CPU", f"{v_wall:.3f} / {v_cpu:.3f} s",
                       command=shown(validate_args))
            report.add("prerendered", "  plan / validate, wall", f"{wall / v_wall:.2f}×", "≤ 1.25×",
                       _ok(wall / v_wall <= 1.25))
        if n <= 10_000 and latency_ms:
            with emulator("--project", "bench", "--seed", str(folder / "seed.json"), "--rate-limit",
                          "10000000") as emu:
                stand_in = StandIn(emu.url, latency_ms=latency_ms)
                run_usage(plan_args, cwd=folder, env={**emu.env(), "LD_BASE_URL": stand_in.url})
                stand_in.freeze()
            env = {**env, "LD_BASE_URL": stand_in.url}
            try:
                far = [run_usage(plan_args, cwd=folder, env=env) for _ in range(runs)]
            finally:
                stand_in.close()
            wall = statistics.median(run[0] for run in far)
            target = "≤ 2.5 s" if n == 10_000 else ""
            report.add("prerendered", f"plan {n:,} in sync, pre-rendered, {latency_ms} ms per request",
                       f"{wall:.2f} s", target, _ok(wall <= 2.5) if target else "", shown(plan_args))
    return times


def state_file(report: Report, out: Path, runs: int, n: int = 2000) -> None:
    folder, _ = repo(out, n)
    args = [*CLI, "apply", "metrics", "--auto-approve", "--parallelism", "4"]
    results = {}
    for persisted in (False, True):
        times = []
        for index in range(runs):
            state = out / f"state-{index}.json"
            state.unlink(missing_ok=True)
            extra = ["--state", str(state)] if persisted else []
            with emulator("--project", "bench", *extra) as emu:
                seconds, _, code = run_measured(args, cwd=folder, env=emu.env())
                if code != 0:
                    raise SystemExit(f"bench: apply exited {code}")
            times.append(seconds)
            state.unlink(missing_ok=True)
        results[persisted] = statistics.median(times)
        report.add("state", f"apply {n:,} creates, emulator {'with' if persisted else 'without'} --state",
                   f"{results[persisted]:.2f} s", command=shown(args))
    ratio = results[True] / results[False]
    report.add("state", "  with --state / without", f"{ratio:.2f}×", "≤ 1.5×", _ok(ratio <= 1.5))


def apply_parallel(report: Report, out: Path, runs: int, n: int = 1000) -> None:
    folder, _ = repo(out, n)
    results = {}
    for parallelism in (1, 4):
        args = [*CLI, "apply", "metrics", "--auto-approve", "--parallelism", str(parallelism)]
        times = []
        for _ in range(runs):
            with emulator("--project", "bench", "--latency-ms", "20") as emu:
                seconds, _, code = run_measured(args, cwd=folder, env=emu.env())
                if code != 0:
                    raise SystemExit(f"bench: apply exited {code}")
                created = emu.stats()["byRoute"].get("POST /api/v2/metrics/{projectKey}", 0)
                assert created == n, created
            times.append(seconds)
        results[parallelism] = statistics.median(times)
        report.add("apply-par", f"apply {n:,} creates, --latency-ms 20, parallelism {parallelism}",
                   f"{results[parallelism]:.2f} s", command=shown(args))
    speedup = results[1] / results[4]
    report.add("apply-par", "  speed-up of parallelism 4 over 1", f"{speedup:.2f}×", "≥ 3×", _ok(speedup >= 3))
    floor = n / 4 * 0.020
    report.add("apply-par", f"  parallelism 4 / floor ({n:,} ÷ 4 × 20 ms = {floor:.1f} s)",
               f"{results[4] / floor:.2f}×", "≤ 1.1×", _ok(results[4] / floor <= 1.1))


def apply_rate_limited(report: Report, out: Path, runs: int, n: int = 300, limit: int = 100) -> None:
    folder, metrics = repo(out, n)
    write_seed(folder / "seed.json", "bench", seed_metrics(metrics, 100, OWNER))
    for file in (folder / "metrics").glob("*.yaml"):  # change every metric: n updates
        file.write_text(file.read_text().replace("description: \"Benchmark metric", "description: \"Bench metric"))
    args = [*CLI, "apply", "metrics", "--auto-approve"]
    times, limited, total, patches = [], [], [], []
    for _ in range(runs):
        with emulator("--project", "bench", "--seed", str(folder / "seed.json"), "--rate-limit", str(limit)) as emu:
            seconds, _, code = run_measured(args, cwd=folder, env=emu.env())
            if code != 0:
                raise SystemExit(f"bench: apply exited {code}")
            stats = emu.stats()
        times.append(seconds)
        limited.append(stats["byStatus"].get("429", 0))
        total.append(stats["requests"])
        patches.append(stats["byRoute"].get("PATCH /api/v2/metrics/{projectKey}/{metricKey}", 0))
    seconds = statistics.median(times)
    share = statistics.median(x / t for x, t in zip(limited, total, strict=True))
    floor = statistics.median(patches) / limit * 10
    report.add("apply-rate", f"apply {n} updates, --rate-limit {limit} per 10 s per route", f"{seconds:.2f} s",
               command=shown(args))
    report.add("apply-rate", "  429 answers / all requests", f"{share:.1%}", "≤ 2%", _ok(share <= 0.02))
    report.add("apply-rate", f"  time / rate-limit floor ({floor:.0f} s)", f"{seconds / floor:.2f}×", "≤ 1.1×",
               _ok(seconds / floor <= 1.1))


def read_pattern(report: Report, out: Path, runs: int, n: int = 10_000) -> None:
    folder, metrics = repo(out, n)
    write_seed(folder / "seed.json", "bench", seed_metrics(metrics, 100, OWNER))
    keys = folder / "keys.json"
    keys.write_text(json.dumps([m["key"] for m in metrics]))
    with emulator("--project", "bench", "--seed", str(folder / "seed.json"), "--latency-ms", "20") as emu:
        paged = [PY, str(HERE / "read_pattern.py"), "paged", emu.url, "bench"]
        seconds_paged, _ = median_run(paged, runs, cwd=folder, env=emu.env())
        one_by_one = [PY, str(HERE / "read_pattern.py"), "per-metric", emu.url, "bench", str(keys)]
        seconds_single, _ = median_run(one_by_one, 1, cwd=folder, env=emu.env())
    report.add("read-pattern", f"paged list read of {n:,} metrics, --latency-ms 20 ({runs} runs)",
               f"{seconds_paged:.2f} s", command=shown(paged))
    report.add("read-pattern", f"one GET per metric, one at a time ({n:,} GETs, 1 run)", f"{seconds_single:.1f} s",
               command=shown(one_by_one))
    report.add("read-pattern", "  ratio", f"{seconds_single / seconds_paged:.0f}× faster")


def eppo(report: Report, out: Path, runs: int, n: int = 10_000) -> float | None:
    venv = out / "eppo-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([PY, "-m", "venv", str(venv)], check=True)
        installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "eppo-metrics-sync"],
                                   capture_output=True, text=True, check=False)
        if installed.returncode != 0:
            report.add("eppo", "eppo-metrics-sync could not be installed (no package index?)", "skipped")
            return None
    version = subprocess.run([str(python), "-m", "pip", "show", "eppo-metrics-sync"], capture_output=True, text=True,
                             check=False).stdout.split("Version: ")[-1].split()[0]
    eppo_folder = out / f"eppo-{n}"
    write_eppo_repo(eppo_folder, n, 100)
    theirs = [str(python), "-m", "eppo_metrics_sync", str(eppo_folder), "--dryrun"]
    seconds_theirs, _ = median_run(theirs, runs, cwd=out)
    folder, _ = repo(out, n)
    ours = [*CLI, "validate", "metrics"]
    seconds_ours, _ = median_run(ours, runs, cwd=folder)
    report.add("eppo", f"eppo-metrics-sync {version} --dryrun, {n:,} metrics", f"{seconds_theirs:.2f} s",
               command=f"python -m eppo_metrics_sync {eppo_folder.name} --dryrun")
    report.add("eppo", f"metrics-sync validate, {n:,} metrics", f"{seconds_ours:.2f} s", command=shown(ours))
    report.add("eppo", "  ratio", f"{seconds_theirs / seconds_ours:.1f}× faster")
    return seconds_theirs


def refs(report: Report, out: Path, runs: int, files: int = 100_000) -> None:
    """`metrics-sync refs` over a generated application: the tree is made once (with git) and kept."""
    tree = out / f"code-{files}"
    if not (tree / ".git").exists():
        shutil.rmtree(tree, ignore_errors=True)
        write_code_tree(tree, files, 1000, git=True)
    definitions = out / "refs-metrics"
    if not definitions.exists():
        generate(definitions, 6000, 10, "bench")  # 1,000 of each kind: 4,000 custom metrics
    args = [*CLI, "refs", "metrics", "--code", str(tree)]
    seconds, peak = median_run(args, runs, cwd=definitions)
    report.add("refs", f"refs, {files:,} files (git ls-files)", f"{seconds:.2f} s", "≤ 5 s", _ok(seconds <= 5),
               shown(args).replace(str(out), "benchmarks/out"))
    report.add("refs", "  peak RSS", f"{peak:.0f} MB")
    hidden = tree / ".git-hidden"
    (tree / ".git").rename(hidden)
    try:
        # benchmarks/out is inside this repository (and ignored by it): stop git from finding it.
        seconds, _ = median_run(args, runs, cwd=definitions, env={**os.environ, "GIT_CEILING_DIRECTORIES": str(out)})
    finally:
        hidden.rename(tree / ".git")
    report.add("refs", f"refs, {files:,} files (walked, no repository)", f"{seconds:.2f} s", "≤ 5 s",
               _ok(seconds <= 5))


def _growth(report: Report, scenario: str, times: dict[int, float]) -> None:
    sizes = sorted(times)
    for small, big in itertools.pairwise(sizes):
        ratio = times[big] / times[small]
        linear = big / small
        # The row looks for worse-than-linear growth; 10 % over linear is the noise of one busy run, not a trend.
        report.add(scenario, f"  growth {small:,} → {big:,} metrics (linear = {linear:.0f}×)", f"{ratio:.2f}×",
                   f"≤ {linear * 1.1:.1f}× (linear + 10 %)", _ok(ratio <= linear * 1.1))


def _chart(scaling: dict[str, Any], out: Path, *, full: bool) -> None:
    """The scaling chart: docs/performance-scaling.svg after a full run (the README links it), else into `out`."""
    from chart import series_from, svg  # benchmarks/ is a folder of scripts

    source = out / "scaling.json"
    source.write_text(json.dumps(scaling, indent=1), encoding="utf-8")
    if not series_from(scaling):
        return
    target = HERE.parent / "docs" / "performance-scaling.svg" if full else out / "performance-scaling.svg"
    target.write_text(svg(series_from(scaling), "metrics-sync: time against the number of metrics"),
                      encoding="utf-8")
    print(f"chart: {target} (data: {source})")


def _ok(passed: bool) -> str:
    return "met" if passed else "NOT MET"


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({model}){memory}, "
            f"Python {platform.python_version()}")


SCENARIOS = ("startup", "validate", "plan", "latency", "prerendered", "big", "apply-par", "state", "apply-rate",
             "read-pattern", "eppo", "refs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small sizes and 1 run: a smoke test of the script")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--out", type=Path, default=HERE / "out")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    sizes = [200, 1000] if args.quick else [1_000, 10_000, 50_000]
    big = 1000 if args.quick else 10_000
    args.out.mkdir(parents=True, exist_ok=True)
    # Measure the tool as installed: an installed wheel has its bytecode compiled, while an editable install
    # under PYTHONDONTWRITEBYTECODE would compile every changed module again in every measured run.
    compileall.compile_dir(HERE.parent / "metrics_sync", quiet=1)
    report = Report()
    print(f"machine: {machine()}")
    print(f"runs per figure: {runs} (median)\n")
    started = time.perf_counter()
    scaling: dict[str, Any] = {"latency_ms": 150}
    if "startup" in args.only:
        startup(report, args.out, runs)
    if "validate" in args.only:
        scaling["validate"] = validate(report, args.out, runs, sizes if args.quick else [*sizes, 100_000])
    if "plan" in args.only:
        scaling["plan"] = plan(report, args.out, runs, sizes)
    if "latency" in args.only:
        scaling["plan_latency"] = plan_latency(report, args.out, runs, [200] if args.quick else [1_000, 2_000, 10_000])
    if "prerendered" in args.only:
        scaling["plan_prerendered"] = prerendered(report, args.out, runs, [1_000] if args.quick else [10_000, 100_000])
    if "big" in args.only:
        n = 5_000 if args.quick else 100_000
        scaling.setdefault("plan", {})[n] = plan_big(report, args.out, 1 if args.quick else min(runs, 3), n)[0]
    if "apply-par" in args.only:
        apply_parallel(report, args.out, runs, 100 if args.quick else 1000)
    if "state" in args.only:
        state_file(report, args.out, runs, 200 if args.quick else 2000)
    if "apply-rate" in args.only:
        apply_rate_limited(report, args.out, runs, 30 if args.quick else 300, 10 if args.quick else 100)
    if "read-pattern" in args.only:
        read_pattern(report, args.out, runs, big)
    if "refs" in args.only:
        refs(report, args.out, runs, 2_000 if args.quick else 100_000)
    if "eppo" in args.only:
        theirs = eppo(report, args.out, runs, big)
        if theirs is not None:
            scaling["eppo"] = {big: theirs}
    _chart(scaling, args.out, full=not args.quick and set(args.only) >= {"validate", "plan", "latency", "big"})
    print(f"\nall figures in {time.perf_counter() - started:.0f} s. Commands (run in the generated folder under "
          f"{args.out}):")
    for row in report.rows:
        if row.command:
            print(f"  {row.scenario:<13} {row.command}")
    return 1 if any(row.verdict == "NOT MET" for row in report.rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
