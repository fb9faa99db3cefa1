"""Where the command writes: results to ``out``, everything about the run to ``err``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TextIO

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def one_line(text: str) -> str:
    """``text`` on one line: a provider's message may span several."""
    return " ".join(text.split())


@dataclass
class Terminal:
    """The command's two streams.

    ``out`` takes the results only (the reply, the listing, the JSON), so that
    ``tachikoma complete ... > reply.txt`` holds the reply and nothing else. ``err`` takes
    errors, retries and progress; animated progress only when ``err`` is a terminal.
    """

    out: TextIO
    err: TextIO

    @property
    def animated(self) -> bool:
        """Whether ``err`` is a terminal that can redraw a line (not ``TERM=dumb``)."""
        isatty = getattr(self.err, "isatty", None)
        return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"

    def print(self, text: str = "") -> None:
        print(text, file=self.out)

    def note(self, text: str) -> None:
        """A line about the run, on ``err``: ``tachikoma: <text>``."""
        print(f"tachikoma: {one_line(text)}", file=self.err, flush=True)

    def fail(self, message: str) -> None:
        print(f"tachikoma: error: {one_line(message)}", file=self.err, flush=True)

    def fail_quietly(self, what: str) -> None:
        print(f"tachikoma: {what}", file=self.err, flush=True)
