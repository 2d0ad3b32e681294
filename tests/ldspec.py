"""LaunchDarkly's OpenAPI extract (tests/data/ld-openapi-metrics.json) as request/response validators."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema

SPEC_FILE = Path(__file__).resolve().parent / "data" / "ld-openapi-metrics.json"
COLLECTION = "/api/v2/metrics/{projectKey}"
ITEM = "/api/v2/metrics/{projectKey}/{metricKey}"
GROUPS = "/api/v2/projects/{projectKey}/metric-groups"
GROUP = "/api/v2/projects/{projectKey}/metric-groups/{metricGroupKey}"
# Statuses the emulator (like LaunchDarkly) can answer but the extract does not declare for an operation.
_UNDECLARED_ERRORS = {400: "InvalidRequestErrorRep", 401: "UnauthorizedErrorRep", 403: "ForbiddenErrorRep",
                      404: "NotFoundErrorRep", 405: "MethodNotAllowedErrorRep", 409: "StatusConflictErrorRep",
                      429: "RateLimitedErrorRep"}


@functools.cache
def spec() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC_FILE.read_text(encoding="utf-8"))
    return data


def _validator(ref: str) -> jsonschema.Draft7Validator:
    root = {"$ref": ref, "components": spec()["components"]}
    return jsonschema.Draft7Validator(root)


def template_of(path: str) -> str:
    parts = path.split("?")[0].rstrip("/").split("/")
    if len(parts) > 5 and parts[3] == "projects" and parts[5] == "metric-groups":
        return GROUPS if len(parts) == 6 else GROUP
    return COLLECTION if len(parts) == 5 else ITEM


def response_schema_ref(method: str, template: str, status: int) -> str | None:
    responses = spec()["paths"][template][method.lower()]["responses"]
    declared = responses.get(str(status))
    if declared is not None:
        schema = declared.get("content", {}).get("application/json", {}).get("schema")
        return None if schema is None else str(schema["$ref"])
    if status in _UNDECLARED_ERRORS:
        return f"#/components/schemas/{_UNDECLARED_ERRORS[status]}"
    return None


def validate_response(method: str, path: str, status: int, body: Any) -> None:
    ref = response_schema_ref(method, template_of(path), status)
    if ref is None:
        assert body in (None, b"", ""), f"{method} {path} {status} should have no body"
        return
    _validator(ref).validate(body)


def validate_request(method: str, path: str, body: Any) -> None:
    operation = spec()["paths"][template_of(path)][method.lower()]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    _validator(ref).validate(body)
