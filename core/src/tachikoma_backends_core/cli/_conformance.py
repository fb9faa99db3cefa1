"""``tachikoma conformance``: the suite, run by pytest in a child interpreter."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile

from tachikoma_backends_core.errors import BackendError

__all__ = ["run_suite"]


def run_suite(plugin: str, *, live: bool, pytest_args: list[str]) -> int:
    """Run the traits only, for ``plugin`` (names or ``all``); pytest's exit status.

    In a child interpreter, so pytest imports (and rewrites the assertions of) the suite
    itself, rather than finding this package already imported; from an empty directory,
    so no project's tests or conftest join in.
    """
    if importlib.util.find_spec("pytest") is None:
        raise BackendError("the conformance suite runs under pytest: pip install pytest")
    with tempfile.TemporaryDirectory(prefix="tachikoma-conformance-") as empty:
        argv = [f"--plugin={plugin}", "--rootdir", empty, "-p", "no:cacheprovider", empty]
        if live:
            argv.append("--live")
        return subprocess.call([sys.executable, "-m", "pytest", *argv, *pytest_args])
