"""``python -m benchmarks``: measure, print as it goes, write RESULTS.md and the plot.

Options pick a subset (``--only stream,cold``, ``--plugins claude``), leave the SDKs out
(``--no-sdk``; they are left out anyway when not installed) and the plot (``--no-plot``;
likewise without matplotlib), or make it a quick check (``--quick``: tiny sizes, two
repetitions; its figures mean nothing). The full run takes about half an hour on two cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

from ._clients import KINDS, sdk_installed
from ._cold import run_cold
from ._concurrency import Crowd, run_crowd
from ._measure import measure_format, paired_ratios
from ._payloads import FORMATS
from ._report import Results, plot, write_report
from ._server import pin_client, raise_file_limit, running_server
from ._targets import target_rows

PARTS = ("request", "stream", "concurrency", "cold")
HERE = Path(__file__).resolve().parent


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", default=",".join(PARTS), help=f"parts to run, of {PARTS}")
    parser.add_argument("--plugins", default=",".join(FORMATS), help="wire formats, by plugin")
    parser.add_argument("--no-sdk", action="store_true", help="leave the official SDKs out")
    parser.add_argument("--no-plot", action="store_true", help="write no plot (no matplotlib)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--runs", type=int, help="repetitions (default 5; --quick 2)")
    parser.add_argument("--output", type=Path, default=HERE, help="where RESULTS.md goes")
    parser.add_argument("--streams", help="concurrent stream counts (default 1000,5000,10000)")
    parser.add_argument(
        "--sdk-streams", help="concurrent stream counts for the SDKs (default 1000,5000)"
    )
    parser.add_argument(
        "--concurrency-plugins", default="claude", help="wire formats for the concurrency part"
    )
    return parser.parse_args(argv)


class Run:
    """One invocation: its settings, what it printed, what it measured."""

    def __init__(self, options: argparse.Namespace) -> None:
        quick = options.quick
        self.parts = [p for p in options.only.split(",") if p]
        self.plugins = [p for p in options.plugins.split(",") if p]
        unknown = [p for p in self.parts if p not in PARTS] + [
            p for p in self.plugins if p not in FORMATS
        ]
        if unknown:
            raise SystemExit(f"unknown part or plugin: {', '.join(unknown)}")
        self.runs = options.runs or (2 if quick else 5)
        self.requests = 20 if quick else 2000
        self.deltas = 200 if quick else 20_000
        self.crowd_deltas = 20 if quick else 200
        self.streams = _sizes(options.streams, "10,30" if quick else "1000,5000,10000")
        self.sdk_streams = _sizes(options.sdk_streams, "10,30" if quick else "1000,5000")
        self.crowd_plugins = [
            p for p in options.concurrency_plugins.split(",") if p in self.plugins
        ]
        self.sdk = not options.no_sdk
        self.draw = not options.no_plot
        self.output: Path = options.output
        self.results = Results(
            settings={
                "repetitions": self.runs,
                "sequential requests": self.requests,
                "deltas per stream": self.deltas,
                "concurrent streams": "/".join(map(str, self.streams)),
                "deltas per concurrent stream": self.crowd_deltas,
            },
            placement=pin_client(),
        )

    def say(self, line: str = "") -> None:
        print(line, flush=True)
        self.results.lines.append(line)

    def kinds(self, plugin: str) -> list[str]:
        with_sdk = self.sdk and sdk_installed(FORMATS[plugin])
        return [k for k in KINDS if k != "sdk" or with_sdk]

    async def in_process(self, server: str) -> None:
        for plugin in self.plugins:
            kinds = self.kinds(plugin)
            samples = await measure_format(
                plugin,
                server,
                kinds,
                requests=self.requests if "request" in self.parts else 0,
                deltas=self.deltas if "stream" in self.parts else 0,
                runs=self.runs,
            )
            self.results.formats[plugin] = samples
            for part, got, unit in (
                ("request", samples.request, "request"),
                ("stream", samples.stream, "event"),
            ):
                if got:
                    self._print_ratios(plugin, part, got, unit)

    def _print_ratios(self, plugin: str, part: str, got: dict[str, list[float]], unit: str) -> None:
        self.say(f"[{plugin}] {part}: CPU per {unit}, median of {self.runs}")
        for kind, values in got.items():
            middle = sorted(values)[len(values) // 2] * 1e6
            against = "floor" if kind in ("ours", "sdk") else "ours"
            if kind == "floor":
                self.say(f"  {kind:<8} {middle:8.2f} us")
                continue
            ratios = sorted(paired_ratios(values, got[against]))
            self.say(
                f"  {kind:<8} {middle:8.2f} us  {ratios[len(ratios) // 2]:.2f}x {against} "
                f"(range {ratios[0]:.2f}-{ratios[-1]:.2f})"
            )

    def concurrency(self, server: str) -> None:
        for plugin in self.crowd_plugins:
            kinds = [k for k in self.kinds(plugin) if k in ("floor", "ours", "sdk")]
            found: dict[str, dict[int, list[Crowd]]] = {kind: {} for kind in kinds}
            for _ in range(self.runs):
                for size in self.streams:
                    for kind in kinds:
                        if kind == "sdk" and size not in self.sdk_streams:
                            continue
                        crowd = run_crowd(plugin, kind, size, self.crowd_deltas, server)
                        found[kind].setdefault(size, []).append(crowd)
                        self.say(
                            f"[{plugin}] {size:>6,} streams, {kind:<5}: CPU {crowd.cpu:7.2f} s, "
                            f"wall {crowd.wall:7.2f} s, "
                            f"RSS +{crowd.rss_growth_kib / 1024:.0f} MiB, "
                            f"{crowd.errors} errors {crowd.first_error[:80]}"
                        )
            self.results.crowds[plugin] = found

    def cold(self) -> None:
        samples, leaked = run_cold(self.plugins, self.sdk, self.runs)
        self.results.cold, self.results.leaked = samples, leaked
        for name, seconds in samples.items():
            self.say(f"[cold] {name:<40} {sorted(seconds)[len(seconds) // 2] * 1e3:7.0f} ms")
        if leaked:
            self.say(f"[cold] FAIL: listing imported plugin modules: {leaked}")

    def finish(self) -> int:
        self.output.mkdir(parents=True, exist_ok=True)
        targets = target_rows(self.results)
        for row in targets[2:]:
            self.say(row)
        drawn = self.draw and plot(self.results, self.output / "results.png")
        name = "results.png" if drawn else ""
        write_report(self.results, self.output / "RESULTS.md", targets, name)
        self.say(f"wrote {self.output / 'RESULTS.md'}" + ("" if drawn else " (no plot)"))
        return 1 if self.results.leaked else 0


def _sizes(given: str | None, default: str) -> list[int]:
    return [int(size) for size in (given or default).split(",") if size]


def main(argv: list[str] | None = None) -> int:
    run = Run(_arguments(argv))
    raise_file_limit()
    run.say(f"{run.results.placement}; {run.runs} repetitions")
    needs_server = {"request", "stream", "concurrency"} & set(run.parts)
    if needs_server:
        with running_server() as server:
            if {"request", "stream"} & set(run.parts):
                anyio.run(run.in_process, server)
            if "concurrency" in run.parts:
                run.concurrency(server)
    if "cold" in run.parts:
        run.cold()
    return run.finish()


if __name__ == "__main__":
    sys.exit(main())
