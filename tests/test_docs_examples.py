"""Every code example in the README and docs runs as shown.

``python`` blocks run, each in a fresh namespace, in one subprocess per page; ``pycon``
blocks run through doctest, sharing one namespace per page. A block with a title
(```` ```python title="src/..." ````) is a file of the plugin guide's Acme package:
``test_acme_example.py`` assembles, installs and runs those. The untitled blocks of the
two pages that build Acme are fragments of its files, so they are compiled, not run.
"""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
PACKAGE_FILE_PAGES = {"docs/plugins/writing-a-plugin.md", "docs/conformance.md"}
#: Pages whose examples need a Redis: test_shared_quota.py runs them against a real one.
REDIS_PAGES = {"docs/concepts/many-workers.md"}
BLOCK = re.compile(r"^```(python|pycon)\n(.*?)^```", re.DOTALL | re.MULTILINE)

RUNNER = """
import sys
for index, source in enumerate(sys.argv[1:]):
    exec(compile(source, f"<block {index}>", "exec"), {"__name__": "__main__"})
"""


def _blocks(page: Path, language: str) -> list[str]:
    return [code for lang, code in BLOCK.findall(page.read_text()) if lang == language]


def _page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p, "python")], ids=_page_id)
def test_python_blocks_run(page: Path) -> None:
    blocks = _blocks(page, "python")
    if _page_id(page) in PACKAGE_FILE_PAGES | REDIS_PAGES:
        for index, source in enumerate(blocks):
            compile(source, f"{page.name} block {index}", "exec")
        return
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, *blocks],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p, "pycon")], ids=_page_id)
def test_pycon_blocks_pass_as_doctests(page: Path) -> None:
    # A page's sessions build on each other, as a reader's do: run them as one doctest.
    source = "\n".join(_blocks(page, "pycon"))
    test = doctest.DocTestParser().get_doctest(source, {}, page.name, str(page), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    assert runner.failures == 0, f"{runner.failures} doctest example(s) failed in {page.name}"
