"""A health check's answer with its reason: healthy, or the typed error the probe met.

``Backend.health_check`` answers a bare ``bool``, which is all a load balancer needs but
leaves a person at a terminal guessing: a bad key, an overloaded provider, a refused
connection and a hung server all read ``False``. `HealthReport` keeps the error, so
``tachikoma health`` can say which. It is built cheaply and never raises.

Examples:
    >>> HealthReport.ok().reason
    'ok'
    >>> from tachikoma_backends_core import OverloadedError
    >>> report = HealthReport.failed(OverloadedError("Overloaded", status_code=529))
    >>> report.healthy, report.reason
    (False, 'OverloadedError: Overloaded (status_code=529)')
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BackendError

__all__ = ["HealthReport"]

_UNEXPLAINED = "the health check failed and the plugin gives no reason"


@dataclass(frozen=True)
class HealthReport:
    """Whether a provider answers; when it does not, ``error`` says why, if known.

    ``error`` is ``None`` for a healthy report, and for an unhealthy one from a backend
    that only implements ``health_check`` (contract 3 and older).
    """

    healthy: bool
    error: BackendError | None = None

    @classmethod
    def ok(cls) -> HealthReport:
        return _OK

    @classmethod
    def failed(cls, error: BackendError) -> HealthReport:
        """Unhealthy because of ``error``, the typed failure the probe met."""
        return cls(False, error)

    @classmethod
    def from_bool(cls, healthy: bool) -> HealthReport:
        """What a bare ``health_check`` answer says: no reason when it is ``False``."""
        return _OK if healthy else cls(False)

    @property
    def reason(self) -> str:
        """One line: ``ok``, or the error's type and message with its facts (redacted)."""
        if self.healthy:
            return "ok"
        if self.error is None:
            return _UNEXPLAINED
        text = f"{type(self.error).__name__}: {self.error}"
        return " ".join(text.split())  # a provider's message may span lines


_OK = HealthReport(True)
