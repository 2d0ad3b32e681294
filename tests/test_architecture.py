"""Import rules from the architecture: each third-party library is owned by one module."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "metrics_sync"
OWNERS = {"httpx": {"transport.py", "session.py"}, "httpcore": {"transport.py"}, "yaml": {"yaml_reader.py"},
          "jsonschema": {"schema.py"},
          "jsonschema_rs": {"schema.py"},
          "deepdiff": {"diffing.py"}, "msgspec": {"wire.py"}}


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


# The layers, lowest first: a package imports only from packages of a lower layer (or its own). The emulator
# stands apart (it imports nothing from the rest, below).
LAYERS = {"core": 0, "coderefs": 1, "definitions": 2, "launchdarkly": 2, "planning": 3, "doctor": 3, "apply": 4,
          "export": 4, "health": 4, "output": 5, "cli": 6, "__main__": 7}


def _layer_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def test_every_module_sits_in_a_layer_package() -> None:
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert not loose, f"modules outside the layer packages: {loose}"
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages - {"emulator"} == set(LAYERS) - {"__main__"}


def test_nothing_imports_upward() -> None:
    for path in modules():
        layer = _layer_of(path)
        if layer == "emulator":
            continue
        for name in imports(path):
            parts = name.split(".")
            if parts[0] != "metrics_sync" or len(parts) < 2 or parts[1] in (layer, "__init__", "emulator"):
                continue
            assert LAYERS[parts[1]] < LAYERS[layer], f"{path.relative_to(ROOT)} ({layer}) imports {name}"


def test_the_emulator_imports_nothing_else_from_the_package() -> None:
    for path in (PACKAGE / "emulator").rglob("*.py"):
        for name in imports(path):
            if name.startswith("metrics_sync"):
                assert name.startswith("metrics_sync.emulator"), f"{path.name} imports {name}"


def test_the_readme_map_names_every_package_and_module() -> None:
    """The README's map of the code (## For developers) stays whole: a newcomer finds every module in it."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## For developers")
    block = readme[start:readme.index("```\n", readme.index("```text", start) + 7)]
    missing = [f"{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file() and f"{p.name}/" not in block]
    for path in modules():
        package = path.relative_to(PACKAGE).parts[0]
        if path.name in ("__init__.py", "__main__.py") or package in ("emulator", "commands"):
            continue
        if path.parent.name != "commands" and path.name not in block:
            missing.append(str(path.relative_to(PACKAGE)))
    assert not missing, f"the README's map of the code misses {missing}"
