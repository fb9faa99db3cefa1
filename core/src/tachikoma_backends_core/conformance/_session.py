"""The conformance suite's pytest machinery, registered only under ``--plugin``.

* selects the plugins (``all`` or names; unknown names are a usage error listing the
  known ones) and adds the trait modules to what pytest collects, so the suite runs from
  any directory, alongside a project's own tests;
* parametrises every trait over the selected plugins (ids ``test_x[mock]``);
* runs for each plugin only the traits of its declared contract version, refuses a
  plugin whose contract this core cannot drive, and turns the harness's
  ``expected_failures`` into strict xfails with their reasons;
* gives traits their harness and a backend (retries disabled, no installed hook
  extensions), skipping traits whose capability the plugin does not declare, and
  scripted traits under ``--live``;
* fails a plugin none of whose traits can run (no harness, a pytest plugin its harness
  needs missing, a contract this core cannot drive) once, saying why, and deselects the
  rest of its traits;
* guards the network while offline traits run: a non-loopback connection fails the trait;
* with ``--sockets``, collects the socket-mode traits (contract 3) and gives them the
  plugin's bytes (``tachikoma_wire``) to serve over real TCP;
* ends the run with a plugin x area table and the warnings, and writes the JSON report
  (``--conformance-report``); a ``--live`` run in which no live trait ran fails, unless
  ``--live-allow-skip``.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import anyio
import pytest

from tachikoma_backends_core import registry
from tachikoma_backends_core.backend import Backend
from tachikoma_backends_core.errors import ConfigurationError, PluginLoadError
from tachikoma_backends_core.hooks import Hooks
from tachikoma_backends_core.managed import ManagedBackend
from tachikoma_backends_core.registry import PluginInfo

from ._capabilities import declared_capabilities
from ._loading import harness_type
from ._network_guard import guard_network
from ._report import SkipCategory, TraitRecord, build_report, write_report
from .harness import ConformanceHarness

if TYPE_CHECKING:
    from .socket_mode import WireScript

AREA_MARK = "tachikoma_area"
REQUIRES_MARK = "tachikoma_requires"
LIVE_MARK = "tachikoma_live"
SINCE_MARK = "tachikoma_since"
_SETTINGS = pytest.StashKey[dict[str, Any]]()


def activate(
    config: pytest.Config,
    selection: str,
    *,
    live: bool,
    live_allow_skip: bool = False,
    report_path: str | None = None,
    sockets: bool = False,
) -> None:
    """Select plugins, register the suite's hooks and fixtures, and collect the traits
    (the socket-mode ones too with ``sockets``)."""
    if sockets:
        try:
            import psutil  # noqa: F401 - socket mode counts the client's sockets with it
        except ImportError:
            raise pytest.UsageError(
                "--sockets counts the sockets a plugin leaves open with psutil: pip install psutil"
            ) from None
    try:
        known = registry.names()
    except ConfigurationError as error:  # a malformed endpoints file, say
        raise pytest.UsageError(f"--plugin: {error.message}") from None
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
    config.stash[_SETTINGS] = {
        "selected": selected,
        "live": live,
        "live_allow_skip": live_allow_skip,
        "report": report_path,
    }
    for line in (
        f"{AREA_MARK}(name): the conformance area a trait belongs to (summary table)",
        f"{REQUIRES_MARK}(*capabilities): skip unless the plugin declares them",
        f"{LIVE_MARK}: the trait also runs against the real service under --live",
        f"{SINCE_MARK}(version): the Backend contract version that introduced the trait",
    ):
        config.addinivalue_line("markers", line)
    config.pluginmanager.register(_Suite(config), "tachikoma-conformance")
    from . import (
        traits,
        traits_fidelity,
        traits_retries,
        traits_stream_lifecycle,
        traits_transport,
    )

    trait_modules: tuple[Any, ...] = (
        traits,
        traits_stream_lifecycle,
        traits_retries,
        traits_fidelity,
        traits_transport,
    )
    if sockets:
        from . import traits_sockets

        trait_modules += (traits_sockets,)
    config.args.extend(str(Path(str(module.__file__))) for module in trait_modules)


def _plugin_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    plugin = callspec.params.get("tachikoma_plugin") if callspec else None
    return None if plugin is None else str(plugin)


def _since(item: pytest.Item) -> int:
    mark = item.get_closest_marker(SINCE_MARK)
    return int(mark.args[0]) if mark else 1


class _Suite:
    """Hooks and fixtures of an active conformance run."""

    def __init__(self, config: pytest.Config) -> None:
        settings = config.stash[_SETTINGS]
        self.selected: list[str] = settings["selected"]
        self.live: bool = settings["live"]
        self.live_allow_skip: bool = settings["live_allow_skip"]
        # plugin -> why none of its traits can run (no harness, a missing pytest plugin):
        # said once, by one failing trait, instead of by every trait.
        self.blockers: dict[str, str] = {}
        self.live_ran_nothing = False
        self.report_path: str | None = settings["report"]
        self.infos: dict[str, PluginInfo] = {}
        for name in self.selected:
            try:
                self.infos[name] = registry.default_registry.info(name)
            except PluginLoadError as error:
                self.infos[name] = PluginInfo(name, None, None, "?", error=error)
        self.records: dict[str, TraitRecord] = {}
        self.skip_categories: dict[str, SkipCategory] = {}
        self.warnings: dict[str, list[str]] = defaultdict(list)
        self.violations: dict[str, list[str]] = {}
        self.reported_violations: dict[str, int] = {}
        self.refused_xfails: dict[str, str] = {}

    # -- collection -----------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)  # first, so ids read test_x[mock-...]
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "tachikoma_plugin" in metafunc.fixturenames:
            metafunc.parametrize("tachikoma_plugin", self.selected, ids=self.selected)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        expected: dict[str, dict[str, str]] = {}
        traits: set[str] = set()
        scripted_with_httpx: set[str] = set()
        for item in items:
            plugin = _plugin_of(item)
            if plugin is None:
                continue
            area = item.get_closest_marker(AREA_MARK)
            item.user_properties.append(("tachikoma_plugin", plugin))
            item.user_properties.append(("tachikoma_area", area.args[0] if area else "other"))
            if plugin not in expected:
                try:
                    harness_class = harness_type(plugin)
                    expected[plugin] = dict(harness_class.expected_failures)
                    missing = _missing_pytest_plugins(harness_class)
                    if missing:
                        self.blockers[plugin] = missing
                    elif "pytest_httpx" in harness_class.requires_pytest_plugins:
                        scripted_with_httpx.add(plugin)
                except PluginLoadError as error:
                    expected[plugin] = {}
                    self.blockers[plugin] = error.message
            trait = getattr(item, "originalname", item.name)
            traits.add(trait)
            if plugin in scripted_with_httpx:
                # A request nobody scripted (a hidden retry's, say) already fails the
                # trait with its cause; pytest-httpx need not repeat it at teardown.
                item.add_marker(pytest.mark.httpx_mock(assert_all_requests_were_expected=False))
            reason = expected[plugin].get(trait)
            if reason is None:
                continue
            if not reason.strip():
                self.refused_xfails[item.nodeid] = (
                    f"{plugin}: expected_failures[{trait!r}] has no reason; "
                    "an expected failure must say why"
                )
            else:
                item.add_marker(pytest.mark.xfail(reason=f"{plugin}: {reason}", strict=True))
        for plugin, declared in expected.items():
            for unknown in sorted(set(declared) - traits):  # a typo would silently run it
                self.warnings[plugin].append(
                    f"expected_failures names {unknown!r}, which is not a collected trait"
                )
        self._keep_one_item_per_blocked_plugin(config, items)

    def _keep_one_item_per_blocked_plugin(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """A plugin none of whose traits can run keeps one, which fails saying why."""
        if not self.blockers:
            return
        keep, deselected, failing = [], [], set()
        for item in items:
            plugin = _plugin_of(item)
            if plugin in self.blockers:
                if plugin in failing:
                    deselected.append(item)
                    continue
                failing.add(plugin)
            keep.append(item)
        items[:] = keep
        if deselected:
            config.hook.pytest_deselected(items=deselected)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # After -k/-m/--deselect: the report lists only the traits that were to run.
        for item in session.items:
            plugin = _plugin_of(item)
            if plugin is None:
                continue
            properties = dict(item.user_properties)
            trait = getattr(item, "originalname", item.name)
            area = str(properties.get("tachikoma_area", "other"))
            self.records[item.nodeid] = TraitRecord(item.nodeid, plugin, trait, area, _since(item))

    # -- fixtures -------------------------------------------------------------------

    @functools.cache  # noqa: B019 - one suite per session; the cache dies with it
    def _config_fields(self, plugin: str) -> frozenset[str]:
        return frozenset(registry.get(plugin).config_model.model_fields)

    def _skip(
        self, request: pytest.FixtureRequest, category: SkipCategory, reason: str
    ) -> NoReturn:
        self.skip_categories[request.node.nodeid] = category
        pytest.skip(reason)

    @pytest.fixture
    def tachikoma_live(self) -> bool:
        """Whether the run is ``--live``."""
        return self.live

    @pytest.fixture
    def tachikoma_plugin_info(self, tachikoma_plugin: str) -> PluginInfo:
        """The plugin's metadata: distribution, version and manifest."""
        return self.infos[tachikoma_plugin]

    @pytest.fixture
    def tachikoma_warn(self, tachikoma_plugin: str) -> Callable[[str], None]:
        """Record a warning for the plugin (summary and report), without failing."""

        def warn(message: str) -> None:
            if message not in self.warnings[tachikoma_plugin]:
                self.warnings[tachikoma_plugin].append(message)

        return warn

    @pytest.fixture
    def tachikoma_harness(
        self, tachikoma_plugin: str, request: pytest.FixtureRequest
    ) -> Iterator[ConformanceHarness]:
        """The plugin's harness for this test; scripted traits are skipped under --live."""
        node = request.node
        if node.nodeid in self.refused_xfails:
            pytest.fail(self.refused_xfails[node.nodeid], pytrace=False)
        info = self.infos[tachikoma_plugin]
        if info.error is not None:
            pytest.fail(info.error.message, pytrace=False)
        if tachikoma_plugin in self.blockers:
            pytest.fail(
                f"{tachikoma_plugin}: no trait can run: {self.blockers[tachikoma_plugin]}",
                pytrace=False,
            )
        since = _since(node)
        if since > info.manifest.contract:
            self._skip(
                request,
                "not_in_contract",
                f"trait of Backend contract {since}; {tachikoma_plugin} implements "
                f"contract {info.manifest.contract}",
            )
        if self.live and node.get_closest_marker(LIVE_MARK) is None:
            self._skip(request, "scripted_only", "scripted trait: not run with --live")
        try:
            harness = harness_type(tachikoma_plugin)(request)
        except PluginLoadError as error:
            pytest.fail(error.message, pytrace=False)
        if self.live:
            yield harness
            return
        violations = self.violations.setdefault(node.nodeid, [])
        with guard_network(violations):
            yield harness

    @pytest.fixture
    def tachikoma_backend(
        self,
        tachikoma_harness: ConformanceHarness,
        tachikoma_plugin: str,
        request: pytest.FixtureRequest,
    ) -> Backend:
        """A backend from the harness (scripted, or real under --live), capability-checked.

        Retries are disabled (``max_retries=0``, a setting every plugin config has, and no
        core retry loop) so that every scripted failure reaches the trait, and installed
        hook extensions are left out so that they cannot change what traits see.

        Traits close it themselves with ``async with``: this fixture is synchronous, so it
        works whichever event loop the trait runs on.
        """
        if self.live:
            if not tachikoma_harness.supports_live:
                self._skip(
                    request, "other", f"{type(tachikoma_harness).__name__} does not support --live"
                )
            missing = tachikoma_harness.missing_live_environment()
            if missing:
                self._skip(
                    request, "other", f"--live needs {', '.join(missing)} in the environment"
                )
            created = tachikoma_harness.create_live_backend()
        else:
            created = tachikoma_harness.create_backend(max_retries=0)
        backend = ManagedBackend(created, retry_policy=None, hooks=Hooks())
        declared = declared_capabilities(self.infos[tachikoma_plugin], backend)
        for mark in request.node.iter_markers(REQUIRES_MARK):
            for capability in mark.args:
                if capability not in declared:
                    anyio.run(backend.aclose)  # unused: close it before skipping
                    self._skip(
                        request,
                        "not_declared",
                        f"{backend.info.name} does not declare {capability}",
                    )
        return backend

    @pytest.fixture
    def tachikoma_wire(
        self, tachikoma_harness: ConformanceHarness, request: pytest.FixtureRequest
    ) -> WireScript:
        """The plugin's own bytes, for socket mode: its harness must be an `HttpxHarness`."""
        from tachikoma_backends_core.http import HttpxHarness

        from .socket_mode import WireScript

        if not isinstance(tachikoma_harness, HttpxHarness):
            self._skip(
                request,
                "other",
                f"socket mode serves an HttpxHarness's bytes; {type(tachikoma_harness).__name__} "
                "is not one",
            )
        return WireScript(tachikoma_harness)

    # -- reporting ------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        violations = self.violations.get(item.nodeid, [])
        unreported = violations[self.reported_violations.get(item.nodeid, 0) :]
        # In whichever phase they happened (setup, call or teardown), once each.
        if unreported and (report.when == "call" or report.passed):
            self.reported_violations[item.nodeid] = len(violations)
            more = f" (and {len(unreported) - 1} more)" if len(unreported) > 1 else ""
            report.outcome = "failed"
            report.longrepr = f"network guard: {unreported[0]}{more}"
            if hasattr(report, "wasxfail"):  # not the expected failure: a different one
                del report.wasxfail
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = self.records.get(report.nodeid)
        if record is not None:
            self._record(record, report)

    def _record(self, record: TraitRecord, report: pytest.TestReport) -> None:
        record.duration += report.duration
        record.phases.append(report.when)
        if record.outcome == "failed":
            return  # the first failure is the story; later phases do not change it
        if hasattr(report, "wasxfail"):
            record.outcome, record.reason = "xfailed", str(report.wasxfail)
        elif report.failed:
            record.outcome, record.reason = "failed", _failure_message(report)
        elif report.skipped:
            record.outcome = "skipped"
            record.reason = _skip_reason(report)
            record.skip_category = self.skip_categories.get(
                report.nodeid, _category_from_reason(record.reason)
            )

    def _live_traits_ran(self) -> bool:
        # Under --live the scripted traits skip; a live one that was not skipped ran.
        return any(record.outcome != "skipped" for record in self._ran())

    def _ran(self) -> list[TraitRecord]:
        return [record for record in self.records.values() if record.phases]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        # One outcome per test id, the report's: a trait whose teardown failed is failed.
        counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for record in self._ran():
            counts[record.plugin, record.area][record.outcome] += 1
        if counts:
            terminalreporter.section("Tachikoma conformance")
            header = (
                f"{'plugin':<14}{'area':<16}{'passed':>8}{'failed':>8}{'xfailed':>9}{'skipped':>9}"
            )
            terminalreporter.write_line(header)
            for (plugin, area), tally in sorted(counts.items()):
                terminalreporter.write_line(
                    f"{plugin:<14}{area:<16}{tally['passed']:>8}{tally['failed']:>8}"
                    f"{tally['xfailed']:>9}{tally['skipped']:>9}"
                )
            for plugin, messages in sorted(self.warnings.items()):
                for message in messages:
                    terminalreporter.write_line(f"warning: {plugin}: {message}")
        if self.report_path:
            terminalreporter.write_line(f"conformance report written to {self.report_path}")
        if self.live_ran_nothing:
            terminalreporter.write_line(
                "--live ran no live trait (every one was skipped: credentials missing, or no "
                "plugin supports --live): failing the run; pass --live-allow-skip to allow it",
                red=True,
            )

    @pytest.hookimpl(tryfirst=True)  # before the terminal summary mentions it
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.live and not self.live_allow_skip and not self._live_traits_ran():
            self.live_ran_nothing = True
            if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.report_path:
            report = build_report(self.infos, self._ran(), self.warnings, live=self.live)
            write_report(Path(self.report_path), report)


def _missing_pytest_plugins(harness_class: type[ConformanceHarness]) -> str | None:
    """What the harness scripts its provider with that is not installed, with the hint."""
    import importlib.util

    missing = [
        requirement
        for module, requirement in harness_class.requires_pytest_plugins.items()
        if importlib.util.find_spec(module) is None
    ]
    if not missing:
        return None
    return (
        f"{harness_class.__name__} scripts the provider with "
        f"{', '.join(missing)}, which is not installed: pip install "
        + " ".join(f"'{requirement}'" for requirement in missing)
        + " (or the plugin's [conformance] extra)"
    )


def _failure_message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    text = str(message if message is not None else report.longrepr)
    return text.strip() or f"failed in {report.when}"


def _category_from_reason(reason: str) -> SkipCategory:
    """Categorise skips raised inside trait bodies (the fixtures record theirs)."""
    if "does not declare" in reason:
        return "not_declared"
    if "only with --live" in reason:
        return "live_only"
    return "other"


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
        return reason.removeprefix("Skipped: ")
    return str(longrepr)
