"""A LaunchDarkly resource, described once: its API (routes, headers, what uses it) and its table of fields.

Each `Field` says which kinds use it, LaunchDarkly's default, how it compares, whether LaunchDarkly assigns
it when omitted, whether it goes into the POST body, whether export writes it, and what type LaunchDarkly
sends it as (`Wire`). Each `ServerField` is a representation field LaunchDarkly owns (identity, version,
counts, expansions): read, never written. Everything that needs to know what a field *is* reads these tables:
  * `Resource.canonical()` — the one form YAML and API representations are compared in (defaults applied to
    both sides, fields a kind does not use dropped, sets sorted), so "apply, then plan" shows no changes;
  * `Resource.post_body()` — the exact create body;
  * `Resource.document()` — what export writes (only what differs from the defaults);
  * the planner — which fields to compare, which are sets, which change what a metric measures;
  * the wire checks (launchdarkly/wire.py) — what each field LaunchDarkly sends must be;
  * export — which fields LaunchDarkly owns and are never written to a definitions file.
The resources themselves are in resources.py. `tests/core/test_fields.py` holds the tables against
`schemas/metrics.schema.json`, so the two cannot drift. Pure: no I/O.
"""

from __future__ import annotations

import functools
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from metrics_sync.core.model import ResourceKind

Compare = Literal["scalar", "set", "list", "object"]
Export = Literal["always", "non-default", "never"]
Fields = Mapping[str, Any]
# A condition on the canonical form built so far (the fields before this one), e.g. "the metric is numeric".
Condition = Callable[[Fields], bool]


# LaunchDarkly's key pattern for metrics, groups and projects (MetricPost.key; the schema's `key`), matched whole:
# a key can never be `.` or `..`, which would change the meaning of a URL path.
KEY = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{0,255}")


@dataclass(frozen=True)
class Wire:
    """What a field must be in LaunchDarkly's answers, and what to say when it is not (`null` is always allowed).
    `check` answers True, False (then `says` tells why) or, for a value with parts, the whole reason.
    `shaped`: the check covers the value's whole shape, so its nesting depth is known and is not walked again."""

    check: Callable[[Any], bool | str]
    says: str
    shaped: bool = False
    # A value of exactly this type passes without `check` (text is `str`, a flag `bool`): most values of every
    # listed item are checked by one type test (launchdarkly/wire.py).
    plain: type | None = None


