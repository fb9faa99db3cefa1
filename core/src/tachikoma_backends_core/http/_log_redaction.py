"""Registered secrets are masked in what httpx and httpcore log, too.

Our errors are redacted when they are built, but httpcore's DEBUG lines quote every
response header as it arrived (a proxy or provider echoing a key in a header would show
it), and httpx's INFO line quotes each URL (some services take the key as a query
parameter). A filter on each of their loggers redacts the message before any handler
sees it. Logger filters run only for records that pass the level check, so with DEBUG
off this costs nothing.
"""

from __future__ import annotations

import logging

from tachikoma_backends_core.errors import redact

__all__ = ["HTTP_LOGGERS", "install_log_redaction"]

#: Every logger httpx 0.28 and httpcore 1.0 log to (a filter on a parent logger does not
#: apply to its children's records, so each one gets its own).
HTTP_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


class _RedactSecrets(logging.Filter):
    """Replaces a record's message by its redacted text when it holds a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_FILTER = _RedactSecrets("tachikoma-redact")


def install_log_redaction() -> None:
    """Add the redacting filter to every httpx and httpcore logger; idempotent."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
