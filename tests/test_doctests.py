"""Every ``>>>`` example in the source docstrings runs as shown (stdlib doctest).

Modules are found by walking each package in `PACKAGES` and imported by name (pytest runs
with ``--import-mode=importlib``, so nothing here imports by file path). Each module with
at least one example is one test, its id the module's name; examples marked
``# doctest: +SKIP`` stay skipped. A listed package that is not installed shows up as a
skipped test, and `test_examples_are_collected` fails if discovery finds too few
examples, so the suite cannot pass by running nothing.

Importing the conformance suite's ``plugin`` and ``_session`` only defines functions and
classes, and ``cli`` runs only under ``__main__``, so they are checked like the rest; the
trait modules are not imported (see `EXCLUDED_PREFIXES`).
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import io
import pkgutil

import pytest

#: The distributions' top-level packages whose examples must pass: add new plugins here.
PACKAGES = (
    "tachikoma_backends_core",
    "tachikoma_backend_mock",
    "tachikoma_backend_claude",
    "tachikoma_backend_openai",
    "tachikoma_backend_ollama",
)
OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
#: Modules not imported here, by name prefix. The conformance trait modules apply the
#: suite's marks (``tachikoma_area``...) at import time, and those are registered only
#: under ``--plugin``: with ``--strict-markers`` their import fails collection. They hold
#: trait tests, not docstring examples.
EXCLUDED_PREFIXES = ("tachikoma_backends_core.conformance.traits",)
#: Fewer runnable examples than this means discovery broke (over 90 today).
MIN_EXAMPLES = 80


def _walk_error(name: str) -> None:
    # Called by walk_packages from inside its ``except``: the original error is chained.
    raise ImportError(f"{name} cannot be imported")


def _module_names(package_name: str) -> list[str]:
    """The package and every module and subpackage under it, by name."""
    package = importlib.import_module(package_name)
    walked = pkgutil.walk_packages(package.__path__, f"{package_name}.", onerror=_walk_error)
    names = [package_name, *sorted(info.name for info in walked)]
    return [name for name in names if not name.startswith(EXCLUDED_PREFIXES)]


def _doctests(module_name: str) -> list[doctest.DocTest]:
    """The module's docstring examples, found afresh (running a test clears its globals)."""
    module = importlib.import_module(module_name)
    return [test for test in doctest.DocTestFinder().find(module) if test.examples]


INSTALLED = [name for name in PACKAGES if importlib.util.find_spec(name) is not None]
MODULES = [name for package in INSTALLED for name in _module_names(package) if _doctests(name)]
PARAMS = [
    *(pytest.param(name, id=name) for name in MODULES),
    *(
        pytest.param(name, id=name, marks=pytest.mark.skip(reason=f"{name} is not installed"))
        for name in PACKAGES
        if name not in INSTALLED
    ),
]


@pytest.mark.parametrize("module_name", PARAMS)
def test_docstring_examples_pass(module_name: str) -> None:
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    report = io.StringIO()
    for test in _doctests(module_name):
        runner.run(test, out=report.write)
    assert runner.failures == 0, (
        f"{runner.failures} of {runner.tries} example(s) failed in {module_name}:\n"
        f"{report.getvalue()}"
    )


def test_examples_are_collected() -> None:
    runnable = [
        example
        for name in MODULES
        for test in _doctests(name)
        for example in test.examples
        if not example.options.get(doctest.SKIP)
    ]
    assert len(runnable) > MIN_EXAMPLES, (
        f"only {len(runnable)} runnable docstring examples found in {len(MODULES)} modules "
        f"of {', '.join(INSTALLED) or 'no installed package'}: is discovery broken?"
    )