def _is_number(value: Any) -> bool:
    """A finite JSON number a double can hold (LaunchDarkly's numbers are doubles). An integer is compared
    with the largest double rather than converted: math.isfinite(10**400) raises OverflowError."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -sys.float_info.max <= value <= sys.float_info.max
    return isinstance(value, float) and math.isfinite(value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


TEXT = Wire(lambda v: isinstance(v, str), "is not text", plain=str)
FLAG = Wire(lambda v: isinstance(v, bool), "is not true or false", plain=bool)
NUMBER = Wire(_is_number, "is not a number we can use")
COUNT = Wire(_is_count, "is not a whole number")
INTEGER = Wire(lambda v: isinstance(v, int) and not isinstance(v, bool), "is not a whole number", plain=int)
TEXTS = Wire(lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v), "is not a list of text", True)
OBJECTS = Wire(_is_objects, "is not a list of objects")
MEMBER = Wire(lambda v: isinstance(v, dict) and isinstance(v.get("_id", ""), str), "is not a member")


class _NoDefault:
    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()


def _first_given(names: tuple[str, ...]) -> Callable[[Fields], Any]:
    """A field's reader that takes the first of its names given a value (a plain loop: it runs for every metric
    on both sides of a plan)."""
    def read(raw: Fields) -> Any:
        for name in names:
            value = raw.get(name)
            if value:
                return value
        return None

    return read


@dataclass(frozen=True)
class Field:
    name: str
    compare: Compare = "scalar"
    kinds: frozenset[str] | None = None  # the kinds that use this field; None: every kind
    when: Condition | None = None  # a further condition, on the fields before this one in the table
    # LaunchDarkly's value when the field is omitted; a callable computes it from the fields before it.
    default: Any = NO_DEFAULT
    assigned_by_server: bool = False  # LaunchDarkly picks a value when omitted: compared only when the YAML sets it
    post: bool = True  # sent in the create body
    set_after_create: bool = False  # LaunchDarkly does not take it in a POST: apply sets it with a PATCH after
    export: Export = "non-default"
    required: Condition | None = None  # the schema requires it (export writes it even when it equals the default)
    explicit: Condition | None = None  # export writes it even at its default, so the file says so
    semantic: bool = False  # changing it changes what the metric measures (binary <-> count <-> numeric)
    # Changing it changes the results of experiments that use the resource (a warning names the running ones).
    changes_results: bool = False
    # How a value read from YAML or the API becomes canonical; `read` finds it in the raw fields (aliases).
    read: Callable[[Fields], Any] | None = None
    normalize: Callable[[Any, Fields], Any] | None = None
    to_document: Callable[[Any, Fields], Any] | None = None  # how export writes the canonical value
    to_api: Callable[[Any, Fields], Any] | None = None  # how a canonical value is sent (POST body, PATCH value)
    wire: Wire | None = None  # what LaunchDarkly sends it as (None: not checked)
    aliases: tuple[str, ...] = ()  # other (deprecated) names YAML and LaunchDarkly may use for it
    located: bool = False  # problems about it point at its own line in the YAML (a position per field costs)
    # A definitions file's `defaults` may set it: "inherit" (the metric's own value wins) or "union" (added to
    # the metric's own list).
    in_defaults: Literal["inherit", "union"] | None = None
    # LaunchDarkly takes it in a POST but never returns it (e.g. `valueColumn`): sent when the item is created,
    # never compared (it would show as a change forever) and never exported; plan notes it on existing items.
    read_back: bool = True
    # How a changed value is shown, as detail lines (e.g. an event filter's conditions gained and lost); None:
    # the generic item-level lines.
    explain: Callable[[Any, Any], tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        if self.aliases and self.read is None:
            object.__setattr__(self, "read", _first_given((self.name, *self.aliases)))

    def applies(self, so_far: Fields) -> bool:
        if self.kinds is not None and so_far.get("kind") not in self.kinds:
            return False
        return self.when is None or self.when(so_far)

    def default_for(self, so_far: Fields) -> Any:
        return self.default(so_far) if callable(self.default) else self.default


def _compiled(fields: Iterable[Field]) -> Callable[[Fields], dict[str, Any]]:
    """`Resource.canonical` for one kind: a function written out from the kind's fields, as `dataclasses` writes
    an `__init__`. It takes the steps of `Resource._canonical_any` for each field in turn, without the loop's
    per-field tests (a third of the loop's cost; this runs for every metric of a plan, both sides). Only field
    names from the table go into the source (as literals); every function and default is bound by name."""
    bound: dict[str, Any] = {}
    lines = ["def canonical(raw):", "    out = {}", "    get = raw.get"]
    for i, f in enumerate(fields):
        indent = "    "
        if f.when is not None:
            bound[f"when_{i}"] = f.when
            lines.append(f"{indent}if when_{i}(out):")
            indent += "    "
        if f.read is not None:
            bound[f"read_{i}"] = f.read
            lines.append(f"{indent}value = read_{i}(raw)")
        else:
            lines.append(f"{indent}value = get({f.name!r})")
        lines.append(f"{indent}if value is None or not value and (value == '' or value == []):")
        if f.assigned_by_server:  # left open: LaunchDarkly's choice is not compared
            lines += [f"{indent}    pass", f"{indent}else:"]
            indent += "    "
        else:
            bound[f"default_{i}"] = None if f.default is NO_DEFAULT else f.default
            lines.append(f"{indent}    value = default_{i}(out)" if callable(f.default) else
                         f"{indent}    value = default_{i}")
        if f.normalize is not None:
            bound[f"normalize_{i}"] = f.normalize
            lines.append(f"{indent}value = normalize_{i}(value, out)")
        elif f.compare == "set":
            lines.append(f"{indent}value = sorted({{str(v) for v in value or []}})")
        else:  # 1.0 and 1 are the same JSON number
            lines += [f"{indent}if type(value) is float and value.is_integer():", f"{indent}    value = int(value)"]
        lines.append(f"{indent}out[{f.name!r}] = value")
    lines.append("    return out")
    exec("\n".join(lines), bound)  # (the source holds only the table's field names)
    function: Callable[[Fields], dict[str, Any]] = bound["canonical"]
    return function


@dataclass(frozen=True)
class ServerField:
    """A representation field LaunchDarkly owns: never sent, compared or exported."""

    name: str
    wire: Wire | None = None  # checked when present (None: not read, so not checked)
    kept: bool = False  # plan keeps it of each listed item (identity, version, counts)


@dataclass(frozen=True)
class Resource:
    """A kind of LaunchDarkly resource metrics-sync manages: its API and its fields in display order."""

    kind: ResourceKind  # how plans, saved plans and results name it
    name: str  # "metric", "metric group": what messages call it
    collection: str  # the list and create route, e.g. "/api/v2/metrics/{projectKey}"
    item: str  # the route of one item: collection + "/{key}"
    fields: tuple[Field, ...]
    server: tuple[ServerField, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)  # sent with every call (the beta pin for groups)
    list_params: Mapping[str, str] = field(default_factory=dict)  # asked for with every list call
    # A single read with these expansions says what uses an item (experiments, guarded rollouts, groups).
    usage_expansions: tuple[str, ...] = ()
    # What becomes of a managed item that left the definitions: metrics are archived (they keep their
    # results), metric groups deleted (LaunchDarkly has no archive for them).
    retire: Literal["archive", "delete"] = "archive"
    patch_comment: bool = False  # PATCH takes LaunchDarkly's `{"comment", "patch"}` wrapper (the audit log)
    unguarded_retry: bool = False  # a refused guarded patch is sent again without `test` when unchanged (A24)
    tag_filter: bool = False  # the list takes `filter=tags contains [...]`
    # The type people know from LaunchDarkly's UI, from a canonical form (e.g. "custom conversion count").
    describe: Callable[[Fields], str] = lambda form: str(form.get("kind"))

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields] + [f.name for f in self.server]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: a field is listed twice")
        kind = next((f for f in self.fields if f.name == "kind"), None)
        if kind is not None and (kind.read or kind.normalize or kind.default is not NO_DEFAULT or kind.kinds):
            raise ValueError(f"{self.name}: `kind` must be a plain field (canonical forms pick fields by it)")

    @property
    def plural(self) -> str:
        return f"{self.name}s"

    @functools.cached_property  # read for every item of every page
    def wire_rules(self) -> dict[str, Wire]:
        """What each field LaunchDarkly sends must be: the table's fields (and their aliases) and the server's."""
        rules = {name: f.wire for f in self.fields if f.wire is not None for name in (f.name, *f.aliases)}
        return {**rules, **{f.name: f.wire for f in self.server if f.wire is not None}}

    @functools.cached_property
    def left_open(self) -> frozenset[str]:
        """Fields `compared` passes over when the definitions leave them out: LaunchDarkly's choice (assigned by
        the server) and what it never reads back."""
        return frozenset(f.name for f in self.fields if f.assigned_by_server or not f.read_back)

    @functools.cached_property
    def required_with_default(self) -> tuple[Field, ...]:
        """Fields the schema requires that have a default: LaunchDarkly may leave them out (diffing.py)."""
        return tuple(f for f in self.fields if f.required is not None and f.default is not NO_DEFAULT)

    @functools.cached_property
    def aliases(self) -> frozenset[str]:
        return frozenset(alias for f in self.fields for alias in f.aliases)

    @functools.cached_property
    def shaped(self) -> frozenset[str]:
        """Fields whose whole shape the wire rules check: their depth is known."""
        return frozenset(name for name, wire in self.wire_rules.items() if wire.shaped)

    @functools.cached_property
    def server_owned(self) -> frozenset[str]:
        return frozenset(f.name for f in self.server) | {"key"}

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @functools.cached_property  # read for every item of every page
    def remote_fields(self) -> frozenset[str]:
        """What plan keeps of each representation: the table's fields, their aliases and the server fields it
        reads."""
        return frozenset(self.names) | self.aliases | {f.name for f in self.server if f.kept} | {"key"}

    def kept(self, rep: Mapping[str, Any]) -> dict[str, Any]:
        """What plan keeps of a representation: the fields it reads, with a maintainer reduced to its ID (a page
        of a big project is held whole in memory until planned)."""
        out = {k: v for k, v in rep.items() if k in self.remote_fields}
        member = out.get("_maintainer")
        if isinstance(member, dict):
            out["_maintainer"] = {"_id": member.get("_id")}
        maintainer = out.get("maintainer")
        if isinstance(maintainer, dict):
            inner = maintainer.get("_member")
            out["maintainer"] = {"key": maintainer.get("key"),
                                 **({"_member": {"_id": inner.get("_id")}} if isinstance(inner, dict) else {})}
        return out

    def with_compare(self, compare: Compare) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.compare == compare)

    @property
    def write_only(self) -> tuple[str, ...]:
        """Fields LaunchDarkly takes but never returns (`Field.read_back`)."""
        return tuple(f.name for f in self.fields if not f.read_back)

    @property
    def set_after_create(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.set_after_create)

    @property
    def semantic_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.semantic)

    @property
    def results_fields(self) -> tuple[str, ...]:
        """Fields whose change changes the results of experiments that use the resource."""
        return tuple(f.name for f in self.fields if f.changes_results)

    def api_value(self, name: str, value: Any, canonical_form: Fields) -> Any:
        """A canonical value as LaunchDarkly takes it in a request."""
        f = self.field(name)
        return f.to_api(value, canonical_form) if f.to_api is not None and value is not None else value

    @functools.cached_property
    def _canonical_of_kind(self) -> dict[str, Callable[[Fields], dict[str, Any]]]:
        """For each kind the table names, its canonical form as one function (`_compiled`) of the fields it uses
        (a metric uses about half of the table). `kind` is a plain field, so the raw kind is the canonical one; a
        field for some kinds placed before `kind` never applies."""
        kinds = {k for f in self.fields if f.kinds is not None for k in f.kinds}
        functions = {}
        for k in kinds:
            fields, seen_kind = [], False
            for f in self.fields:
                if f.kinds is None or (seen_kind and k in f.kinds):
                    fields.append(f)
                seen_kind = seen_kind or f.name == "kind"
            functions[k] = _compiled(fields)
        return functions

    def canonical(self, raw: Fields) -> dict[str, Any]:
        """The canonical form of `raw` (YAML fields or an API representation). Runs for every metric of a plan,
        both sides (for each listed metric, once): for a kind the table names, its own function (the same as
        `_canonical_any` gives, which tests hold it to); otherwise the whole table."""
        kind = raw.get("kind")
        function = self._canonical_of_kind.get(kind) if isinstance(kind, str) else None
        return self._canonical_any(raw) if function is None else function(raw)

    def _canonical_any(self, raw: Fields) -> dict[str, Any]:
        """`canonical` of a representation of no known kind: every field of the table, each asked whether it
        applies."""
        out: dict[str, Any] = {}
        for f in self.fields:
            if f.kinds is not None and out.get("kind") not in f.kinds:
                continue
            if f.when is not None and not f.when(out):
                continue
            value = f.read(raw) if f.read is not None else raw.get(f.name)
            if value is None or value == "" or value == []:
                if f.assigned_by_server:
                    continue  # left open: LaunchDarkly's choice is not compared
                value = f.default_for(out) if f.default is not NO_DEFAULT else None
            if f.normalize is not None:
                value = f.normalize(value, out)
            elif f.compare == "set":
                value = sorted({str(v) for v in value or []})
            elif type(value) is float and value.is_integer():  # 1.0 and 1 are the same JSON number
                value = int(value)
            out[f.name] = value
        return out

    def compared(self, desired: Fields, actual: Fields) -> list[str]:
        """Fields to compare, in display order: what either side has, except server-assigned fields the
        YAML leaves open."""
        present = set(desired) | set(actual)
        return [f.name for f in self.fields
                if f.name in present and f.read_back and (not f.assigned_by_server or f.name in desired)]

    def post_body(self, key: str, desired: Fields) -> dict[str, Any]:
        """The create body for a desired canonical form. Every default is sent explicitly, so what
        LaunchDarkly stores does not depend on its defaults; empty text is left out."""
        body: dict[str, Any] = {"key": key}
        for f in self.fields:
            if f.post and desired.get(f.name) not in (None, ""):  # an optional field left out is not sent
                body[f.name] = self.api_value(f.name, desired[f.name], desired)
        return body

    def document(self, canonical_form: Fields, *, leave_out: Iterable[str] = ()) -> dict[str, Any]:
        """What a definitions file says of a resource: only what differs from the defaults, plus what the
        schema requires, in display order. `leave_out` drops tags (e.g. the ownership tag)."""
        skip_tags = set(leave_out)
        out: dict[str, Any] = {}
        for f in self.fields:
            if f.export == "never" or f.name not in canonical_form:
                continue
            value = canonical_form[f.name]
            if f.name == "tags":
                value = [t for t in value if t not in skip_tags]
            default = f.default_for(canonical_form) if f.default is not NO_DEFAULT else NO_DEFAULT
            needed = f.export == "always" or any(rule is not None and rule(canonical_form)
                                                 for rule in (f.required, f.explicit))
            if not needed and (value == default or value in ([], "", None)):
                continue
            out[f.name] = f.to_document(value, canonical_form) if f.to_document else value
        return out


def _number(value: Any) -> Any:
    """1.0 and 1 are the same JSON number: keep whole floats as ints so they compare equal."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


