"""The machine-readable conformance report (``--conformance-report=PATH``).

One JSON document per run: for each plugin its distribution, version, declared contract
and capabilities, warnings, and every trait's outcome with its reason and duration. CI
systems read it instead of scraping pytest's output; its shape is fixed by
``report.schema.json`` (JSON Schema 2020-12), shipped with core and checked by our tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from tachikoma_backends_core.manifest import CONTRACT_VERSION, MIN_CONTRACT_VERSION
from tachikoma_backends_core.registry import PluginInfo

__all__ = ["REPORT_VERSION", "SCHEMA_PATH", "SkipCategory", "TraitRecord", "write_report"]

REPORT_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("report.schema.json")

Outcome = Literal["passed", "failed", "xfailed", "skipped"]
#: Why a trait was skipped: the plugin does not declare the capability, the trait
#: belongs to a newer contract than the plugin's, it runs only with (or only without)
#: ``--live``, or something else (a reason is always given).
SkipCategory = Literal["not_declared", "not_in_contract", "live_only", "scripted_only", "other"]


@dataclass
class TraitRecord:
    """One trait run for one plugin, built up from pytest's setup/call/teardown reports."""

    nodeid: str
    plugin: str
    trait: str
    area: str
    since: int
    outcome: Outcome = "passed"
    reason: str | None = None
    skip_category: SkipCategory | None = None
    duration: float = 0.0
    phases: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.nodeid,
            "trait": self.trait,
            "area": self.area,
            "since_contract": self.since,
            "outcome": self.outcome,
            "reason": self.reason,
            "skip_category": self.skip_category if self.outcome == "skipped" else None,
            "duration": round(self.duration, 6),
        }


def _core_version() -> str:
    try:
        return version("tachikoma-backends-core")
    except PackageNotFoundError:  # pragma: no cover - core always has metadata installed
        return "unknown"


def build_report(
    plugins: dict[str, PluginInfo],
    records: list[TraitRecord],
    warnings: dict[str, list[str]],
    *,
    live: bool,
) -> dict[str, Any]:
    """The report document (see ``report.schema.json``)."""
    entries = []
    for name, info in plugins.items():
        traits = [record for record in records if record.plugin == name]
        summary = dict.fromkeys(("passed", "failed", "xfailed", "skipped"), 0)
        for record in traits:
            summary[record.outcome] += 1
        capabilities = info.manifest.capabilities
        entries.append(
            {
                "name": name,
                "distribution": info.distribution,
                "version": info.version,
                "contract": info.manifest.contract,
                "capabilities": None if capabilities is None else sorted(capabilities),
                "error": None if info.error is None else info.error.message,
                "warnings": list(warnings.get(name, [])),
                "summary": summary,
                "traits": [record.as_json() for record in traits],
            }
        )
    return {
        "report_version": REPORT_VERSION,
        "core_version": _core_version(),
        "core_contract": {"min": MIN_CONTRACT_VERSION, "max": CONTRACT_VERSION},
        "live": live,
        "plugins": entries,
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
