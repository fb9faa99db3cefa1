"""What a person waiting at a terminal sees: a status line, and a line per retry.

``complete`` with Claude's defaults may wait minutes before its first token (a long
prompt, an overloaded provider, the core retrying). Silence there reads as a hang, so:

* `StatusLine` redraws one line on standard error (``⠹ waiting for claude 3 s``) until
  the first token, only when standard error is a terminal: never in a pipe or a log;
* `RetryLines` is an ordinary ``tachikoma_error`` hook, registered on the backend's
  hooks for the call, that prints ``retrying in 2.0 s (attempt 2 of 3): <error>`` each
  time the core's retry loop retries. It is driven by the same hook any extension could
  implement: the CLI has no retry logic of its own.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from tachikoma_backends_core.errors import BackendError
from tachikoma_backends_core.hooks import hookimpl

from ._terminal import Terminal, one_line

__all__ = ["RetryLines", "StatusLine", "status_line"]

FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
#: Seconds between redraws of the status line.
TICK = 0.1


class StatusLine:
    """One line on a terminal's standard error, redrawn until `clear`."""

    def __init__(self, terminal: Terminal, text: str) -> None:
        self.terminal = terminal
        self.text = text
        self.started = time.monotonic()
        self.shown = False
        self.done = False
        self._frame = 0

    def draw(self) -> None:
        if self.done or not self.terminal.animated:
            return
        elapsed = time.monotonic() - self.started
        frame = FRAMES[self._frame % len(FRAMES)]
        self._frame += 1
        self.terminal.err.write(f"\r\x1b[2K{frame} {self.text} {elapsed:.0f} s")
        self.terminal.err.flush()
        self.shown = True

    def erase(self) -> None:
        """Take the line off the screen (it comes back on the next `draw`)."""
        if self.shown:
            self.terminal.err.write("\r\x1b[2K")
            self.terminal.err.flush()
            self.shown = False

    def clear(self) -> None:
        """Done waiting: erase the line for good."""
        self.erase()
        self.done = True

    def note(self, text: str) -> None:
        """A line of its own above the status line."""
        self.erase()
        self.terminal.note(text)
        self.draw()


@asynccontextmanager
async def status_line(terminal: Terminal, text: str) -> AsyncIterator[StatusLine]:
    """A `StatusLine` redrawn every `TICK` in a task of its own, cleared on exit."""
    line = StatusLine(terminal, text)
    if not terminal.animated:
        yield line
        line.clear()
        return
    async with anyio.create_task_group() as group:

        async def redraw() -> None:
            while not line.done:
                line.draw()
                await anyio.sleep(TICK)

        group.start_soon(redraw)
        try:
            yield line
        finally:
            line.clear()
            group.cancel_scope.cancel()


class RetryLines:
    """A ``tachikoma_error`` hook printing each retry of the core's loop."""

    def __init__(self, line: StatusLine) -> None:
        self.line = line

    @hookimpl
    def tachikoma_error(
        self, error: BackendError, attempt: int, will_retry: bool, delay: float | None,
        max_attempts: int,
    ) -> None:  # fmt: skip
        if not will_retry or delay is None:
            return  # the final error is printed once, by the command
        self.line.note(
            f"retrying in {delay:.1f} s (attempt {attempt + 1} of {max_attempts}): "
            f"{type(error).__name__}: {one_line(str(error))}"
        )
