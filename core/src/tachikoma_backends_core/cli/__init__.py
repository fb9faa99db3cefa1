"""The ``tachikoma`` command: list plugins, complete, check health, manage models, run
the conformance suite, start a plugin.

Built on click (why: ``docs/dependencies.md``). Every failure prints one line
(``tachikoma: error: ...``) and exits 1; a usage error prints the subcommand's usage and
exits 2. Results go to standard output, everything about the run (progress, retries,
usage with ``-v``) to standard error, so piped output stays clean. Secrets never reach
the terminal: errors are redacted and configurations are never printed.
"""

from __future__ import annotations

from ._main import main

__all__ = ["main"]
