"""Showing a model pull's progress: a progress bar on a terminal, plain lines elsewhere.

``tachikoma pull`` streams `PullProgress` events. On a terminal, with rich installed (the
Ollama plugin depends on it), each layer gets a bar. Anywhere else (a pipe, a CI log, no
rich) each step gets a line, and a download a line per tenth, so a log stays short and
still shows the pull moving.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, TextIO

from tachikoma_backends_core.model_management import PullProgress

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["show_pull"]


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - the loop returns


async def show_pull(events: AsyncIterator[PullProgress], out: TextIO) -> PullProgress | None:
    """Show ``events`` on ``out``; the last event (``None`` if there was none)."""
    if out.isatty():
        try:
            import rich.progress
        except ImportError:
            pass
        else:
            return await _with_bars(events, out, rich.progress)
    return await _as_lines(events, out)


async def _as_lines(events: AsyncIterator[PullProgress], out: TextIO) -> PullProgress | None:
    last: PullProgress | None = None
    tenths: dict[str, int] = {}
    async for event in events:
        fraction = event.fraction
        if fraction is None or event.total is None:
            if last is None or event.status != last.status:
                print(event.status, file=out, flush=True)
        else:
            tenth = int(fraction * 10)
            if tenths.get(event.status, -1) < tenth:
                tenths[event.status] = tenth
                print(
                    f"{event.status}: {fraction:4.0%} of {_size(event.total)}",
                    file=out,
                    flush=True,
                )
        last = event
    return last


async def _with_bars(
    events: AsyncIterator[PullProgress], out: TextIO, progress_module: Any
) -> PullProgress | None:
    from rich.console import Console

    last: PullProgress | None = None
    bars: dict[str, TaskID] = {}
    progress: Progress = progress_module.Progress(
        progress_module.TextColumn("{task.description}"),
        progress_module.BarColumn(),
        progress_module.DownloadColumn(),
        progress_module.TransferSpeedColumn(),
        console=Console(file=out),
    )
    with progress:
        async for event in events:
            if event.total is not None:
                if event.status not in bars:
                    bars[event.status] = progress.add_task(event.status, total=event.total)
                progress.update(bars[event.status], completed=event.completed or 0)
            elif last is None or event.status != last.status:
                progress.console.print(event.status)
            last = event
    return last
