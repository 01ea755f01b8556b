"""Turn plain config data into a `Config`, naming the line of the first invalid value.

msgspec reports where it stopped as ``$.models[0].deployments[1].weight``, but writes
every mapping key as ``[...]``; the key is found again by re-validating one entry at a time.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import msgspec
import msgspec.inspect as schema_info

from modelway.config.schema import Config
from modelway.config.source_map import ConfigError, ConfigPath, SourceMap

_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `(?P<name>[^`]*)`\Z")
_MISSING_FIELD = re.compile(r"Object missing required field `(?P<name>[^`]*)`\Z")


def convert_config(data: Any, source: SourceMap) -> Config:
    """Validate ``data`` against `Config`; raise a one-line problem naming file and line."""
    if isinstance(data, dict):
        # ``server:`` with every entry commented out reads as null: it means "defaults".
        data = {section: value for section, value in data.items() if value is not None}
    try:
        # strict=False lets ``port: ${PORT}`` (always text after interpolation) become an int;
        # it only ever turns text into a number or bool, never the other way round.
        return msgspec.convert(data, Config, strict=False)
    except msgspec.ValidationError as error:
        raise _config_error(error, data, source) from None


def _config_error(error: msgspec.ValidationError, data: Any, source: SourceMap) -> ConfigError:
    text = str(error)
    message, _, where = text.partition(" - at `")
    path = _find_keys(_parse_path(where.rstrip("`") or "$"), data, text)
    if unknown := _UNKNOWN_FIELD.match(message):
        path = (*path, unknown["name"])
        message = _unknown_field_message(path)
    elif missing := _MISSING_FIELD.match(message):
        message = f"missing required field {missing['name']!r}"
    else:
        message = message.replace("`", "")
        message += _expected_values(path) if message.startswith("Invalid enum") else ""
        message += "" if "got" in message else _got(data, path)
    return ConfigError(source.problem(path, message))


def _parse_path(where: str) -> list[str | int | None]:
    """``$.models[0].providers[...]`` → ``["models", 0, "providers", None]`` (None: some key)."""
    parts: list[str | int | None] = []
    for field, index in _PATH_PART.findall(where):
        if field:
            parts.append(field)
        else:
            parts.append(None if index == "..." else int(index))
    return parts


def _find_keys(parts: list[str | int | None], data: Any, text: str) -> ConfigPath:
    path: list[str | int] = []
    node = data
    for part in parts:
        if part is None:
            part = _failing_key(data, tuple(path), node, text)
            if part is None:
                break
        path.append(part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return tuple(path)


def _failing_key(data: Any, path: ConfigPath, mapping: Any, text: str) -> str | None:
    # Keys are validated in order, so the first whose entry alone reproduces the error is it.
    if not isinstance(mapping, dict):
        return None
    for key, value in mapping.items():
        try:
            msgspec.convert(_replaced(data, path, {key: value}), Config, strict=False)
        except msgspec.ValidationError as error:
            if str(error) == text:
                return str(key)
    return None


def _replaced(data: Any, path: ConfigPath, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = list(data) if isinstance(data, list) else dict(data)
    copy[head] = _replaced(data[head], rest, value)  # type: ignore[index]
    return copy


def _type_at(path: ConfigPath) -> Any:
    info: Any = schema_info.type_info(Config)
    for part in path:
        info = _unwrapped(info)
        if isinstance(info, schema_info.StructType):
            info = next((f.type for f in info.fields if f.encode_name == part), None)
        elif isinstance(info, schema_info.ListType | schema_info.DictType):
            info = info.item_type if isinstance(info, schema_info.ListType) else info.value_type
        else:
            return None
    return _unwrapped(info)


def _unwrapped(info: Any) -> Any:
    if isinstance(info, schema_info.Metadata):
        info = info.type
    if isinstance(info, schema_info.UnionType):
        # ``Timeouts | None``: the struct (or literal) is the interesting member.
        wanted = (schema_info.StructType, schema_info.LiteralType)
        info = next((member for member in info.types if isinstance(member, wanted)), info)
    return info


def _unknown_field_message(path: ConfigPath) -> str:
    name = str(path[-1])
    owner = _type_at(path[:-1])
    is_struct = isinstance(owner, schema_info.StructType)
    allowed = [field.encode_name for field in owner.fields] if is_struct else []
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(allowed)}"
    return f"unknown field ({hint})"


def _expected_values(path: ConfigPath) -> str:
    info = _type_at(path)
    if isinstance(info, schema_info.LiteralType):
        return f" (expected one of: {', '.join(str(value) for value in info.values)})"
    return ""


def _got(data: Any, path: ConfigPath) -> str:
    # Only numbers are echoed back: a string value here could be a secret.
    value = data
    for part in path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f", got {value}"
    return ""
