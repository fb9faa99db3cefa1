"""The ``mock`` Tachikoma backend: scripted replies for tests and demos.

Example:
    >>> from tachikoma_backend_mock import MockBackend, MockResponse
    >>> backend = MockBackend()
    >>> backend.queue_response(MockResponse.text("Hello, world!"))
"""

from ._backend import MockBackend, MockResponse
from ._plugin import MockConfig, plugin

__all__ = ["MockBackend", "MockConfig", "MockResponse", "plugin"]
