"""The conformance suite's pytest machinery, registered only under ``--plugin``.

* selects the plugins (``all`` or names; unknown names are a usage error listing the
  known ones) and adds the trait module to what pytest collects, so the suite runs from
  any directory, alongside a project's own tests;
* parametrises every trait over the selected plugins (ids ``test_x[mock]``);
* gives traits their harness and backend, skipping traits whose capability the plugin
  does not declare, and scripted traits under ``--live``;
* ends the run with a plugin x area table of pass / fail / skip counts.
"""

from __future__ import annotations

import importlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import anyio
import pytest

from tachikoma_backends_core import registry
from tachikoma_backends_core.backend import Backend
from tachikoma_backends_core.errors import PluginLoadError

from .harness import ConformanceHarness

AREA_MARK = "tachikoma_area"
REQUIRES_MARK = "tachikoma_requires"
LIVE_MARK = "tachikoma_live"
_SELECTED = pytest.StashKey[list[str]]()
_LIVE = pytest.StashKey[bool]()


def activate(config: pytest.Config, selection: str, *, live: bool) -> None:
    """Select plugins, register the suite's hooks and fixtures, and collect the traits."""
    known = registry.names()
    if selection.strip() == "all":
        selected = known
        if not selected:
            raise pytest.UsageError(
                "--plugin=all: no backend plugins are installed "
                "(pip install tachikoma-backend-<name>)"
            )
    else:
        selected = list(dict.fromkeys(n.strip() for n in selection.split(",") if n.strip()))
        unknown = [name for name in selected if name not in known]
        if unknown or not selected:
            raise pytest.UsageError(
                f"--plugin: unknown backend plugin(s): {', '.join(unknown) or '(none given)'}; "
                f"known plugins: {', '.join(known) or 'none installed'}"
            )
    config.stash[_SELECTED] = selected
    config.stash[_LIVE] = live
    for line in (
        f"{AREA_MARK}(name): the conformance area a trait belongs to (summary table)",
        f"{REQUIRES_MARK}(*capabilities): skip unless the plugin declares them",
        f"{LIVE_MARK}: the trait also runs against the real service under --live",
    ):
        config.addinivalue_line("markers", line)
    config.pluginmanager.register(_Suite(config), "tachikoma-conformance")
    from . import traits

    config.args.append(str(Path(traits.__file__)))


def _load_harness(plugin_name: str, request: pytest.FixtureRequest) -> ConformanceHarness:
    plugin = registry.get(plugin_name)
    if plugin.harness is None:
        pytest.fail(
            f"plugin {plugin_name!r} declares no conformance harness "
            "(BackendPlugin(harness='package.module:HarnessClass'))",
            pytrace=False,
        )
    module_name, _, attribute = plugin.harness.partition(":")
    try:
        harness_type = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise PluginLoadError(
            f"plugin {plugin_name!r} harness {plugin.harness!r} cannot be loaded: {exc}",
            plugin=plugin_name,
        ) from exc
    if not (isinstance(harness_type, type) and issubclass(harness_type, ConformanceHarness)):
        raise PluginLoadError(
            f"plugin {plugin_name!r} harness {plugin.harness!r} is not a ConformanceHarness",
            plugin=plugin_name,
        )
    return harness_type(request)


class _Suite:
    """Hooks and fixtures of an active conformance run."""

    def __init__(self, config: pytest.Config) -> None:
        self.selected = config.stash[_SELECTED]
        self.live = config.stash[_LIVE]
        self.counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)

    # -- collection -----------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)  # first, so ids read test_x[mock-...]
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "tachikoma_plugin" in metafunc.fixturenames:
            metafunc.parametrize("tachikoma_plugin", self.selected, ids=self.selected)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            callspec = getattr(item, "callspec", None)
            plugin = callspec.params.get("tachikoma_plugin") if callspec else None
            if plugin is None:
                continue
            area = item.get_closest_marker(AREA_MARK)
            item.user_properties.append(("tachikoma_plugin", plugin))
            item.user_properties.append(("tachikoma_area", area.args[0] if area else "other"))

    # -- fixtures -------------------------------------------------------------------

    @pytest.fixture
    def tachikoma_live(self) -> bool:
        """Whether the run is ``--live``."""
        return self.live

    @pytest.fixture
    def tachikoma_harness(
        self, tachikoma_plugin: str, request: pytest.FixtureRequest
    ) -> ConformanceHarness:
        """The plugin's harness for this test; scripted traits are skipped under --live."""
        if self.live and request.node.get_closest_marker(LIVE_MARK) is None:
            pytest.skip("scripted trait: not run with --live")
        return _load_harness(tachikoma_plugin, request)

    @pytest.fixture
    def tachikoma_backend(
        self, tachikoma_harness: ConformanceHarness, request: pytest.FixtureRequest
    ) -> Backend:
        """A backend from the harness (scripted, or real under --live), capability-checked.

        Traits close it themselves with ``async with``: this fixture is synchronous, so it
        works whichever event loop the trait runs on.
        """
        if self.live:
            if not tachikoma_harness.supports_live:
                pytest.skip(f"{type(tachikoma_harness).__name__} does not support --live")
            missing = tachikoma_harness.missing_live_environment()
            if missing:
                pytest.skip(f"--live needs {', '.join(missing)} in the environment")
            backend = tachikoma_harness.create_live_backend()
        else:
            backend = tachikoma_harness.create_backend()
        capabilities = backend.info.capabilities
        for mark in request.node.iter_markers(REQUIRES_MARK):
            for capability in mark.args:
                if not getattr(capabilities, capability):
                    anyio.run(backend.aclose)  # unused: close it before skipping
                    pytest.skip(f"{backend.info.name} does not declare {capability}")
        return backend

    # -- reporting ------------------------------------------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        properties = dict(report.user_properties)
        if "tachikoma_plugin" not in properties:
            return
        key = (str(properties["tachikoma_plugin"]), str(properties["tachikoma_area"]))
        if report.when == "call" or not report.passed:
            # A failed teardown counts too: the trait passed, its clean-up did not.
            self.counts[key][report.outcome] += 1

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.counts:
            return
        terminalreporter.section("Tachikoma conformance")
        header = f"{'plugin':<14}{'area':<16}{'passed':>8}{'failed':>8}{'skipped':>9}"
        terminalreporter.write_line(header)
        for (plugin, area), counts in sorted(self.counts.items()):
            terminalreporter.write_line(
                f"{plugin:<14}{area:<16}{counts['passed']:>8}{counts['failed']:>8}"
                f"{counts['skipped']:>9}"
            )
