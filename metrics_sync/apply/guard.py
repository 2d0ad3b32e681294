"""What apply may send, whatever plan it is given: a last check of each change, after saved_plan.py has proven
a saved plan current, so that a tampered or buggy change is refused rather than written. Pure."""

from __future__ import annotations

from metrics_sync.core.model import Change
from metrics_sync.core.resources import RESOURCES

ARCHIVE_PATCH = [{"op": "test", "path": "/archived", "value": False},
                 {"op": "replace", "path": "/archived", "value": True}]


def unsafe(change: Change, ownership_tag: str) -> str | None:
    """Why a change must not be sent, whatever plan or file it came from (None when it may be):
      * a retirement only as its resource retires (archive or delete), of an item with the ownership tag; an
        archive as exactly `test` + `replace` of /archived, a delete with no patch or body;
      * operations only on the fields metrics-sync manages, and only add, replace, remove and test;
      * every `replace` and `remove` guarded by a `test` of the same field, sent before it;
      * a create body only of managed fields, for the change's own key."""
    resource = RESOURCES[change.resource]
    if change.action in ("archive", "delete"):
        if change.action != resource.retire:
            return f"a {resource.name} cannot be {change.action}d"
        if ownership_tag not in ((change.before or {}).get("tags") or []):
            return f"it {change.action}s a {resource.name} without the ownership tag"
        if change.action == "delete":
            return "its delete carries a patch or a body" if change.patch or change.body else None
        return None if change.patch == ARCHIVE_PATCH else "its archive patch does more than archive"
    managed = set(resource.names)
    if change.action == "create":
        body = change.body or {}
        if body.get("key") != change.key:
            return "its create body is for another key"
        extra = sorted(set(body) - managed - {"key"})
        return f"its create body sets fields metrics-sync does not manage ({', '.join(extra)})" if extra else None
    tested: set[str] = set()
    for op in change.patch:
        path, kind = op.get("path"), op.get("op")
        field = path[1:] if isinstance(path, str) and path.startswith("/") else None
        if field not in managed:
            return f"it changes {path!r}, which metrics-sync does not manage for a {resource.name}"
        if field == "kind" and kind != "test":
            return f"it changes the {resource.name}'s kind, which LaunchDarkly cannot change"
        if kind not in ("test", "add", "replace", "remove"):
            return f"it holds a {kind!r} operation"
        if kind in ("replace", "remove") and field not in tested:
            return f"its {kind} of {path} is not guarded by a test of the value planned against"
        if kind == "test":
            tested.add(field)
    return None if change.patch else "it has no operations"
