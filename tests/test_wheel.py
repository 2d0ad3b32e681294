"""The schema ships inside the wheel and the installed tool loads it from there."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(ROOT)],
        check=True, capture_output=True,
    )
    (built,) = out.glob("metrics_sync-*.whl")
    return built


@pytest.mark.slow
def test_wheel_contains_the_schema(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "metrics_sync/schemas/metrics.schema.json" in names
    assert {"metrics_sync/coderefs/scanner.py", "metrics_sync/cli/commands/refs.py",
            "metrics_sync/emulator/app.py"} <= set(names)
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    metadata = next(zipfile.ZipFile(wheel).read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    assert "License-Expression: Apache-2.0" in metadata
    assert "Project-URL: Issues, https://github.com/metrics-sync/metrics-sync/issues" in metadata
    packaged = zipfile.ZipFile(wheel).read("metrics_sync/schemas/metrics.schema.json")
    assert packaged == (ROOT / "schemas" / "metrics.schema.json").read_bytes()


@pytest.mark.slow
def test_installed_package_loads_its_own_schema_and_validates(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import metrics_sync, metrics_sync.definitions.schema as s;"
        "print(metrics_sync.__file__); print(s.schema_path()); print(len(s.load_schema()['$defs']));"
        "from metrics_sync.cli.main import main; sys.exit(main(['validate', sys.argv[2]]))"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(site), str(ROOT / "examples" / "metrics")],
                          capture_output=True, text=True, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    module_file, schema_file, _defs, verdict = proc.stdout.splitlines()
    assert module_file.startswith(str(site))
    assert schema_file == str(site / "metrics_sync" / "schemas" / "metrics.schema.json")
    assert verdict == "OK: 8 metrics and 2 metric groups in 2 files valid."
