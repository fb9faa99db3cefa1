"""Ollama's native wire format, as pure functions over dicts, bytes and strings.

No I/O and no httpx here: ``encode`` builds ``/api/chat`` bodies, ``decode`` reads
answers, ``stream`` turns NDJSON into chunks (on the core kit's parser), ``errors`` maps
error answers. The backend glues them to the kit's connection; tests and the
conformance harness drive them directly.
"""

from __future__ import annotations

__all__ = ["PROVIDER"]

#: The ``provider`` every error and stream of this plugin carries.
PROVIDER = "ollama"
