"""The config file: YAML → interpolated, secrets read, relative paths resolved → frozen,
validated settings (`settings`), every error at its `file:line:col` (`file`)."""

from monitor.config.settings import (
    DEFAULT_LISTEN,
    DEFAULT_STORE,
    Config,
    NotifierConfig,
    ProviderConfig,
    Schedule,
    secret_keys,
)

__all__ = [
    "DEFAULT_LISTEN",
    "DEFAULT_STORE",
    "Config",
    "NotifierConfig",
    "ProviderConfig",
    "Schedule",
    "secret_keys",
]
