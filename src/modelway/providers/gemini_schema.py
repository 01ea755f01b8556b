"""JSON Schema to the OpenAPI 3.0 subset Gemini's function declarations accept.

Gemini parses ``parameters`` as its own ``Schema`` message, so any keyword that message
has no field for (``$schema``, ``additionalProperties``, ``$defs``, ``const``, ``oneOf``,
``allOf``, ``not``, ``exclusiveMinimum``, ``uniqueItems``, ...) fails the whole request
with "Unknown name ... Cannot find field", whatever its value.
"""

from __future__ import annotations

from typing import Any

import orjson

#: The fields of Gemini's ``Schema`` message; every other keyword is dropped.
SCHEMA_FIELDS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)
#: The only formats Gemini accepts; others ("uri", "email", ...) are rejected.
_FORMATS = frozenset({"enum", "date-time", "float", "double", "int32", "int64"})
#: Local ``$ref`` inlining stops at this depth, so recursive schemas stay finite.
MAX_REF_DEPTH = 8


def gemini_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with unsupported keywords dropped and local ``$ref``s inlined.

    A ``type`` list such as ``["string", "null"]`` becomes one type plus ``nullable``,
    ``const`` becomes a one-value ``enum`` and ``oneOf`` becomes ``anyOf``. Gemini
    refuses an ``enum`` on anything but a string ("only allowed for STRING type"), an
    object with empty ``properties``, and ``properties`` or ``required`` anywhere but on
    an object: the values of an enum of numbers or booleans are named in the node's
    description instead, and the rest is left out.
    """
    definitions = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    return _convert(schema, definitions, 0)


def _convert(schema: Any, definitions: dict[str, Any], depth: int) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = definitions.get(ref.rsplit("/", 1)[-1])
        if target is None or depth >= MAX_REF_DEPTH:
            return {"type": "object"} if target is not None else {}
        return _convert({**target, **schema, "$ref": None}, definitions, depth + 1)
    out: dict[str, Any] = {}
    choices: list[Any] | None = None
    for key, value in schema.items():
        if key == "const":
            choices = [value]
        elif key == "enum" and isinstance(value, list):
            choices = [v for v in value if v is not None]
        elif key == "oneOf" and "anyOf" not in schema:
            out["anyOf"] = [_convert(s, definitions, depth) for s in value]
        elif key not in SCHEMA_FIELDS:
            continue
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            out["type"] = types[0] if types else "null"
            if len(types) < len(value):
                out["nullable"] = True
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _convert(s, definitions, depth) for name, s in value.items()}
        elif key == "items":
            out[key] = _convert(value, definitions, depth)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [_convert(s, definitions, depth) for s in value]
        elif key == "format" and value not in _FORMATS:
            continue
        else:
            out[key] = value
    if choices is not None:
        _choose(out, schema.get("type"), choices)
    return _fit(out)


def _choose(out: dict[str, Any], kind: Any, choices: list[Any]) -> None:
    """An ``enum`` (or ``const``) in Gemini's terms: its values as strings where the node
    is a string, else named in the description (an integer enum as strings would come back
    as strings, which the caller's schema refuses)."""
    if kind == "string" or all(isinstance(v, str) for v in choices):
        out["enum"] = [v if isinstance(v, str) else str(v) for v in choices]
        return
    listed = ", ".join(orjson.dumps(v).decode() for v in choices)
    about = out.get("description")
    out["description"] = f"{about} (one of: {listed})" if about else f"One of: {listed}."


def _fit(out: dict[str, Any]) -> dict[str, Any]:
    """``out`` as Gemini's validator takes it (see ``gemini_schema``)."""
    if "enum" in out:
        out["type"] = "string"
        out.pop("format", None)
    if out.get("type", "object") != "object" or not out.get("properties"):
        out.pop("properties", None)
        out.pop("required", None)
    elif isinstance(out.get("required"), list):
        # A required name the properties lack is refused too.
        out["required"] = [name for name in out["required"] if name in out["properties"]]
    return out
