"""Import rules from the architecture: each third-party library is owned by one module."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "metrics_sync"
OWNERS = {"httpx": {"client.py"}, "httpcore": {"client.py"}, "yaml": {"yaml_reader.py"}, "jsonschema": {"schema.py"},
          "jsonschema_rs": {"schema.py"},
          "deepdiff": {"diffing.py"}}


def _typing_only(tree: ast.Module) -> set[int]:
    """ids of the import statements under `if TYPE_CHECKING:`: they name types and load nothing at run time."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    return skipped


def imports(path: Path) -> set[str]:
    found = set()
    tree = ast.parse(path.read_text())
    typing_only = _typing_only(tree)
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_third_party_libraries_have_one_owner() -> None:
    for path in modules():
        for name in imports(path):
            top = name.split(".")[0]
            if top in OWNERS:
                assert path.name in OWNERS[top], f"{path.relative_to(ROOT)} imports {top}"


def test_nothing_imports_the_cli() -> None:
    for path in modules():
        if path.name in ("cli.py", "__main__.py") and path.parent == PACKAGE:
            continue
        assert "metrics_sync.cli" not in imports(path), path


def test_the_emulator_imports_nothing_else_from_the_package() -> None:
    for path in (PACKAGE / "emulator").rglob("*.py"):
        for name in imports(path):
            if name.startswith("metrics_sync"):
                assert name.startswith("metrics_sync.emulator"), f"{path.name} imports {name}"
