"""The release path and the install lines the docs print, run as a new user would.

``scripts/build_dists.py`` (what ``make dist`` runs) builds every distribution into a
temporary directory; then, concurrently, one fresh virtual environment per plugin runs
the docs' ``pip install --find-links dist/ tachikoma-backend-NAME`` with that directory
as ``dist/`` (core must come along, and nothing else of ours), and one more per plugin
runs every other "works today" line of the docs and READMEs naming it (``pip install
./core ./plugins/NAME`` and the extras), exactly as printed, from a copy of the
repository. Each page's next ``tachikoma`` command then runs in its plugin's venv.

A "works today" line installs from this repository (``./core``, ``./plugins/...``) or
from what ``make dist`` built (``--find-links dist/``); ``make dist`` itself is the
build above. The index lines (``pip install tachikoma-backend-claude``) work once
published, and every page that prints one must print a line that works today as well.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

# Building takes seconds; each venv is bounded by PIP_TIMEOUT per command, four at a time.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[1]
PLUGINS = ("mock", "claude", "openai", "ollama")
DISTRIBUTIONS = ("tachikoma-backends-core", *(f"tachikoma-backend-{name}" for name in PLUGINS))
PIP_TIMEOUT = 300
#: Pages whose local install lines build the plugin guide's Acme (test_acme_example.py).
ACME_PAGES = {"docs/plugins/writing-a-plugin.md", "docs/conformance.md"}
READMES = [REPO / "README.md", *REPO.glob("*/README.md"), *REPO.glob("plugins/*/README.md")]
PAGES = sorted(
    page
    for page in [*READMES, *(REPO / "docs").rglob("*.md")]
    if page.relative_to(REPO).as_posix() not in ACME_PAGES and ".venv" not in page.parts
)
CONSOLE_BLOCK = re.compile(r"^```console\n(.*?)^```", re.DOTALL | re.MULTILINE)
OTHER_BLOCK = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
INLINE_CODE = re.compile(r"`([^`]+)`")
LOCAL = re.compile(r"""^pip install (--find-links dist/ |['"]?\./)""")
VERSION_LITERAL = re.compile(r"""version\w*\s*(:\s*\w+\s*)?=\s*["']\d+\.\d+""", re.IGNORECASE)
FIND_LINKS = "pip install --find-links dist/ tachikoma-backend-{name}"
#: A page's next command, run without keys and with nothing listening for Ollama:
#: what its stderr must name when it fails (None: it must succeed).
NEXT_COMMAND_FAILURE = {
    "mock": None,
    "claude": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "ollama": "127.0.0.1:9",
}

CHECK = """\
import importlib, importlib.metadata as md, json, sys

name = sys.argv[1]
module = importlib.import_module(f"tachikoma_backend_{name}")
from tachikoma_backends_core import registry

ours = sorted(
    d.metadata["Name"].lower().replace("_", "-")
    for d in md.distributions()
    if d.metadata["Name"].lower().startswith("tachikoma")
)
print(json.dumps({
    "ours": ours,
    "available": [info.name for info in registry.available()],
    "core": md.version("tachikoma-backends-core"),
    "plugin_file": module.__file__,
}))
"""


def _clean_env(venv: Path | None = None) -> dict[str, str]:
    """This environment minus the dev venv and provider settings; ``venv`` first on PATH."""
    dropped = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "TACHIKOMA_PLUGINS", "PYTHONSTARTUP"}
    dropped |= {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OLLAMA_API_KEY", "AZURE_OPENAI_API_KEY"}
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    env["OLLAMA_HOST"] = "127.0.0.1:9"  # nothing listens there
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    return env


def _shell(command: str, *, cwd: Path, venv: Path) -> subprocess.CompletedProcess[str]:
    """``command`` through bash, as a reader types it, with ``venv`` activated."""
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=_clean_env(venv),
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
        check=False,
    )


def _show(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"command: {result.args}\nexit status: {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )


def _commands(page: Path) -> Iterator[str]:
    """Every ``pip install`` or ``tachikoma`` command of a page, in order: console lines
    (``$ ...``) and inline code spans, a span broken over two lines joined again."""
    text = page.read_text()
    blocks = {match.start(): match for match in CONSOLE_BLOCK.finditer(text)}
    position = 0
    for start in sorted(blocks):
        yield from _inline(text[position:start])
        for line in blocks[start].group(1).splitlines():
            if line.startswith("$ "):
                yield line[2:].strip()
        position = blocks[start].end()
    yield from _inline(text[position:])


def _inline(prose: str) -> Iterator[str]:
    for span in INLINE_CODE.findall(OTHER_BLOCK.sub("", prose)):
        command = " ".join(span.split())
        if command.startswith(("pip install", "tachikoma ", "make dist")):
            yield command


def _names(command: str) -> list[str]:
    """The plugins a command installs (by path or by distribution name)."""
    return [name for name in PLUGINS if re.search(rf"plugins/{name}\b|backend-{name}\b", command)]


@dataclass
class DocPage:
    """What one page prints: its local install lines, index lines and next command."""

    page: str
    today: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    next_command: str | None = None

    @property
    def plugin(self) -> str:
        named = [name for line in self.today for name in _names(line)]
        return named[0] if named else "mock"  # core alone or its extras: the mock's venv


def _doc_pages() -> list[DocPage]:
    pages = []
    for page in PAGES:
        doc = DocPage(page.relative_to(REPO).as_posix())
        for command in _commands(page):
            if LOCAL.match(command) or command == "make dist":
                doc.today.append(command)
            elif command.startswith("pip install") and "tachikoma-backend" in command:
                doc.published.append(command)
            elif command.startswith("tachikoma ") and doc.today and doc.next_command is None:
                doc.next_command = command
        if doc.today or doc.published:
            pages.append(doc)
    return pages


DOC_PAGES = _doc_pages()


def _copy_of_repo(target: Path) -> Path:
    """What a clone holds of the distributions, without caches or build output."""
    junk = shutil.ignore_patterns(
        ".venv", "__pycache__", "*.egg-info", "build", "dist", ".*_cache", ".hypothesis"
    )
    for source in ("core", "plugins"):
        shutil.copytree(REPO / source, target / source, ignore=junk)
    return target


@dataclass
class Venv:
    """A fresh venv, the commands run in it (in order) and what each printed."""

    root: Path
    runs: list[subprocess.CompletedProcess[str]] = field(default_factory=list)

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def run(self, command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        result = _shell(command, cwd=cwd, venv=self.root)
        self.runs.append(result)
        return result

    def check(self, name: str, cwd: Path) -> dict[str, object]:
        result = subprocess.run(
            [self.python, "-c", CHECK, name],
            cwd=cwd,
            env=_clean_env(self.root),
            capture_output=True,
            text=True,
            timeout=PIP_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, _show(result)
        checked: dict[str, object] = json.loads(result.stdout)
        return checked


def _new_venv(root: Path) -> Venv:
    subprocess.run([sys.executable, "-m", "venv", root], check=True, timeout=PIP_TIMEOUT)
    return Venv(root)


@dataclass
class Installs:
    dist: Path
    build: subprocess.CompletedProcess[str]
    from_dist: dict[str, tuple[Venv, dict[str, object]]]
    from_clone: dict[str, Venv]
    clone: Path


def _install_from_dist(base: Path, clone: Path, name: str) -> tuple[Venv, dict[str, object]]:
    venv = _new_venv(base / f"dist-{name}")
    result = venv.run(FIND_LINKS.format(name=name), cwd=clone)
    assert result.returncode == 0, _show(result)
    return venv, venv.check(name, cwd=base)


def _install_from_clone(base: Path, clone: Path, name: str) -> Venv:
    """Every distinct "works today" line for ``name``, bar the dist ones, in one venv."""
    venv = _new_venv(base / f"clone-{name}")
    lines = [line for doc in DOC_PAGES if doc.plugin == name for line in doc.today]
    lines += [line for doc in DOC_PAGES for line in doc.today if name in _names(line)]
    for line in dict.fromkeys(lines):
        if not line.startswith(("make dist", "pip install --find-links")):
            venv.run(line, cwd=clone)
    return venv


@pytest.fixture(scope="module")
def installs(tmp_path_factory: pytest.TempPathFactory) -> Installs:
    base = tmp_path_factory.mktemp("dist")
    dist = base / "built"
    build = subprocess.run(
        [sys.executable, REPO / "scripts" / "build_dists.py", "--out-dir", dist],
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
        check=False,
    )
    assert build.returncode == 0, _show(build)
    clone = _copy_of_repo(base / "clone")
    (clone / "dist").symlink_to(dist)  # what `make dist` leaves at the clone's root
    with ThreadPoolExecutor(max_workers=4) as pool:
        from_dist = {n: pool.submit(_install_from_dist, base, clone, n) for n in PLUGINS}
        from_clone = {n: pool.submit(_install_from_clone, base, clone, n) for n in PLUGINS}
        return Installs(
            dist,
            build,
            {name: future.result() for name, future in from_dist.items()},
            {name: future.result() for name, future in from_clone.items()},
            clone,
        )


def _metadata(wheel: Path) -> dict[str, list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        headers = HeaderParser().parsestr(archive.read(name).decode())
    return {key: headers.get_all(key) or [] for key in ("Name", "Version", "Requires-Dist")}


def test_one_wheel_and_one_sdist_per_distribution_and_twine_passes(installs: Installs) -> None:
    built = sorted(path.name for path in installs.dist.iterdir())
    expected = []
    for distribution in DISTRIBUTIONS:
        stem = f"{distribution.replace('-', '_')}-0.1.0"
        expected += [f"{stem}-py3-none-any.whl", f"{stem}.tar.gz"]
    assert built == sorted(expected)
    assert installs.build.stdout.count("PASSED") == len(expected), _show(installs.build)


def test_each_plugin_requires_a_compatible_core_and_has_one_version(installs: Installs) -> None:
    wheels = {_metadata(w)["Name"][0]: _metadata(w) for w in installs.dist.glob("*.whl")}
    core_version = wheels["tachikoma-backends-core"]["Version"][0]
    for name in PLUGINS:
        metadata = wheels[f"tachikoma-backend-{name}"]
        (core,) = [
            Requirement(line)
            for line in metadata["Requires-Dist"]
            if Requirement(line).name == "tachikoma-backends-core"
        ]
        assert str(core.specifier) == "<0.2,>=0.1", name
        assert core.specifier.contains(core_version), (name, core_version)
    # The version is written once per distribution: in its pyproject.toml, not in code.
    sources = [REPO / "core" / "src", *(REPO / "plugins").glob("*/src")]
    for source in sources:
        for path in source.rglob("*.py"):
            assert not VERSION_LITERAL.search(path.read_text()), path


@pytest.mark.parametrize("name", PLUGINS)
def test_a_plugin_installed_from_dist_brings_core_and_nothing_else(
    installs: Installs, name: str
) -> None:
    venv, checked = installs.from_dist[name]

    assert checked["ours"] == ["tachikoma-backend-" + name, "tachikoma-backends-core"]
    assert checked["available"] == [name]
    assert checked["core"] == "0.1.0"
    assert str(venv.root) in str(checked["plugin_file"])  # the wheel, not the source tree


def test_every_page_with_an_index_install_gives_one_that_works_today() -> None:
    assert DOC_PAGES, "no page prints an install line"
    for doc in DOC_PAGES:
        if doc.published:
            assert doc.today, f"{doc.page} prints only index installs: {doc.published}"
    find_links = {line for doc in DOC_PAGES for line in doc.today if "--find-links" in line}
    # The dist venvs above run exactly these: any other form would go untested.
    assert find_links <= {FIND_LINKS.format(name=name) for name in PLUGINS}, find_links


@pytest.mark.parametrize("name", PLUGINS)
def test_the_documented_clone_installs_work(installs: Installs, name: str) -> None:
    venv = installs.from_clone[name]

    assert venv.runs, f"no page gives a works-today install for {name}"
    for result in venv.runs:
        assert result.returncode == 0, _show(result)
    checked = venv.check(name, cwd=installs.clone.parent)
    assert checked["ours"] == ["tachikoma-backend-" + name, "tachikoma-backends-core"]
    assert checked["available"] == [name]


@pytest.mark.parametrize(
    "doc", [doc for doc in DOC_PAGES if doc.next_command], ids=lambda doc: doc.page
)
def test_the_page_s_next_command_runs_after_its_install(installs: Installs, doc: DocPage) -> None:
    assert doc.next_command is not None
    venv = installs.from_clone[doc.plugin]
    result = _shell(doc.next_command, cwd=installs.clone, venv=venv.root)

    hint = NEXT_COMMAND_FAILURE[doc.plugin]
    if hint is None:
        assert result.returncode == 0, _show(result)
        assert doc.plugin in result.stdout.lower(), _show(result)
    else:
        # No key, no server: the plugin loaded and said what it needs, in one line.
        assert result.returncode == 1, _show(result)
        assert hint in result.stderr, _show(result)
        assert "Traceback" not in result.stderr, _show(result)
