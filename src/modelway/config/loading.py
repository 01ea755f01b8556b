"""Find, read and validate ``modelway.yaml``: the one entry point to configuration."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from modelway.config.checks import check_config
from modelway.config.schema import Config
from modelway.config.source_map import ConfigError, SourceMap
from modelway.config.validation import convert_config
from modelway.config.yaml_source import read_yaml

DEFAULT_CONFIG_FILE = "modelway.yaml"


def load_config(path: str | os.PathLike[str] | None, environ: Mapping[str, str]) -> Config:
    """Load ``path``, else ``$MODELWAY_CONFIG``, else ``./modelway.yaml`` if present.

    With none of them the result is the default (empty) config.
    """
    chosen = path if path is not None else environ.get("MODELWAY_CONFIG") or None
    if chosen is None:
        if not Path(DEFAULT_CONFIG_FILE).is_file():
            return Config()
        chosen = DEFAULT_CONFIG_FILE
    name = os.fspath(chosen)
    try:
        text = Path(chosen).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{name}: config file not found") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{name}: config file is not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise ConfigError(f"{name}: cannot read config file: {error.strerror}") from None
    return parse_config(text, environ, source_name=name)


def parse_config(
    text: str, environ: Mapping[str, str], *, source_name: str = DEFAULT_CONFIG_FILE
) -> Config:
    """Validate YAML ``text`` as a config; problems are reported against ``source_name``."""
    source = SourceMap(source_name)
    document = read_yaml(text, source, environ)
    if isinstance(document, dict):
        # Top-level ``x-`` keys hold YAML anchors for the sections to use (compose files'
        # convention): read for their anchors, otherwise not part of the config.
        document = {k: v for k, v in document.items() if not k.startswith("x-")}
    config = convert_config(document, source)
    problems = check_config(config, source)
    if problems:
        raise ConfigError(*problems)
    return config
