"""Configuration as validated data: ``modelway.yaml`` read once at start.

``load_config`` finds and reads the file, interpolates ``${VAR}`` from the environment
it is given, and validates it into a frozen `Config`; any problem is a `ConfigError`
whose message names the file and line.
"""

from modelway.config.environment import environment, load_dotenv_file
from modelway.config.loading import DEFAULT_CONFIG_FILE, load_config, parse_config
from modelway.config.masking import mask_secret, shown_url
from modelway.config.schema import (
    KNOWN_PROVIDERS,
    AdminSettings,
    AliasCache,
    CacheNamespace,
    CacheSettings,
    Config,
    Cooldown,
    Deployment,
    KeyChecks,
    LimitSettings,
    LoggingSettings,
    LogLevel,
    LongPromptPrice,
    MetricsSettings,
    ModelAlias,
    Price,
    ProviderSettings,
    RedisSettings,
    ServerSettings,
    StoreSettings,
    Strategy,
    TeamBudget,
    Timeouts,
    Wire,
)
from modelway.config.source_map import ConfigError

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "KNOWN_PROVIDERS",
    "AdminSettings",
    "AliasCache",
    "CacheNamespace",
    "CacheSettings",
    "Config",
    "ConfigError",
    "Cooldown",
    "Deployment",
    "KeyChecks",
    "LimitSettings",
    "LogLevel",
    "LoggingSettings",
    "LongPromptPrice",
    "MetricsSettings",
    "ModelAlias",
    "Price",
    "ProviderSettings",
    "RedisSettings",
    "ServerSettings",
    "StoreSettings",
    "Strategy",
    "TeamBudget",
    "Timeouts",
    "Wire",
    "environment",
    "load_config",
    "load_dotenv_file",
    "mask_secret",
    "parse_config",
    "shown_url",
]
