"""Read YAML text into plain data, interpolating ``${VAR}`` and noting every line.

PyYAML's composed node tree is walked by hand (rather than ``yaml.safe_load``) because
its nodes carry the line marks that error messages need.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from modelway.config.interpolation import InterpolationError, interpolate
from modelway.config.source_map import ConfigError, ConfigPath, SourceMap

_CORE = "tag:yaml.org,2002:"
_MAP, _SEQ, _STR = f"{_CORE}map", f"{_CORE}seq", f"{_CORE}str"
_CONSTRUCTED = frozenset(f"{_CORE}{name}" for name in ("null", "bool", "int", "float"))
# No setting is a date, but ``api_version: 2024-10-21`` resolves as one; keep it as written.
# A lone ``<<`` value resolves to the merge tag; as a value it can only mean the text.
_KEPT_AS_WRITTEN = frozenset({f"{_CORE}timestamp", f"{_CORE}merge"})


#: The most values a config may hold once its aliases are expanded: a real one holds a
#: few thousand; a "billion laughs" file (aliases of aliases) expands past any memory.
MAX_VALUES = 200_000
#: How deep values may nest (a real config is under ten levels).
MAX_DEPTH = 64


def read_yaml(text: str, source: SourceMap, environ: Mapping[str, str]) -> Any:
    """Parse ``text`` into dicts, lists and scalars, recording lines in ``source``."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        raise ConfigError(_syntax_problem(source.name, error)) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{source.name}: cannot read YAML: {error}") from None
    except RecursionError:
        # PyYAML's parser recurses once per level of nesting.
        raise ConfigError(f"{source.name}: values nest too deeply to read") from None
    if root is None:
        return {}
    return _TreeReader(source, environ).read(root, ())


def _syntax_problem(name: str, error: yaml.MarkedYAMLError) -> str:
    mark = error.problem_mark or error.context_mark
    line = mark.line + 1 if mark is not None else 1
    what = ", ".join(part for part in (error.context, error.problem) if part)
    opened = error.context_mark
    if opened is not None and mark is not None and opened.line != mark.line:
        what += f" (the construct began on line {opened.line + 1})"
    return f"{name}:{line}: YAML syntax error: {what or 'invalid document'}"


def _written_tag(tag: str) -> str:
    return f"!!{tag.removeprefix(_CORE)}" if tag.startswith(_CORE) else tag


class _TreeReader:
    """One walk over a composed YAML document."""

    def __init__(self, source: SourceMap, environ: Mapping[str, str]) -> None:
        self._source = source
        self._environ = environ
        self._constructor = SafeConstructor()
        # Nodes being read right now: an alias back into one would recurse forever.
        self._open: set[int] = set()
        self._values = 0

    def read(self, node: yaml.Node, path: ConfigPath) -> Any:
        line = node.start_mark.line + 1
        self._values += 1
        if self._values > MAX_VALUES:
            message = f"more than {MAX_VALUES:,} values once YAML aliases are expanded"
            raise ConfigError(self._source.problem(path, message, line=line))
        if len(path) > MAX_DEPTH:
            message = f"values nest more than {MAX_DEPTH} deep"
            raise ConfigError(self._source.problem(path, message, line=line))
        self._source.value_lines[path] = line
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path, line)
        if id(node) in self._open:
            message = "a YAML alias refers to itself"
            raise ConfigError(self._source.problem(path, message, line=line))
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
                return [self.read(item, (*path, index)) for index, item in enumerate(node.value)]
        finally:
            self._open.discard(id(node))
        raise ConfigError(self._unknown_type(node, path, line))

    def _scalar(self, node: yaml.ScalarNode, path: ConfigPath, line: int) -> Any:
        if node.tag == _STR:
            try:
                return interpolate(node.value, self._environ)
            except InterpolationError as error:
                raise ConfigError(self._source.problem(path, str(error), line=line)) from None
        if node.tag in _KEPT_AS_WRITTEN:
            return node.value
        if node.tag in _CONSTRUCTED:
            return self._constructor.construct_object(node)
        raise ConfigError(self._unknown_type(node, path, line))

    def _mapping(self, node: yaml.MappingNode, path: ConfigPath) -> dict[str, Any]:
        self._refuse_duplicate_keys(node, path)
        try:
            # Resolves ``<<: *anchor`` merge keys; explicit keys are placed after merged ones.
            self._constructor.flatten_mapping(node)
        except yaml.MarkedYAMLError as error:
            raise ConfigError(_syntax_problem(self._source.name, error)) from None
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self._key(key_node, path)
            self._source.key_lines[(*path, key)] = key_node.start_mark.line + 1
            result[key] = self.read(value_node, (*path, key))
        return result

    def _refuse_duplicate_keys(self, node: yaml.MappingNode, path: ConfigPath) -> None:
        # PyYAML silently keeps the last of two equal keys; a config must not.
        first_lines: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == f"{_CORE}merge":
                continue
            key, line = self._key(key_node, path), key_node.start_mark.line + 1
            if key in first_lines:
                message = f"duplicate key (first at line {first_lines[key]})"
                raise ConfigError(self._source.problem((*path, key), message, line=line))
            first_lines[key] = line

    def _key(self, node: yaml.Node, path: ConfigPath) -> str:
        if not isinstance(node, yaml.ScalarNode):
            line = node.start_mark.line + 1
            raise ConfigError(self._source.problem(path, "a key must be a string", line=line))
        return str(node.value)

    def _unknown_type(self, node: yaml.Node, path: ConfigPath, line: int) -> str:
        return self._source.problem(path, f"unknown YAML type {_written_tag(node.tag)}", line=line)
