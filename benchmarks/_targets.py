"""The issue's targets, each checked against what this run measured.

A target reads "met" or "missed" with the measured value; one that this run did not
measure (a subset, ``--quick``, no SDK installed) reads "not measured".
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

from ._measure import paired_ratios
from ._report import Results

_NOT_MEASURED = "not measured"


def _row(target: str, measured: str, met: bool | None) -> str:
    verdict = "not measured" if met is None else ("met" if met else "missed")
    return f"| {target} | {measured} | {verdict} |"


def _per_plugin(
    results: Results, field: str, top: str, bottom: str, check: Callable[[float], bool]
) -> tuple[str, bool | None]:
    found = []
    for plugin, samples in results.formats.items():
        got = getattr(samples, field)
        if top in got and bottom in got:
            found.append((plugin, statistics.median(paired_ratios(got[top], got[bottom]))))
    if not found:
        return _NOT_MEASURED, None
    text = ", ".join(f"{plugin} {ratio:.2f}x" for plugin, ratio in found)
    return text, all(check(ratio) for _, ratio in found)


def _crowd_rows(results: Results) -> list[str]:
    rows = []
    for plugin, by_kind in results.crowds.items():
        ours, floor = by_kind.get("ours", {}), by_kind.get("floor", {})
        if not ours:
            continue
        largest, smallest = max(ours), min(ours)
        errors = sum(c.errors for size in ours for c in ours[size])
        rows.append(
            _row(
                f"{largest:,} concurrent streams, 0 errors ({plugin})",
                f"{errors} errors",
                errors == 0,
            )
        )
        cpu = {size: statistics.median(c.cpu for c in ours[size]) for size in ours}
        mutator = {size: statistics.median(c.cpu - c.gc_cpu for c in ours[size]) for size in ours}
        ratio = cpu[largest] / cpu[smallest]
        allowed = 1.1 * largest / smallest
        rows.append(
            _row(
                f"CPU({largest:,}) <= {allowed:.0f}x CPU({smallest:,}) ({plugin})",
                f"{ratio:.2f}x ({mutator[largest] / mutator[smallest]:.2f}x outside the GC)",
                ratio <= allowed,
            )
        )
        if largest in floor:
            growth = statistics.median(c.rss_growth_kib for c in ours[largest])
            baseline = statistics.median(c.rss_growth_kib for c in floor[largest])
            share = growth / max(baseline, 1)
            rows.append(
                _row(
                    f"peak RSS growth at {largest:,} <= 1.5x raw httpx's ({plugin})",
                    f"{growth / 1024:.0f} MiB vs {baseline / 1024:.0f} MiB: {share:.2f}x",
                    share <= 1.5,
                )
            )
    return rows


def _cold_row(results: Results, name: str, target: str, limit: float) -> str:
    seconds = results.cold.get(name)
    if not seconds:
        return _row(target, _NOT_MEASURED, None)
    middle = statistics.median(seconds) * 1e3
    return _row(target, f"{middle:.0f} ms", middle <= limit)


def target_rows(results: Results) -> list[str]:
    rows = ["| target | measured (median) | verdict |", "|---|---|---|"]
    checks = [
        ("streamed event <= 1.0x the floor", "stream", "ours", "floor", lambda r: r <= 1.0),
        ("streamed event >= 4x cheaper than the SDK", "stream", "sdk", "ours", lambda r: r >= 4),
        ("non-streamed request <= 1.1x the floor", "request", "ours", "floor", lambda r: r <= 1.1),
        (
            "one pass-through chunk hook <= 1.2x the stream",
            "stream",
            "hook",
            "ours",
            lambda r: r <= 1.2,
        ),
        (
            "non-blocking limiter <= 1.05x (stream)",
            "stream",
            "limiter",
            "ours",
            lambda r: r <= 1.05,
        ),
        (
            "non-blocking limiter <= 1.05x (request)",
            "request",
            "limiter",
            "ours",
            lambda r: r <= 1.05,
        ),
    ]
    for target, field, top, bottom, check in checks:
        rows.append(_row(target, *_per_plugin(results, field, top, bottom, check)))
    rows += _crowd_rows(results)
    rows.append(
        _cold_row(
            results,
            "claude: registry.create + close",
            'registry.create("claude") + close, cold <= 200 ms',
            200,
        )
    )
    rows.append(
        _cold_row(results, "registry.available()", "listing (registry.available()) <= 100 ms", 100)
    )
    rows.append(
        _cold_row(
            results,
            "tachikoma backends",
            "listing (tachikoma backends) <= 100 ms",
            100,
        )
    )
    return rows
