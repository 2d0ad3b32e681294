"""Check a loaded definitions document against the published JSON Schema; the only `jsonschema` (and
`jsonschema_rs`) import.

Every schema error becomes a one-line `Problem` at the file:line:col of the offending value. Messages
and hints live next to the rules in the schema itself (`x-message`, `x-hint`, `x-hints`), so the
schema users see in their editor and the messages the CLI prints cannot drift apart.

Two validators, one schema: `jsonschema-rs` (compiled, about 100 times faster) decides whether a document is
valid; only when it is not does `jsonschema` run, to explain every problem in the schema's own words. So the
output is `jsonschema`'s, and valid definitions (the common case) cost almost nothing to check. Both read
`pattern` as JSON Schema means it (ECMA-262: `$` is the end of the text), and tests/definitions/test_schema.py
holds them to the same verdict on every fixture. Without `jsonschema-rs` (a platform without its wheels), `jsonschema`
alone decides.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metrics_sync.core.model import Problem
from metrics_sync.definitions.yaml_reader import Path_, YamlDocument, describe_type, format_path

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

SCHEMA_FILENAME = "metrics.schema.json"
PLAN_SCHEMA_FILENAME = "plan.schema.json"

_TYPE_WORDS = {
    "string": "text",
    "boolean": "true or false",
    "integer": "a whole number",
    "number": "a number",
    "array": "a list",
    "object": "a mapping",
}


def schema_path(filename: str = SCHEMA_FILENAME) -> Path:
    """Where the installed tool reads a schema from.

    In a wheel the schemas are package data (`metrics_sync/schemas/`, see pyproject.toml). In a source
    checkout (editable install, tests) they are the published top-level `schemas/` folder, one level up.
    """
    packaged = resources.files("metrics_sync").joinpath("schemas", filename)
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "schemas" / filename


@functools.cache
def load_schema(filename: str = SCHEMA_FILENAME) -> dict[str, Any]:
    with schema_path(filename).open(encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


def follows_rule(value: str, *path: str) -> bool:
    """Whether `value` passes the schema's pattern and length rules at `path`, e.g.
    `follows_rule("shop", "properties", "project")`: other checks (the config file's) use the very rule
    the definitions are held to. The whole string must match."""
    node: Any = load_schema()
    for part in path:
        node = node[part]
    if "pattern" in node and not re.fullmatch(node["pattern"], value):
        return False
    return bool(node.get("minLength", 0) <= len(value) <= node.get("maxLength", len(value)))


@functools.cache
def _validator(filename: str = SCHEMA_FILENAME) -> Draft202012Validator:
    """Built once per process: compiling the validator dominates the cost of small runs. Imported here so
    commands that only need the schema's text (config checks, `schema`) do not pay for jsonschema.

    `pattern` is matched as JSON Schema means it (ECMA-262, where `$` is the end of the text): Python's
    `re.search` lets `$` match before a final line break, so a key ending in a newline would pass."""
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import ValidationError

    def whole_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
        if validator.is_type(instance, "string") and not re.search(_end_of_text(pattern), instance):
            yield ValidationError(f"{instance!r} does not match {pattern!r}")

    strict = validators.extend(Draft202012Validator, {"pattern": whole_pattern})  # type: ignore[no-untyped-call]
    return strict(load_schema(filename))  # type: ignore[no-any-return]


@functools.cache
def _end_of_text(pattern: str) -> re.Pattern[str]:
    # `$` outside a character class means end of text in ECMA-262: Python spells that `\Z`.
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


def plan_problems(data: Any) -> list[str]:
    """Why `data` is not a plan file of the documented format (schemas/plan.schema.json): the first few."""
    found = []
    for error in sorted(_validator(PLAN_SCHEMA_FILENAME).iter_errors(data), key=lambda e: list(e.absolute_path)):
        where = format_path(tuple(error.absolute_path)) or "the top level"
        found.append(f"at {where}: {error.message.splitlines()[0][:200]}")
        if len(found) == 3:
            break
    return found


@functools.cache
def _fast_validator() -> Any:
    """The compiled validator of the definitions schema, or None when `jsonschema_rs` is not installed."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    return jsonschema_rs.validator_for(load_schema())


def is_valid(data: Any) -> bool | None:
    """The compiled validator's verdict on a definitions document (None: no compiled validator)."""
    fast = _fast_validator()
    if fast is None:
        return None
    try:
        return bool(fast.is_valid(data))
    except ValueError:  # a value JSON has no type for (YAML's dates, timestamps, !!binary): jsonschema explains it
        return False


def check_document(doc: YamlDocument) -> list[Problem]:
    """Every schema problem in one document, located and explained."""
    if is_valid(doc.data):
        return []
    problems: list[Problem] = []
    for error in _validator().iter_errors(doc.data):
        problems.extend(_explain(error, doc))
    return problems


def _field_name(path: Path_) -> str:
    if not path:
        return "the file"
    if isinstance(path[-1], int):
        return format_path(path[-2:]) if len(path) > 1 else f"item {path[-1]}"
    return str(path[-1])


def _problem(doc: YamlDocument, path: Path_, message: str, hint: str | None, *, key: bool = False) -> Problem:
    line, col = doc.position(path, key=key)
    return Problem(doc.file, line, col, message, path=format_path(path) or None, hint=hint)


def _close_match(word: object, choices: list[str]) -> str | None:
    if not isinstance(word, str):
        return None
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if found:
        return found[0]
    # "sum" for "Sum", "higher" for "HigherThanBaseline": case-insensitive equality, then prefix.
    for choice in choices:
        if choice.lower() == word.lower():
            return choice
    prefixed = [c for c in choices if word and c.lower().startswith(word.lower())]
    return prefixed[0] if len(prefixed) == 1 else None


def _explain(error: ValidationError, doc: YamlDocument) -> list[Problem]:
    path: Path_ = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    field = _field_name(path)
    hint = schema.get("x-hint")
    custom = schema.get("x-message")
    kind = error.validator
    expected: Any = error.validator_value

    if kind == "required":
        missing = _missing_property(error)
        hints = schema.get("x-hints", {})
        return [_problem(doc, path, f"missing required field `{missing}`", hints.get(missing))]

    if kind == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        instance: Any = error.instance
        extras = [k for k in instance if k not in schema.get("properties", {})]
        return [_unknown_field(doc, path, extra, allowed) for extra in extras]

    if kind == "type":  # before x-message: "must be text" says more than the rule a string would break
        return [_type_problem(doc, path, field, expected, error.instance)]

    if custom:
        return [_problem(doc, path, custom, hint)]

    if kind == "enum":
        choices = [str(c) for c in expected]
        guess = _close_match(error.instance, choices)
        got = describe_type(error.instance)
        return [_problem(doc, path, f"`{field}` must be one of {', '.join(choices)}; got {got}",
                         f"did you mean `{guess}`?" if guess else hint)]

    if kind == "const":
        return [_problem(doc, path, f"`{field}` must be {json.dumps(error.validator_value)}", hint)]

    if kind in ("minimum", "maximum"):
        low, high = schema.get("minimum"), schema.get("maximum")
        bounds = f"between {low} and {high}" if low is not None and high is not None else (
            f"at least {low}" if low is not None else f"at most {high}")
        return [_problem(doc, path, f"`{field}` must be {bounds}; got {error.instance}", hint)]

    if kind == "minLength":
        return [_problem(doc, path, f"`{field}` must not be empty", hint)]

    if kind == "maxLength":
        return [_problem(doc, path, f"`{field}` is longer than {error.validator_value} characters", hint)]

    if kind == "minItems":
        return [_problem(doc, path, f"`{field}` needs at least {error.validator_value} item(s)", hint)]

    if kind == "uniqueItems":
        return [_problem(doc, path, f"`{field}` lists the same value more than once", hint or "remove the repeat")]

    if kind == "pattern":
        return [_problem(doc, path, f"`{field}` does not match the pattern {error.validator_value}", hint)]

    if kind == "not":
        return [_problem(doc, path, f"`{field}` is not allowed here", hint)]

    # Anything else: the first line of jsonschema's own message, never the schema dump.
    return [_problem(doc, path, error.message.splitlines()[0], hint)]


def _missing_property(error: ValidationError) -> str:
    # jsonschema yields one error per missing property; its message is "'<name>' is a required property".
    instance = error.instance if isinstance(error.instance, dict) else {}
    required: Any = error.validator_value
    for name in required:
        if name not in instance and repr(name) in error.message:
            return str(name)
    return str(error.message.split("'")[1]) if "'" in error.message else str(error.message)


def _unknown_field(doc: YamlDocument, path: Path_, extra: str, allowed: list[str]) -> Problem:
    child = (*path, extra)
    guess = _close_match(extra, allowed)
    if guess:
        hint = f"did you mean `{guess}`?"
    elif len(allowed) <= 8:
        hint = "allowed here: " + ", ".join(allowed)
    else:
        hint = "not a field metrics-sync knows; see schemas/metrics.schema.json"
    if not path:
        message = f"unknown top-level field `{extra}`"
    elif path == ("defaults",):
        message = f"`{extra}` cannot be set in `defaults`"
    else:
        message = f"unknown field `{extra}`"
    return _problem(doc, child, message, hint, key=True)


def _type_problem(doc: YamlDocument, path: Path_, field: str, expected: Any, value: Any) -> Problem:
    names = expected if isinstance(expected, list) else [expected]
    wanted = " or ".join(_TYPE_WORDS.get(str(n), str(n)) for n in names)
    if not path and "object" in names:
        message = f"the file must be a mapping with a `metrics:` list; got {describe_type(value)}"
        return _problem(doc, path, message, None)
    message = f"`{field}` must be {wanted}; got {describe_type(value)}"
    source = doc.resolved_scalars.get(path)
    hint: str | None = None
    if source is not None and "string" in names:
        hint = f'YAML reads unquoted `{source}` as {describe_type(value).split(" (")[0]}; quote it: "{source}"'
    elif isinstance(value, str) and ("number" in names or "integer" in names):
        try:
            number = float(value)
        except ValueError:
            number = None
        if number is not None:
            written = int(number) if number.is_integer() else number
            hint = f"YAML reads `{value}` as text, not a number; write it as {written}"
    elif isinstance(value, str) and "boolean" in names and value.lower() in ("true", "false"):
        hint = f"remove the quotes: {value.lower()}"
    elif source is not None and "boolean" in names:
        hint = f"write true or false (YAML read `{source}` as {describe_type(value)})"
    return _problem(doc, path, message, hint)
