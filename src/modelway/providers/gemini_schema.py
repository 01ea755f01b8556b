"""JSON Schema to the OpenAPI 3.0 subset Gemini's function declarations accept.

Gemini parses ``parameters`` as its own ``Schema`` message, so any keyword that message
has no field for (``$schema``, ``additionalProperties``, ``$defs``, ``const``, ``oneOf``,
``allOf``, ``not``, ``exclusiveMinimum``, ``uniqueItems``, ...) fails the whole request
with "Unknown name ... Cannot find field", whatever its value.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelway.errors import BadRequest

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


#: The most schema nodes one conversion writes: ``$ref``s are inlined at every use, so a
#: definition whose properties refer back to it several times grows exponentially with
#: the depth (six references a level, eight levels: 1.7 million nodes, gigabytes).
MAX_NODES = 10_000


def gemini_schema(schema: dict[str, Any], where: str = "schema") -> dict[str, Any]:
    """``schema`` with unsupported keywords dropped and local ``$ref``s inlined.

    A ``type`` list such as ``["string", "null"]`` becomes one type plus ``nullable``,
    ``const`` becomes a one-value ``enum`` and ``oneOf`` becomes ``anyOf``. Gemini
    refuses an ``enum`` on anything but a string ("only allowed for STRING type"), an
    object with empty ``properties``, and ``properties`` or ``required`` anywhere but on
    an object: the values of an enum of numbers or booleans are named in the node's
    description instead, and the rest is left out. A keyword whose value is of the wrong
    kind (``properties`` that is no object, a ``required`` entry that is no name) is left
    out too. ``BadRequest`` naming ``where`` when the inlined schema passes ``MAX_NODES``.
    """
    definitions: dict[str, Any] = {}
    for name in ("definitions", "$defs"):
        found = schema.get(name)
        if isinstance(found, dict):
            definitions.update(found)
    return _Converter(definitions, where).convert(schema, 0)


class _Converter:
    """One schema's conversion, counting the nodes it writes."""

    def __init__(self, definitions: dict[str, Any], where: str) -> None:
        self._definitions = definitions
        self._where = where
        self._nodes = 0

    def convert(self, schema: Any, depth: int) -> dict[str, Any]:
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise BadRequest(
                f"{self._where}: past {MAX_NODES:,} nodes once its $refs are inlined, which "
                "the gemini provider needs (it takes no $ref); refer to fewer definitions"
            )
        if not isinstance(schema, dict):
            return {}
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = self._definitions.get(ref.rsplit("/", 1)[-1])
            if not isinstance(target, dict) or depth >= MAX_REF_DEPTH:
                return {"type": "object"} if isinstance(target, dict) else {}
            return self.convert({**target, **schema, "$ref": None}, depth + 1)
        out: dict[str, Any] = {}
        choices: list[Any] | None = None
        for key, value in schema.items():
            if key == "const":
                choices = [value]
            elif key == "enum":
                if isinstance(value, list):
                    choices = [v for v in value if v is not None]
            elif key == "oneOf":
                if "anyOf" not in schema and isinstance(value, list):
                    out["anyOf"] = [self.convert(s, depth) for s in value]
            elif key not in SCHEMA_FIELDS:
                continue
            elif key == "type":
                if isinstance(value, str):
                    out["type"] = value
                elif isinstance(value, list):
                    types = [t for t in value if isinstance(t, str) and t != "null"]
                    out["type"] = types[0] if types else "null"
                    if len(types) < len(value):
                        out["nullable"] = True
            elif key == "properties":
                if isinstance(value, dict):
                    out[key] = {name: self.convert(s, depth) for name, s in value.items()}
            elif key == "required":
                if isinstance(value, list):
                    out[key] = [name for name in value if isinstance(name, str)]
            elif key == "items":
                out[key] = self.convert(value, depth)
            elif key == "anyOf":
                if isinstance(value, list):
                    out[key] = [self.convert(s, depth) for s in value]
            elif key == "format":
                if isinstance(value, str) and value in _FORMATS:
                    out[key] = value
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
    listed = ", ".join(_shown(v) for v in choices)
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


def _shown(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # an integer past 64 bits
        return repr(value)[:100]
