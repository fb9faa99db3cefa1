"""The ``ollama`` Tachikoma backend: Ollama's native API, its models, its local server.

The entry point names ``_plugin.plugin``, which imports this package first; names are
therefore resolved lazily (PEP 562), so listing plugins imports neither httpx nor the
backend module.

Examples:
    >>> from tachikoma_backend_ollama import OllamaServerConfig, plugin
    >>> plugin.name, OllamaServerConfig(host="gpu-box:11500").base_url
    ('ollama', 'http://gpu-box:11500')
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._backend import OllamaBackend as OllamaBackend
    from ._backend import OllamaModelInfo as OllamaModelInfo
    from ._host import OllamaServerConfig as OllamaServerConfig
    from ._plugin import OllamaBackendConfig as OllamaBackendConfig
    from ._plugin import plugin as plugin

_EXPORTS = {
    "OllamaBackend": "._backend",
    "OllamaModelInfo": "._backend",
    "OllamaBackendConfig": "._plugin",
    "OllamaServerConfig": "._host",
    "plugin": "._plugin",
}

__all__ = [
    "OllamaBackend",
    "OllamaBackendConfig",
    "OllamaModelInfo",
    "OllamaServerConfig",
    "plugin",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
