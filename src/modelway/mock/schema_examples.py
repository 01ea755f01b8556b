"""The arguments the mock fabricates for a tool call: a value that fits the tool's JSON Schema.

A tool's schema is the caller's input, so no keyword may size the work: ``minItems: 1e9``,
arrays nested ten deep with ``minItems: 300`` each, a ``$ref`` to itself or
``minLength: "abc"`` must neither freeze a worker nor raise. Each keyword is read only
when it has the type JSON Schema gives it (otherwise it is ignored); ``minItems`` and
``minLength`` are clamped; nesting stops at ``MAX_DEPTH`` and the whole value at about
``MAX_SIZE`` bytes of JSON; each ``$ref`` is resolved once, and only the first few
entries of a ``type`` list or an ``anyOf`` are looked at. Past a bound the example is
smaller than the schema asks (an array with fewer items, a shorter string, ``null``): the
mock's arguments are plausible, not proof.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

#: Schemas nested deeper than this (or ``$ref`` chains longer) give ``null``.
MAX_DEPTH = 16
#: ``minItems`` above this is read as this.
MAX_ITEMS = 100
#: ``minLength`` above this is read as this.
MAX_STRING_LENGTH = 4096
#: The largest fabricated value, in bytes of JSON (roughly: separators are estimated).
MAX_SIZE = 64 * 1024
#: Integers are kept within what every JSON reader holds exactly (2**53).
MAX_INTEGER = 2**53
#: Entries of a ``type`` list, ``anyOf``, ``oneOf`` or ``allOf`` looked at (the rest ignored).
MAX_OPTIONS = 16

_FORMAT_EXAMPLES = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00",
    "email": "mock@example.com",
    "uri": "https://example.com",
    "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def schema_example(schema: Any) -> Any:
    """A value that satisfies a JSON Schema (the common subset tools use), within the bounds."""
    return _Examples(schema).example(schema, 0)


class _Examples:
    """One fabrication: the root ``$ref`` paths start from, and the bytes still allowed."""

    def __init__(self, root: Any) -> None:
        self._root = root if isinstance(root, Mapping) else {}
        self._left = MAX_SIZE
        self._refs: dict[str, Any] = {}

    def example(self, schema: Any, depth: int) -> Any:
        if not isinstance(schema, Mapping) or depth > MAX_DEPTH or self._left <= 0:
            return None
        ref = schema.get("$ref")
        if isinstance(ref, str):
            if ref not in self._refs:
                self._refs[ref] = _resolve_ref(self._root, ref)
            return self.example(self._refs[ref], depth + 1)
        for keyword in ("const", "default"):
            if keyword in schema:
                return self._given(schema[keyword])
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return self._given(enum[0])
        for combinator in ("anyOf", "oneOf", "allOf"):
            options = schema.get(combinator)
            if isinstance(options, list):
                option = next((o for o in options[:MAX_OPTIONS] if _not_null(o)), None)
                if option is not None:
                    return self.example(option, depth + 1)
        kind = _schema_type(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth)
        if kind in ("integer", "number"):
            return self._charged(_number_example(schema, integer=kind == "integer"), 8)
        if kind == "boolean":
            return self._charged(True, 4)
        if kind == "null":
            return self._charged(None, 4)
        return self._string(schema)

    def _charged(self, value: Any, size: int) -> Any:
        self._left -= size
        return value

    def _given(self, value: Any) -> Any:
        """A value the schema spells out (``const``, ``default``, ``enum``), if it fits."""
        try:
            size = len(orjson.dumps(value))
        except orjson.JSONEncodeError:  # a library caller's schema may hold any object
            size = self._left + 1
        if size > self._left:
            self._left = 0  # what does not fit now never will: stop here
            return None
        return self._charged(value, size)

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = schema.get("required")
        names = required if isinstance(required, list) and required else properties
        value: dict[str, Any] = {}
        for name in names:
            if self._left <= 0:
                break
            self._left -= 1  # every name looked at counts, kept or not
            if isinstance(name, str) and name not in value:
                self._left -= len(name) + 3
                value[name] = self.example(properties.get(name, {}), depth + 1)
        return value

    def _array(self, schema: Mapping[str, Any], depth: int) -> list[Any]:
        count = min(max(1, _whole(schema.get("minItems"), 1)), MAX_ITEMS)
        most = _whole(schema.get("maxItems"), count)
        count = max(0, min(count, most))
        if count == 0:
            return []
        before = self._left
        items = schema.get("items")
        item = self.example(items, depth + 1) if isinstance(items, Mapping) else self._given("mock")
        # Every copy costs what the first did; as many as the budget allows are made.
        cost = max(1, before - self._left) + 1
        copies = min(count - 1, max(0, self._left) // cost)
        self._left -= copies * cost
        return [item] * (1 + copies)

    def _string(self, schema: Mapping[str, Any]) -> str:
        named = schema.get("format")
        text = _FORMAT_EXAMPLES.get(named, "mock") if isinstance(named, str) else "mock"
        wanted = min(_whole(schema.get("minLength"), 0), MAX_STRING_LENGTH, max(0, self._left))
        if len(text) < wanted:
            text += "x" * (wanted - len(text))
        most = _whole(schema.get("maxLength"), len(text))
        text = text[: max(0, most)]
        self._left -= len(text) + 2
        return text


def _whole(value: Any, default: int) -> int:
    """A schema keyword that must be a whole number (``minItems``, ...), or ``default``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    if isinstance(value, float) and not value.is_integer():
        return default
    return int(value)


def _finite(value: Any) -> float | None:
    """A numeric schema keyword (``minimum``, ...), or None if it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _not_null(option: Any) -> bool:
    return isinstance(option, Mapping) and option.get("type") != "null"


def _schema_type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind[:MAX_OPTIONS] if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _number_example(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    value = 1.0 if integer else 1.5
    step = 1 if integer else 0.5
    low, low_open = _finite(schema.get("minimum")), _finite(schema.get("exclusiveMinimum"))
    high, high_open = _finite(schema.get("maximum")), _finite(schema.get("exclusiveMaximum"))
    if low is not None:
        value = max(value, low)
    if low_open is not None:
        value = max(value, low_open + step)
    if high is not None:
        value = min(value, high)
    if high_open is not None:
        value = min(value, high_open - step)
    if integer:
        return min(max(math.ceil(value), -MAX_INTEGER), MAX_INTEGER)
    return value


def _resolve_ref(root: Mapping[str, Any], ref: str) -> Any:
    # Only local references ("#/$defs/Name", "#"), which is what tool schemas use.
    node: Any = root
    for part in ref.removeprefix("#").split("/"):
        if not part:
            continue
        node = node.get(part, {}) if isinstance(node, Mapping) else {}
    return node
