"""The ``mock`` Tachikoma backend: scripted replies for tests and demos.

The entry point names ``_plugin.plugin``, which imports this package first; names are
therefore resolved lazily, so loading the plugin does not import the backend module
(the pattern every provider plugin follows, where the backend's imports are heavy).

Examples:
    >>> from tachikoma_backend_mock import MockBackend, MockResponse
    >>> backend = MockBackend()
    >>> backend.queue_response(MockResponse.text("Hello, world!"))
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._backend import MockBackend as MockBackend
    from ._backend import MockCall as MockCall
    from ._backend import MockResponse as MockResponse
    from ._plugin import MockConfig as MockConfig
    from ._plugin import plugin as plugin

_EXPORTS = {
    "MockBackend": "._backend",
    "MockCall": "._backend",
    "MockResponse": "._backend",
    "MockConfig": "._plugin",
    "plugin": "._plugin",
}

__all__ = ["MockBackend", "MockCall", "MockConfig", "MockResponse", "plugin"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
