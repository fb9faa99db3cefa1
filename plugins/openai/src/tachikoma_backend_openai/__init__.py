"""The ``openai`` Tachikoma backend: Chat Completions, Azure OpenAI, compatible servers.

The entry point names ``_plugin.plugin``, which imports this package first; names are
therefore resolved lazily (PEP 562), so listing plugins imports neither httpx nor the
backend module.

Examples:
    >>> from tachikoma_backend_openai import OpenAIModel, plugin
    >>> plugin.name, OpenAIModel.lookup("gpt-4o").max_output_tokens
    ('openai', 16384)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._backend import OpenAIBackend as OpenAIBackend
    from ._models import OpenAIModel as OpenAIModel
    from ._plugin import OpenAIBackendConfig as OpenAIBackendConfig
    from ._plugin import plugin as plugin

_EXPORTS = {
    "OpenAIBackend": "._backend",
    "OpenAIBackendConfig": "._plugin",
    "OpenAIModel": "._models",
    "plugin": "._plugin",
}

__all__ = ["OpenAIBackend", "OpenAIBackendConfig", "OpenAIModel", "plugin"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
