"""RESULTS.md and the plot, from one run's samples.

Every figure is a median over the repetitions with its range beside it (``[low-high]``),
and every ratio is taken within each repetition first (ours and the floor measured side by
side), then its median reported: the range shows how noisy the machine was.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ._concurrency import Crowd
from ._measure import FormatSamples, median_and_range, paired_ratios
from ._payloads import FORMATS

_NAMES = {
    "floor": "raw httpx (floor)",
    "ours": "our plugin",
    "hook": "ours + 1 pass-through chunk hook",
    "limiter": "ours + non-blocking rate limiter",
    "sdk": "official SDK",
}
_PACKAGES = ("tachikoma-backends-core", "httpx", "httpcore", "anyio", "pydantic", "pluggy")
_SDK_PACKAGES = ("anthropic", "openai", "ollama", "matplotlib")


@dataclass
class Results:
    """Everything one run measured, and how."""

    settings: dict[str, object]
    placement: str
    formats: dict[str, FormatSamples] = field(default_factory=dict)
    crowds: dict[str, dict[str, dict[int, list[Crowd]]]] = field(default_factory=dict)
    cold: dict[str, list[float]] = field(default_factory=dict)
    leaked: str = ""
    lines: list[str] = field(default_factory=list)  # what was printed, in order


def _ratio(values: Sequence[float]) -> str:
    middle, low, high = median_and_range(values)
    return f"{middle:.2f}x [{low:.2f}-{high:.2f}]"


def _spread(values: Sequence[float], scale: float = 1.0) -> str:
    middle, low, high = median_and_range([v * scale for v in values])
    return f"{middle:.2f} [{low:.2f}-{high:.2f}]"


def _micro(values: Sequence[float]) -> str:
    return _spread(values, 1e6)


def _versions() -> str:
    found = []
    for name in (*_PACKAGES, *_SDK_PACKAGES):
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_lines(results: Results) -> list[str]:
    return [
        f"- Machine: {_cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}. Shared with other work "
        "while measured: absolute figures are noisy, the ratios (measured side by side) less.",
        f"- Placement: {results.placement}.",
        f"- Versions: {_versions()}.",
        f"- Settings: {', '.join(f'{k}={v}' for k, v in results.settings.items())}.",
    ]


def per_request_table(results: Results) -> list[str]:
    rows = [
        "| format | floor us/req | ours us/req | SDK us/req | ours/floor | SDK/ours |"
        " limiter/ours |",
        "|---|---|---|---|---|---|---|",
    ]
    for plugin, samples in results.formats.items():
        got = samples.request
        if "floor" not in got or "ours" not in got:
            continue
        sdk = _micro(got["sdk"]) if "sdk" in got else "-"
        vs_sdk = _ratio(paired_ratios(got["sdk"], got["ours"])) if "sdk" in got else "-"
        limiter = _ratio(paired_ratios(got["limiter"], got["ours"])) if "limiter" in got else "-"
        rows.append(
            f"| {FORMATS[plugin].label} ({plugin}) | {_micro(got['floor'])} | "
            f"{_micro(got['ours'])} | {sdk} | {_ratio(paired_ratios(got['ours'], got['floor']))}"
            f" | {vs_sdk} | {limiter} |"
        )
    return rows


def per_event_table(results: Results) -> list[str]:
    rows = [
        "| format | floor us/event | ours us/event | SDK us/event | ours/floor | SDK/ours |"
        " hook/ours | limiter/ours |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for plugin, samples in results.formats.items():
        got = samples.stream
        if "floor" not in got or "ours" not in got:
            continue
        cells = [_micro(got["floor"]), _micro(got["ours"])]
        cells.append(_micro(got["sdk"]) if "sdk" in got else "-")
        cells.append(_ratio(paired_ratios(got["ours"], got["floor"])))
        for kind, against in (("sdk", "ours"), ("hook", "ours"), ("limiter", "ours")):
            have = kind in got
            cells.append(_ratio(paired_ratios(got[kind], got[against])) if have else "-")
        rows.append(f"| {FORMATS[plugin].label} ({plugin}) | " + " | ".join(cells) + " |")
    return rows


def _crowd_median(crowds: list[Crowd], attribute: str) -> float:
    return float(statistics.median(getattr(crowd, attribute) for crowd in crowds))


def _mutator(crowds: list[Crowd]) -> float:
    """The median CPU outside the garbage collector."""
    return float(statistics.median(c.cpu - c.gc_cpu for c in crowds))


def crowd_table(results: Results) -> list[str]:
    rows = [
        "| format | client | streams | wall s | CPU s | CPU ms/stream | CPU vs fewest |"
        " of it GC s | CPU - GC vs fewest | peak RSS growth MiB | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for plugin, by_kind in results.crowds.items():
        for kind, by_size in by_kind.items():
            sizes = sorted(by_size)
            base = _crowd_median(by_size[sizes[0]], "cpu")
            base_mutator = _mutator(by_size[sizes[0]])
            for size in sizes:
                crowds = by_size[size]
                cpu = [c.cpu for c in crowds]
                rows.append(
                    f"| {plugin} | {_NAMES[kind]} | {size:,} | "
                    f"{_crowd_median(crowds, 'wall'):.2f} | {_spread(cpu)} | "
                    f"{_crowd_median(crowds, 'cpu') / size * 1e3:.2f} | "
                    f"{_crowd_median(crowds, 'cpu') / base:.2f}x | "
                    f"{_crowd_median(crowds, 'gc_cpu'):.2f} | "
                    f"{_mutator(crowds) / base_mutator:.2f}x | "
                    f"{statistics.median(c.rss_growth_kib for c in crowds) / 1024:.0f} | "
                    f"{sum(c.errors for c in crowds)} |"
                )
    return rows


def cold_table(results: Results) -> list[str]:
    rows = ["| fresh process | ms (median [range]) |", "|---|---|"]
    for name, seconds in results.cold.items():
        middle, low, high = median_and_range([s * 1e3 for s in seconds])
        rows.append(f"| {name} | {middle:.0f} [{low:.0f}-{high:.0f}] |")
    if results.leaked:
        rows.append(f"\nListing imported plugin modules: {results.leaked} (it must not).")
    return rows


def plot(results: Results, path: Path) -> bool:
    """Draw CPU per event and CPU vs concurrent streams; ``False`` without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, (events, crowds) = plt.subplots(1, 2, figsize=(13, 5))
    plugins = [p for p, s in results.formats.items() if s.stream]
    kinds = [k for k in _NAMES if any(k in results.formats[p].stream for p in plugins)]
    width = 0.8 / max(len(kinds), 1)
    for offset, kind in enumerate(kinds):
        heights = [
            statistics.median(results.formats[p].stream.get(kind, [0.0])) * 1e6 for p in plugins
        ]
        places = [i + offset * width for i in range(len(plugins))]
        events.bar(places, heights, width, label=_NAMES[kind])
    events.set_xticks([i + width * (len(kinds) - 1) / 2 for i in range(len(plugins))])
    events.set_xticklabels([FORMATS[p].label for p in plugins])
    events.set_yscale("log")
    events.set_ylabel("client CPU per streamed event (us, log scale)")
    events.set_title("One stream: CPU per event")
    events.legend(fontsize=8)
    for plugin, by_kind in results.crowds.items():
        for kind, by_size in by_kind.items():
            sizes = sorted(by_size)
            cpu = [_crowd_median(by_size[size], "cpu") for size in sizes]
            crowds.plot(sizes, cpu, marker="o", label=f"{plugin}: {_NAMES[kind]}")
    crowds.set_xlabel("concurrent streams (200 deltas each)")
    crowds.set_ylabel("client CPU (s)")
    crowds.set_title("CPU vs concurrent streams")
    if results.crowds:
        crowds.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def write_report(results: Results, report: Path, targets: list[str], plot_name: str) -> None:
    sections = [
        "# Benchmark results",
        "",
        "Written by `python -m benchmarks` (`make bench`); rerun it to refresh. Client CPU only:",
        "the loopback server serving precomputed bytes runs in its own process, on another",
        "core. `[a-b]` is the range over the repetitions; ratios are medians of ratios taken",
        "within each repetition. `benchmarks/PROFILE.md` says what dominated, before and after.",
        "",
        *machine_lines(results),
        "",
        "## Targets",
        "",
        *targets,
        "",
        "## Non-streamed requests: client CPU per request",
        "",
        *per_request_table(results),
        "",
        "## One long stream: client CPU per streamed event",
        "",
        *per_event_table(results),
        "",
        "## Concurrent streams",
        "",
        *crowd_table(results),
        "",
        "## Cold start",
        "",
        *cold_table(results),
        "",
    ]
    if plot_name:
        sections += [f"![CPU per event and CPU vs concurrent streams]({plot_name})", ""]
    report.write_text("\n".join(sections))
