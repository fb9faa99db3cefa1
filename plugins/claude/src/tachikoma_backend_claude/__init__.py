"""The ``claude`` Tachikoma backend: Anthropic's Messages API over httpx.

The entry point names ``_plugin.plugin``, which imports this package first; names are
therefore resolved lazily (PEP 562), so listing plugins imports neither httpx nor the
backend module.

Examples:
    >>> from tachikoma_backend_claude import ClaudeModel, plugin
    >>> plugin.name, ClaudeModel.lookup("claude-sonnet-4-5").max_output_tokens
    ('claude', 64000)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._backend import ClaudeBackend as ClaudeBackend
    from ._models import ClaudeModel as ClaudeModel
    from ._plugin import ClaudeBackendConfig as ClaudeBackendConfig
    from ._plugin import plugin as plugin

_EXPORTS = {
    "ClaudeBackend": "._backend",
    "ClaudeBackendConfig": "._plugin",
    "ClaudeModel": "._models",
    "plugin": "._plugin",
}

__all__ = ["ClaudeBackend", "ClaudeBackendConfig", "ClaudeModel", "plugin"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
