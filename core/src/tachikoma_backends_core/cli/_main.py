"""Running the command: streams, exit statuses, and the one-line error."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

import click

from tachikoma_backends_core.errors import BackendError

from ._app import tachikoma
from ._terminal import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, Terminal

__all__ = ["main"]


@contextlib.contextmanager
def _printing_to(out: TextIO, err: TextIO) -> Iterator[None]:
    """Send what click prints itself (help, version) to ``out`` and ``err``."""
    with contextlib.ExitStack() as stack:
        if out is not sys.stdout:
            stack.enter_context(contextlib.redirect_stdout(out))
        if err is not sys.stderr:
            stack.enter_context(contextlib.redirect_stderr(err))
        yield


def main(
    argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the CLI; returns the exit status (the console script exits with it)."""
    terminal = Terminal(out or sys.stdout, err or sys.stderr)
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        with _printing_to(terminal.out, terminal.err):
            status = tachikoma.main(
                args, prog_name="tachikoma", obj=terminal, standalone_mode=False
            )
    except click.UsageError as error:
        error.show(file=terminal.err)
        return EXIT_USAGE
    except click.ClickException as error:
        error.show(file=terminal.err)
        return error.exit_code
    except BackendError as error:
        terminal.fail(str(error))
        return EXIT_FAILURE
    except (KeyboardInterrupt, click.Abort):
        terminal.fail_quietly("interrupted")
        return EXIT_INTERRUPTED
    return status if isinstance(status, int) else 0
