"""``tachikoma health``: every backend probed at once, each within the same timeout,
each unhealthy one with the reason its probe met on one line.

Probes run concurrently, so checking five providers takes as long as the slowest, and
never longer than ``--timeout``: a hung server costs the timeout, not the provider's
own read timeout (Claude's default is ten minutes).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import anyio

from tachikoma_backends_core import registry
from tachikoma_backends_core.errors import BackendError, BackendTimeoutError
from tachikoma_backends_core.health import HealthReport

from ._terminal import EXIT_FAILURE, EXIT_OK, Terminal

__all__ = ["Probe", "check_health"]


@dataclass(frozen=True)
class Probe:
    """One backend's answer, and how long it took."""

    name: str
    report: HealthReport
    seconds: float

    def as_json(self) -> dict[str, Any]:
        error = self.report.error
        return {
            "name": self.name,
            "healthy": self.report.healthy,
            "reason": self.report.reason,
            "error": None
            if error is None
            else {
                "type": type(error).__name__,
                "message": error.message,
                "status_code": error.status_code,
                "retryable": error.retryable,
            },
            "seconds": round(self.seconds, 3),
        }


async def _probe(name: str, settings: dict[str, str], patience: float) -> Probe:
    started = time.monotonic()
    try:
        backend = registry.create(name, **settings)
    except BackendError as error:  # not installed, not configured: a reason all the same
        return Probe(name, HealthReport.failed(error), time.monotonic() - started)
    report = None
    try:
        with anyio.move_on_after(patience):
            report = await backend.check_health()
    finally:
        await backend.aclose()
    if report is None:
        report = HealthReport.failed(
            BackendTimeoutError(
                f"no answer within {patience:g} s; raise --timeout to wait longer", provider=name
            )
        )
    return Probe(name, report, time.monotonic() - started)


async def check_health(
    terminal: Terminal,
    names: list[str],
    settings: dict[str, str],
    *,
    patience: float,
    as_json: bool,
) -> int:
    """Probe ``names`` (default: every plugin) concurrently, each given ``patience``
    seconds to answer; exit status 0 only if all are healthy."""
    names = list(dict.fromkeys(names)) or registry.names()
    probes: dict[str, Probe] = {}

    async def probe(name: str) -> None:
        probes[name] = await _probe(name, settings, patience)

    async with anyio.create_task_group() as group:
        for name in names:
            group.start_soon(probe, name)
    ordered = [probes[name] for name in names]
    if as_json:
        terminal.print(json.dumps([p.as_json() for p in ordered], indent=2))
    else:
        for p in ordered:
            status = "ok" if p.report.healthy else f"unhealthy: {p.report.reason}"
            terminal.print(f"{p.name:<12} {status}")
    return EXIT_OK if all(p.report.healthy for p in ordered) else EXIT_FAILURE
