"""The calls a plan of 1,000 metrics makes, with and without holdouts and release policies to read (counted by
the emulator's stats, as `/_emulator/stats` reports them): an in-sync plan makes list calls only, whatever
holds metrics; a change or a prune adds one release-policy list, the environment list, one holdout list per
environment and one read per holdout, once per project however many metrics change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.generate import generate, seed_metrics
from metrics_sync.emulator import EmulatorApp, Store
from tests.conftest import ENV, TOKEN, run_cli

N = 1000
TAG = "managed-by-metrics-sync"
HOLDER_ROUTES = ("/environments", "/holdouts", "/release-policies")
ENVIRONMENTS = ["production", "staging", "test"]


def _holders(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [m["key"] for m in metrics]
    return {"environments": {"bench": ENVIRONMENTS},
            "holdouts": {"bench": [{"key": f"holdout-{i}", "environmentKey": ENVIRONMENTS[i % 3],
                                    "metrics": keys[i * 10:i * 10 + 5]} for i in range(10)]},
            "releasePolicies": {"bench": [{"key": f"policy-{i}", "metrics": keys[500 + i:502 + i]}
                                          for i in range(3)]}}


class Bench:
    def __init__(self, root: Path, with_holders: bool) -> None:
        self.root = root
        metrics = generate(root, N, 10, "bench")
        self.keys = [m["key"] for m in metrics]
        self.store = Store(["bench"])
        self.store.seed({"projects": {"bench": seed_metrics(metrics, 10, TAG)}})
        if with_holders:
            self.store.seed(_holders(metrics))
        self.app = EmulatorApp(self.store, token=TOKEN)

    def calls(self, *args: str) -> tuple[int, int, str]:
        """(every call, the calls to environments, holdouts and release policies, the plan's output)."""
        before = dict(self.app.stats.requests)
        result = run_cli("plan", *args, env=ENV, cwd=self.root, transport=httpx.WSGITransport(app=self.app))
        assert result.code in (0, 2), result.out + result.err
        made = {r: n - before.get(r, 0) for r, n in self.app.stats.requests.items()}
        return sum(made.values()), sum(n for r, n in made.items() if any(h in r for h in HOLDER_ROUTES)), result.out

    def edit(self, key: str) -> None:
        for path in (self.root / "metrics").glob("*.yaml"):
            text = path.read_text()
            if f'key: "{key}"\n' in text:
                start = text.index(f'key: "{key}"\n')
                name = text.index('name: "', start) + len('name: "')
                path.write_text(text[:name] + "Renamed " + text[name:])
                return
        raise AssertionError(key)

    def drop(self, keys: list[str]) -> None:
        for path in (self.root / "metrics").glob("*.yaml"):
            blocks = path.read_text().split("\n  - ")
            kept = [b for b in blocks if not any(b.startswith(f'key: "{k}"\n') for k in keys)]
            path.write_text("\n  - ".join(kept))


@pytest.mark.parametrize("with_holders", [False, True], ids=["none to read", "holdouts and policies"])
def test_the_calls_of_a_plan_of_1000_metrics(tmp_path: Path, with_holders: bool) -> None:
    bench = Bench(tmp_path, with_holders)
    # The metric list (50 a page), the experimentation settings (the files set analysis units) and, with --prune,
    # the metric group list.
    lists, prune_lists = N // 50 + 1, N // 50 + 2
    total, holders, out = bench.calls("--prune")
    assert (total, holders) == (prune_lists, 0), out  # in sync: list calls only
    # One changed metric: its read with expansions, then the project's holdouts and policies once.
    expected_holders = 1 + 1 + 3 + 10 if with_holders else 1 + 1 + 2
    bench.edit(bench.keys[0])
    total, holders, out = bench.calls()
    assert (total, holders) == (lists + 1 + expected_holders, expected_holders), out
    if with_holders:
        assert "used by holdout `holdout-0` (production, running)" in out
    # Ten metrics left the definitions: each read once, the holdouts and policies still once.
    bench.drop(bench.keys[500:510])
    total, holders, out = bench.calls("--prune")
    assert (total, holders) == (prune_lists + 1 + 10 + expected_holders, expected_holders), out
    if with_holders:
        assert out.count("Blocked from archiving") == 4  # the four the policies name (500 to 503)
    print(f"\n{'with' if with_holders else 'without'} holdouts/policies: in sync (--prune) {prune_lists} calls; "
          f"one update {lists + 1 + expected_holders}; ten to prune and one update "
          f"{prune_lists + 11 + expected_holders}")
