"""The Messages API's wire format, as pure functions over dicts, bytes and strings.

No I/O and no httpx here: ``encode`` builds request bodies, ``decode`` reads response
bodies, ``sse`` and ``stream`` turn streamed bytes into chunks, ``errors`` maps error
answers. The backend glues them to httpx; tests and the conformance harness drive them
directly.
"""

from __future__ import annotations

__all__ = ["PROVIDER"]

#: The ``provider`` every error and stream of this plugin carries.
PROVIDER = "claude"
