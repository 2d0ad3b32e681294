"""`make bench`: time the real CLI on generated repositories and print a table of figures.

    python benchmarks/run.py [--runs 5] [--sizes 10000] [--out benchmarks/out]

Each figure is the median of `--runs` runs of the installed command in a subprocess (wall time and the
peak RSS of that process, from wait4). The exact commands are printed with the table so anyone can
reproduce a figure by hand.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import generate  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)

CLI = [sys.executable, "-m", "metrics_sync"]


@dataclass
class Figure:
    name: str
    command: str
    seconds: float
    peak_mb: float
    runs: int


def measure(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit code) of one run of `args`."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_maxrss / 1024, proc.returncode


def median_of(name: str, args: list[str], runs: int, *, cwd: Path, ok: tuple[int, ...] = (0,)) -> Figure:
    times, peaks = [], []
    for _ in range(runs):
        seconds, peak, code = measure(args, cwd=cwd)
        if code not in ok:
            raise SystemExit(f"bench: {shlex.join(args)} exited {code}")
        times.append(seconds)
        peaks.append(peak)
    command = shlex.join(["metrics-sync", *args[len(CLI):]])
    return Figure(name, command, statistics.median(times), statistics.median(peaks), runs)


def machine() -> str:
    cpus = os.cpu_count()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {cpus} CPUs ({model}), Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--out", type=Path, default=HERE / "out")
    args = parser.parse_args()

    figures: list[Figure] = []
    figures.append(median_of("--version", [*CLI, "--version"], args.runs, cwd=HERE))
    small = args.out / "small"
    generate(small, 8, 1, "bench")
    figures.append(median_of("validate, 1 small file", [*CLI, "validate", "metrics"], args.runs, cwd=small))
    for size in args.sizes:
        repo = args.out / f"repo-{size}"
        generate(repo, size, 100, "bench")
        figures.append(median_of(f"validate, {size:,} metrics in 100 files", [*CLI, "validate", "metrics"],
                                 args.runs, cwd=repo))

    print(f"machine: {machine()}")
    print(f"{'benchmark':<42} {'median s':>9} {'peak MB':>8}  runs  command (run in the generated repo)")
    for f in figures:
        print(f"{f.name:<42} {f.seconds:>9.3f} {f.peak_mb:>8.1f}  {f.runs:>4}  {f.command}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
