"""Every route's answer is declared (issue 12, item 4): no JSON answer in /openapi.json
is an object of any fields or a value of any type, except where the value is the
service's record of something whose shape is its own, named here one by one. A client
(and the schemathesis run, which checks every answer against these schemas) can rely
on every field it reads."""

from __future__ import annotations

from typing import Any

from weibao.gateway.app import create_app

# Where a free-form JSON value is the truth, not a gap: an event's data (its shape is
# its type's), the values a refusal's reason names, an audited event's meta.
FREE = {
    "StoredEvent.data",
    "HistoryEvent.data",
    "HistoryEvent.meta",
    "Problem.values",
    "ErrorDetail.values",
}


def _spec() -> dict[str, Any]:
    return create_app("nats://127.0.0.1:1").openapi()


def _loose(spec: dict[str, Any], schema: dict[str, Any], where: str, seen: frozenset[str]) -> list[str]:
    components = spec.get("components", {}).get("schemas", {})
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return [] if name in seen else _loose(spec, components[name], name, seen | {name})
    if where in FREE:
        return []
    # Only words (a title, a description, a default): any value at all.
    if not set(schema) - {"title", "description", "default", "examples"}:
        return [where]
    if schema.get("additionalProperties") is True or (
            schema.get("type") == "object" and not schema.get("properties")
            and schema.get("additionalProperties") in (None, {})):
        return [where]
    found: list[str] = []
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and extra:
        found += _loose(spec, extra, where, seen)
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            found += _loose(spec, option, where, seen)
    if schema.get("type") == "array":
        found += _loose(spec, schema.get("items", {}), where, seen)
    for name, field in schema.get("properties", {}).items():
        found += _loose(spec, field, f"{where.split('.', maxsplit=1)[0]}.{name}", seen)
    return found


def test_every_json_answer_of_every_route_is_typed() -> None:
    spec = _spec()
    loose: dict[str, list[str]] = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if schema is None:
                    continue
                found = _loose(spec, schema, f"{method.upper()} {path} {status}", frozenset())
                if found:
                    loose[f"{method.upper()} {path} {status}"] = found
    assert loose == {}


def test_every_route_documents_its_success_and_its_refusals() -> None:
    spec = _spec()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation.get("responses", {}))
            assert any(status.startswith("2") for status in statuses), (method, path)
            if path.startswith("/api/"):
                assert {"401", "422"} <= statuses or path == "/api/v1/session", (method, path, statuses)
