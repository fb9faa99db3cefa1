"""The hooks a ``tachikoma.hooks`` extension plugin can implement (pluggy project ``tachikoma``).

Every backend built by `BackendPlugin.create` calls these through one code path (the
managed backend), so an extension written once sees every provider. Implement any
subset, with any subset of the arguments, marked with `hookimpl`:

```python
from tachikoma_backends_core.hooks import hookimpl

class CountTokens:
    total = 0

    @hookimpl
    def tachikoma_response(self, response):
        CountTokens.total += response.usage.total_tokens
```

A hook that raises is logged (logger ``tachikoma_backends_core.hooks``) and skipped: it
never loses the user's response. A hook that returns an object of the wrong type is
logged and ignored the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .backend import BackendInfo
    from .completion import CompletionChunk, CompletionRequest, CompletionResponse
    from .errors import BackendError

__all__ = [
    "hookspec",
    "tachikoma_chunk",
    "tachikoma_error",
    "tachikoma_request",
    "tachikoma_response",
]

hookspec = pluggy.HookspecMarker("tachikoma")


@hookspec
def tachikoma_request(request: CompletionRequest, backend: BackendInfo) -> CompletionRequest | None:
    """Observe or amend a request before it is sent: return a replacement, or ``None``.

    Called once per call (not per retry). Replacements chain: each hook sees the
    previous hook's result.
    """


@hookspec
def tachikoma_response(
    request: CompletionRequest, response: CompletionResponse, backend: BackendInfo
) -> CompletionResponse | None:
    """Observe or amend a response: return a replacement, or ``None``.

    For a stream it is called once the stream finished, with the accumulated response;
    the stream's chunks are already delivered, so a replacement is ignored there.
    """


@hookspec
def tachikoma_chunk(
    request: CompletionRequest, chunk: CompletionChunk, backend: BackendInfo
) -> CompletionChunk | None:
    """Observe or amend each streamed chunk before the caller sees it.

    Only streams of backends with at least one chunk hook pay for this call.
    """


@hookspec
def tachikoma_error(
    request: CompletionRequest,
    error: BackendError,
    backend: BackendInfo,
    attempt: int,
    will_retry: bool,
    delay: float | None,
    max_attempts: int,
) -> None:
    """Observe each failure: of an attempt (``will_retry`` True) or of the call.

    ``attempt`` is the number of the attempt that failed (1 for the first; 0 for the
    call's final failure), ``delay`` the seconds the retry loop waits before the next
    attempt (``None`` when it will not retry), and ``max_attempts`` the most attempts
    the loop makes. Together they say "retrying in 2.0 s (attempt 2 of 3)".
    """
