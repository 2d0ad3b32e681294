"""`make demo`: the whole metrics-sync loop against the embedded LaunchDarkly emulator.

Copies the example shop's definitions to a throw-away folder, starts the emulator on a free loopback port
with a throw-away state file and the example experiments (emulator-seed.json: a running experiment measures
order-value and the checkout funnel), then runs, exactly as a user would in a shell:
    validate → plan (creates 8 metrics and 2 metric groups) → apply → plan (No changes.)
    → an edit "in the UI" (through the API) → plan (shows the drift) → apply → plan (No changes.)
    → health: is every metric measuring something? (a guarded rollout's metric whose event stopped, a metric
      never seen, one no code sends...; --strict exits 1; the HTML catalogue page)
    → a pull request changes what order-value measures → the PR comment (plan --format markdown) warns
      that a running experiment's results change → with --protect-running, plan refuses it
and stops the emulator. Exits non-zero if any step does not behave as expected.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOKEN = "emulator-token"


def banner(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m" if sys.stdout.isatty() else f"\n==> {text}", flush=True)


def run(*args: str, env: dict[str, str], expect: int, cwd: Path) -> None:
    banner("metrics-sync " + " ".join(args))
    code = subprocess.call([sys.executable, "-m", "metrics_sync", *args], cwd=cwd, env=env)
    if code != expect:
        raise SystemExit(f"demo: `metrics-sync {' '.join(args)}` exited {code}, expected {expect}")


def ui_edit(base_url: str) -> None:
    """What a colleague might do in LaunchDarkly's UI: rename a metric and tag it."""
    banner("someone edits order-value in the LaunchDarkly UI (unit USD → EUR, adds tag `ui-added`)")
    patch = [{"op": "replace", "path": "/unit", "value": "EUR"},
             {"op": "add", "path": "/tags/-", "value": "ui-added"}]
    request = urllib.request.Request(f"{base_url}/api/v2/metrics/shop/order-value", method="PATCH",
                                     data=json.dumps(patch).encode(),
                                     headers={"Authorization": TOKEN, "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        print(f"PATCH /api/v2/metrics/shop/order-value -> {response.status}")


def pull_request(shop: Path) -> None:
    """A change under review: order-value counts a new event from now on."""
    banner("a pull request changes order-value's eventKey (order-placed → order-completed)")
    path = shop / "metrics" / "checkout.yaml"
    before = "    eventKey: order-placed\n    isNumeric: true"
    path.write_text(path.read_text().replace(before, before.replace("order-placed", "order-completed")))


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="metrics-sync-demo-") as tmp:
        shop = Path(tmp) / "shop"
        shutil.copytree(HERE / "metrics", shop / "metrics")
        shutil.copy(HERE / "metrics-sync.yaml", shop)
        shutil.copytree(HERE / "app", shop / "app")  # the shop's application code, for `refs`
        state = Path(tmp) / "emulator-state.json"
        banner("metrics-sync emulator --port 0 --project shop --state <temporary file> --seed emulator-seed.json")
        emulator = subprocess.Popen(
            [sys.executable, "-m", "metrics_sync", "emulator", "--port", "0", "--project", "shop",
             "--state", str(state), "--seed", str(HERE / "emulator-seed.json")],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            assert emulator.stdout is not None
            first = emulator.stdout.readline().strip()
            print(first)
            print(emulator.stdout.readline().strip())
            base_url = first.removeprefix("listening on ")
            env = {**os.environ, "LD_BASE_URL": base_url, "LD_ACCESS_TOKEN": TOKEN, "NO_COLOR": "1"}
            env.pop("LAUNCHDARKLY_ACCESS_TOKEN", None)
            run("validate", env=env, expect=0, cwd=shop)
            run("refs", "--code", "app", env=env, expect=0, cwd=shop)
            run("plan", "--detailed-exitcode", env=env, expect=2, cwd=shop)
            run("apply", "--auto-approve", env=env, expect=0, cwd=shop)
            run("plan", "--detailed-exitcode", env=env, expect=0, cwd=shop)
            ui_edit(base_url)
            run("plan", "--detailed-exitcode", env=env, expect=2, cwd=shop)
            run("apply", "--auto-approve", env=env, expect=0, cwd=shop)
            run("plan", "--detailed-exitcode", env=env, expect=0, cwd=shop)
            # Is every metric measuring something? The seed's events say when LaunchDarkly last saw each one.
            run("health", "--code", "app", env=env, expect=0, cwd=shop)
            run("health", "--code", "app", "--strict", env=env, expect=1, cwd=shop)
            run("health", "--code", "app", "--format", "html", "--out", "catalogue.html", env=env, expect=0, cwd=shop)
            pull_request(shop)
            run("plan", "--format", "markdown", env=env, expect=0, cwd=shop)
            run("plan", "--protect-running", env=env, expect=1, cwd=shop)
        finally:
            emulator.send_signal(signal.SIGTERM)
            emulator.wait(timeout=10)
    banner("demo finished: the emulator is stopped and its state removed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
