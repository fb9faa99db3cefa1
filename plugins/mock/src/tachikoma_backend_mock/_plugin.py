"""The ``mock`` entry point: config model and factory only (the backend loads lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from tachikoma_backends_core import BackendPlugin, PluginConfig

if TYPE_CHECKING:
    from ._backend import MockBackend

__all__ = ["MockConfig", "plugin"]


class MockConfig(PluginConfig):
    """Settings for ``registry.create("mock", ...)``.

    Attributes:
        model: the model name the mock reports (and the only one it accepts).
        default_reply: the text answered when no response is queued.
        chunk_delay: seconds to wait between streamed chunks (to exercise cancellation).
        max_retries: retries of the core's retry loop for retryable failures you script
            (``0``, the default, keeps scripted failures visible to the test).
        timeout: seconds a call waits for a reply scripted to stall
            (`MockResponse.with_stall`) before it fails with ``BackendTimeoutError``
            (``None``, the default: until it is cancelled).
    """

    model: str = Field(default="mock-model", min_length=1)
    default_reply: str = "Mock response"
    chunk_delay: float = Field(default=0.0, ge=0.0, le=60.0)
    max_retries: int = Field(default=0, ge=0, le=10)
    timeout: float | None = Field(default=None, gt=0)


def _create(config: MockConfig) -> MockBackend:
    from ._backend import MockBackend

    return MockBackend(
        model=config.model,
        default_reply=config.default_reply,
        chunk_delay=config.chunk_delay,
        timeout=config.timeout,
    )


plugin = BackendPlugin(
    name="mock",
    config_model=MockConfig,
    factory=_create,
    harness="tachikoma_backend_mock.harness:MockHarness",
    description="Scripted in-memory backend for tests and demos (no network, no key).",
)
