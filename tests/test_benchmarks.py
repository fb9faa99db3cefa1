"""The benchmark runner runs: a quick pass prints its ratios and writes its report.

Nothing here is about speed (no timing is asserted: machines are noisy). It runs the
command docs/performance.md gives for a quick check, with the report sent to a temporary
directory, and without the official SDKs or matplotlib: they are benchmark-only
dependencies, and ``make test`` must not need them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["-m", "benchmarks", "--quick", "--no-sdk", "--no-plot", "--plugins", "claude"]


def test_a_quick_run_prints_ratios_and_writes_its_report(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, *QUICK, "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "x floor" in result.stdout, "ours and the floor side by side, as a ratio"
    assert "x ours" in result.stdout, "the hook and the limiter against the bare stream"
    report = (tmp_path / "RESULTS.md").read_text()
    for section in ("## Targets", "## One long stream", "## Concurrent streams", "## Cold start"):
        assert section in report
    assert not (tmp_path / "results.png").exists()


def test_the_documented_quick_check_is_the_one_run_here() -> None:
    page = (ROOT / "docs" / "performance.md").read_text()
    assert "python -m " + " ".join(QUICK[1:]) in page
