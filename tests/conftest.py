"""Fixtures the repository's own tests share (tests cannot import each other)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tachikoma_backends_core._redis_server import RedisServer, redis_server_path
from tachikoma_backends_core.registry import PLUGINS_ENV_VAR


@dataclass(frozen=True)
class SuiteRun:
    """One ``pytest --plugin=...`` subprocess: its output and its JSON report."""

    result: subprocess.CompletedProcess[str]
    report_path: Path
    report: dict[str, Any]

    def plugin(self, name: str) -> dict[str, Any]:
        return next(entry for entry in self.report["plugins"] if entry["name"] == name)

    def traits(
        self, plugin: str, trait: str | None = None, *, outcome: str | None = None
    ) -> list[dict[str, Any]]:
        """The plugin's trait records (all, or of one trait and/or one outcome)."""
        return [
            record
            for record in self.plugin(plugin)["traits"]
            if trait in (None, record["trait"]) and outcome in (None, record["outcome"])
        ]

    def with_outcome(self, plugin: str, outcome: str) -> set[str]:
        """The names of the plugin's traits with this outcome (any parametrisation)."""
        return {record["trait"] for record in self.traits(plugin, outcome=outcome)}

    def failures(self, plugin: str) -> list[tuple[str, str | None]]:
        return [
            (record["id"], record["reason"]) for record in self.traits(plugin, outcome="failed")
        ]


RunSuite = Callable[..., SuiteRun]


@pytest.fixture(scope="module")
def run_suite(tmp_path_factory: pytest.TempPathFactory) -> RunSuite:
    """Run the conformance suite over ``selected`` plugins, found on ``site`` (a directory
    of fake distributions put on ``PYTHONPATH``), from an empty directory, and read its
    report. ``args`` go to pytest; the run must not take ``timeout`` seconds."""

    def run(site: Path, selected: Sequence[str], *args: str, timeout: float = 300) -> SuiteRun:
        report_path = tmp_path_factory.mktemp("report") / "report.json"
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PYTEST_", "TACHIKOMA_")) and key != "PYTHONPATH"
        }
        env.update({"PYTHONPATH": str(site), PLUGINS_ENV_VAR: ",".join(selected)})
        command = [
            sys.executable,
            "-m",
            "pytest",
            f"--plugin={','.join(selected)}",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--conformance-report={report_path}",
            *args,
        ]
        result = subprocess.run(
            command,
            cwd=tmp_path_factory.mktemp("empty"),
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert report_path.exists(), result.stdout[-3000:] + result.stderr[-3000:]
        report = json.loads(report_path.read_text(encoding="utf-8"))
        return SuiteRun(result, report_path, report)

    return run


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A real ``redis-server`` on 127.0.0.1 for this module's tests.

    Missing, it fails the test under CI (``CI`` set: the README's test command installs
    it) and skips it elsewhere, saying how to install it.
    """
    executable = redis_server_path()
    if executable is None:
        message = "redis-server is not installed (apt-get install -y redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = RedisServer(executable)
    server.start()
    try:
        yield server
    finally:
        server.stop()
