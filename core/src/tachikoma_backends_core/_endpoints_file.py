"""The endpoints file, read without importing pydantic: listing plugins stays cheap.

See `tachikoma_backends_core.endpoints` for what an endpoint is and the file's format.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigurationError
from .manifest import CAPABILITY_NAMES, PLUGIN_NAME_PATTERN

__all__ = ["ENDPOINTS_FILE_ENV_VAR", "Endpoint", "endpoints_file", "read_endpoints"]

#: Where the endpoints file is, when not in the user's config directory.
ENDPOINTS_FILE_ENV_VAR = "TACHIKOMA_ENDPOINTS_FILE"
_KEYS = {"plugin", "base_url", "api_key_env", "model", "capabilities", "description", "settings"}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Endpoint:
    """One ``[endpoints.NAME]`` table of the endpoints file."""

    name: str
    base_url: str
    plugin: str = "openai"
    api_key_env: str | None = None
    model: str | None = None
    capabilities: frozenset[str] | None = None
    description: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def summary(self) -> str:
        """One line saying what it is: its ``description``, or where it points."""
        return self.description or f"{self.base_url} through {self.plugin}"

    def defaults(self) -> dict[str, Any]:
        """The settings this endpoint gives the plugin's config (the key from its variable)."""
        settings: dict[str, Any] = {**self.settings, "base_url": self.base_url}
        if self.model is not None:
            settings["model"] = self.model
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        settings["api_key"] = key or None
        return settings


def endpoints_file() -> Path:
    """The endpoints file's path (it may not exist)."""
    configured = os.environ.get(ENDPOINTS_FILE_ENV_VAR)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tachikoma" / "endpoints.toml"


def read_endpoints() -> dict[str, Endpoint]:
    """The declared endpoints, by name; ``{}`` without a file.

    Raises:
        ConfigurationError: the file is not valid TOML, or an endpoint is malformed
            (naming the file, the endpoint and the setting).
    """
    path = endpoints_file()
    try:
        stat = path.stat()
    except OSError:
        return {}
    return dict(_read(str(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int, size: int) -> tuple[tuple[str, Endpoint], ...]:
    # Cached per file version: listing plugins reads it every time. The parser is
    # imported only when there is a file to parse.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the same parser, before it joined the standard library
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(
            f"endpoints file {path} cannot be read: {exc}", field=ENDPOINTS_FILE_ENV_VAR
        ) from None
    tables = document.get("endpoints", {})
    if not isinstance(tables, dict):
        raise ConfigurationError(f"{path}: 'endpoints' must be a table of [endpoints.NAME]")
    return tuple((name, _endpoint(path, name, table)) for name, table in sorted(tables.items()))


def _endpoint(path: str, name: str, table: Any) -> Endpoint:
    where = f"{path}: [endpoints.{name}]"

    def problem(message: str, setting: str | None = None) -> ConfigurationError:
        return ConfigurationError(f"{where}: {message}", field=setting)

    if not PLUGIN_NAME_PATTERN.match(name):
        raise problem("the name must be lowercase letters, digits, '-' or '_'")
    if not isinstance(table, dict):
        raise problem("must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise problem(
            f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))} "
            "(plugin settings go in [endpoints.NAME.settings])",
            unknown[0],
        )
    base_url = table.get("base_url")
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise problem("base_url must be an http:// or https:// URL", "base_url")
    texts = {key: table.get(key) for key in ("plugin", "api_key_env", "model", "description")}
    for key, value in texts.items():
        if value is not None and not (isinstance(value, str) and value):
            raise problem(f"{key} must be a non-empty string", key)
    if texts["api_key_env"] is not None and not _ENV_NAME.match(texts["api_key_env"]):
        raise problem("api_key_env must name an environment variable", "api_key_env")
    capabilities = table.get("capabilities")
    if capabilities is not None:
        if not isinstance(capabilities, list) or not all(isinstance(c, str) for c in capabilities):
            raise problem("capabilities must be a list of names", "capabilities")
        wrong = sorted(set(capabilities) - set(CAPABILITY_NAMES))
        if wrong:
            raise problem(
                f"unknown capabilities {wrong}; known: {', '.join(CAPABILITY_NAMES)}",
                "capabilities",
            )
    settings = table.get("settings", {})
    if not isinstance(settings, dict):
        raise problem("settings must be a table", "settings")
    return Endpoint(
        name=name,
        base_url=base_url.rstrip("/"),
        plugin=texts["plugin"] or "openai",
        api_key_env=texts["api_key_env"],
        model=texts["model"],
        capabilities=None if capabilities is None else frozenset(capabilities),
        description=texts["description"] or "",
        settings=settings,
        source=path,
    )
