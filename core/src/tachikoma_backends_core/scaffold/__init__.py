"""``tachikoma new-plugin``: a provider plugin distribution that starts green.

`new_plugin` writes a complete, installable ``tachikoma-backend-NAME`` on core's HTTP
kit (`tachikoma_backends_core.http`): both entry points and the manifest, the src layout
(config and factory, wire module, backend, a tool-capable conformance harness), offline
tests, a README and a CI workflow running ``pytest --plugin=NAME``. As generated, it
passes the whole conformance suite at the current contract and its own tests; the
provider's own details are marked ``PROVIDER:`` for its author to edit.

Three styles cover the usual shapes of a streaming API (`STYLES`): ``openai-sse``
(Chat Completions' ``data:`` chunks), ``sse`` (named ``event:`` lines) and ``ndjson``
(one JSON object per line).

Examples:
    >>> import tempfile
    >>> from pathlib import Path
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     root = new_plugin("acme", style="ndjson", directory=Path(tmp))
    ...     print(root.name, (root / "src" / "tachikoma_backend_acme" / "_wire.py").is_file())
    tachikoma-backend-acme True
"""

from __future__ import annotations

from ._generate import DEFAULT_STYLE, STYLES, ScaffoldError, new_plugin, next_steps

__all__ = ["DEFAULT_STYLE", "STYLES", "ScaffoldError", "new_plugin", "next_steps"]
