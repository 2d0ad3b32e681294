"""The YAML loader: positions, duplicate keys, merges, aliases and encodings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from metrics_sync.definitions import yaml_reader
from metrics_sync.definitions.load import load_definitions
from metrics_sync.definitions.yaml_reader import find_definition_files, format_path, parse_yaml_bytes, parse_yaml_text


def test_positions_point_at_values_and_keys() -> None:
    doc, problems = parse_yaml_text("project: shop\nmetrics:\n  - key: a\n    name:   Spaced\n", "f.yaml")
    assert not problems and doc is not None
    assert doc.positions[("metrics", 0, "name")] == (4, 13)
    assert doc.key_positions[("metrics", 0, "name")] == (4, 5)
    assert doc.positions[("metrics", 0)] == (3, 5)
    assert doc.position(("metrics", 0, "missing")) == (3, 5)  # nearest ancestor


@pytest.mark.parametrize("loader", ["CSafeLoader", "SafeLoader"])
def test_c_and_python_loaders_give_the_same_positions(monkeypatch: pytest.MonkeyPatch, loader: str) -> None:
    if not hasattr(yaml, loader):
        pytest.skip("libyaml not available")
    monkeypatch.setattr(yaml_reader, "_Loader", getattr(yaml, loader))
    doc, _ = parse_yaml_text("a:\n  - x: on\n    y: 'q'\n", "f.yaml")
    assert doc is not None
    assert doc.data == {"a": [{"x": True, "y": "q"}]}
    assert doc.positions[("a", 0, "x")] == (2, 8)
    assert doc.resolved_scalars == {("a", 0, "x"): "on"}


def test_merge_keys_let_the_mapping_override_without_a_duplicate_error() -> None:
    text = "base: &b {kind: custom, name: Base}\nm:\n  <<: *b\n  name: Own\n"
    doc, problems = parse_yaml_text(text, "f.yaml")
    assert not problems and doc is not None
    assert doc.data["m"] == {"kind": "custom", "name": "Own"}


def test_duplicate_keys_are_reported_not_silently_dropped() -> None:
    doc, problems = parse_yaml_text("a: 1\nb: 2\na: 3\n", "f.yaml")
    assert doc is not None and doc.data == {"a": 1, "b": 2}
    assert [(p.line, p.column, p.message) for p in problems] == [
        (3, 1, "duplicate key `a` (first defined on line 1)")]


def test_recursive_alias_is_a_problem_not_a_crash() -> None:
    _, problems = parse_yaml_text("a: &x [1, *x]\n", "f.yaml")
    assert [p.message for p in problems] == ["recursive YAML alias (a node that contains itself)"]


def test_moderate_alias_reuse_is_fine() -> None:
    text = "d: &d {tags: [a, b]}\n" + "".join(f"m{i}: *d\n" for i in range(500))
    doc, problems = parse_yaml_text(text, "f.yaml")
    assert not problems and doc is not None and len(doc.data) == 501


def test_utf16_is_rejected_with_a_hint() -> None:
    _, problems = parse_yaml_bytes("metrics: []\n".encode("utf-16"), "f.yaml")
    assert problems[0].message == "file is UTF-16 encoded, not UTF-8"


def test_size_limit() -> None:
    _, problems = parse_yaml_bytes(b"metrics: []\n" + b"#" * 100, "f.yaml", max_bytes=50)
    assert problems[0].message == "file is 112 bytes, over the 50-byte limit"


def test_format_path() -> None:
    assert format_path(("metrics", 2, "urls", 0, "url")) == "metrics[2].urls[0].url"
    assert format_path(()) == ""


def test_find_files_recurses_sorts_and_skips_hidden(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    for name in ["b/z.yml", "a.yaml", ".hidden/x.yaml", "notes.txt"]:
        (tmp_path / name).write_text("metrics: []\n")
    files, problems = find_definition_files(["."], base=tmp_path)
    assert not problems
    assert [display for _, display in files] == ["a.yaml", "b/z.yml"]


def test_find_files_reports_missing_paths_and_symlink_loops(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "m.yaml").write_text("metrics: []\n")
    (tmp_path / "d" / "loop").symlink_to(tmp_path / "d")
    files, problems = find_definition_files(["d", "nope.yaml"], base=tmp_path)
    assert [display for _, display in files] == ["d/m.yaml"]
    assert sorted(p.message for p in problems) == ["no such file or folder", "symbolic link loop; folder skipped"]


def _many_files(folder: Path) -> None:
    """Six files with valid metrics, mistakes, a deprecation warning and a key duplicated across files."""
    folder.mkdir()
    for n in range(6):
        lines = ["project: shop", "metrics:"]
        for i in range(30):
            lines += [f"  - key: m{n}-{i}", f"    name: Metric {i}", "    kind: custom", f"    eventKey: e{i}"]
            if i % 7 == 0:
                lines.append("    isNumeric: true")  # numeric without unit and successCriteria: two errors
            if i % 11 == 0:
                lines.append("    randomizationUnits: [user]")  # a warning
        lines += ["  - key: shared", "    name: Shared", "    kind: custom", "    eventKey: s"]
        (folder / f"f{n}.yaml").write_text("\n".join(lines) + "\n")


def test_parallel_and_serial_checking_give_identical_results(tmp_path: Path) -> None:
    _many_files(tmp_path / "metrics")
    serial = load_definitions(["metrics"], base=tmp_path, parallel=False)
    parallel = load_definitions(["metrics"], base=tmp_path, parallel=True)
    assert parallel == serial
    definitions, problems = serial
    assert definitions.metric_count == 181
    assert sum(p.severity == "error" for p in problems) == 6 * 5 * 2 + 5  # 5 numeric per file, 5 duplicates
    assert sum(p.severity == "warning" for p in problems) == 6 * 3
