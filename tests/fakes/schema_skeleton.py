"""Minimal valid instances of OpenAPI schemas, for the big objects the fakes must return."""

from __future__ import annotations

from typing import Any

from tests.fakes.openapi_fake import JSON, now_iso


def skeleton(spec: JSON, schema: JSON, depth: int = 0) -> Any:
    """A minimal value valid for `schema`: required properties only, nulls where nullable.
    Used for the big objects (a Hetzner server) whose details safesnap never reads."""
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"][2:].split("/"):
            node = node[part.replace("~1", "/")]
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    if schema.get("nullable") and depth > 0:
        return None
    if "allOf" in schema:
        merged: JSON = {}
        for part in schema["allOf"]:
            value = skeleton(spec, part, depth + 1)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: skeleton(spec, props.get(k, {}), depth + 1) for k in schema.get("required", [])}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return False
    return now_iso() if schema.get("format") == "date-time" else "x"
