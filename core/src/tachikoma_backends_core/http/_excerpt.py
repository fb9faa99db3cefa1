"""Quote what a provider sent in an error message: redacted first, then shortened.

Why the order matters: a secret cut in half by shortening no longer matches the
redaction, and its first characters would show. Redacting the whole text first, then
cutting, can only ever show ``[REDACTED]`` or a piece of it.

Examples:
    >>> excerpt("x" * 500, 10)
    "'xxxxxxxxxx...' (500 characters)"
    >>> excerpt("<html>Bad Gateway</html>", 80)
    "'<html>Bad Gateway</html>'"
"""

from __future__ import annotations

from tachikoma_backends_core.errors import redact

__all__ = ["EXCERPT_CONTEXT", "excerpt"]

# Longer than any API key or token we redact, so cutting past it cannot split one.
_LONGEST_SECRET = 4096
#: How much of a long text to hand `excerpt` beyond its ``limit``.
EXCERPT_CONTEXT = _LONGEST_SECRET


def excerpt(text: str, limit: int, *, length: int | None = None) -> str:
    """``text`` redacted, quoted, and cut to ``limit`` characters (saying how long it was).

    ``text`` may be the start of something longer, ``length`` characters in all: pass at
    least ``limit`` plus the longest secret's worth of it, so a secret overlapping the
    cut is still whole when it is redacted.
    """
    length = len(text) if length is None else length
    if length > limit + _LONGEST_SECRET:
        # Redacting a huge text costs: keep what a shown secret could overlap, no more.
        text = text[: limit + _LONGEST_SECRET]
    text = redact(text)
    if length <= limit and len(text) <= limit:
        return repr(text)
    return f"{text[:limit] + '...'!r} ({length:,} characters)"
