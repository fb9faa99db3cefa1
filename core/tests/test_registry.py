"""The plugin registry: metadata-only listing, lazy loading, and per-plugin failures.

Fake plugin distributions come from the ``site`` fixture (``conftest.py``).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tachikoma_backends_core.backend import Backend
from tachikoma_backends_core.completion import CompletionRequest
from tachikoma_backends_core.errors import PluginLoadError
from tachikoma_backends_core.messages import Message
from tachikoma_backends_core.plugin import BackendPlugin
from tachikoma_backends_core.registry import (
    PLUGINS_ENV_VAR,
    PluginInfo,
    Registry,
    default_registry,
)

if TYPE_CHECKING:
    from conftest import FakeSite

GOOD_PLUGIN = """\
from __future__ import annotations

from tachikoma_backends_core import (
    Backend,
    BackendCapabilities,
    BackendInfo,
    BackendPlugin,
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
    CompletionStream,
    FinishReason,
    PluginConfig,
    Usage,
)


class GoodConfig(PluginConfig):
    model: str = "good-1"
    reply: str = "good reply"


class GoodBackend(Backend):
    def __init__(self, config: GoodConfig) -> None:
        self.config = config

    @property
    def info(self) -> BackendInfo:
        return BackendInfo(
            name={name!r},
            version="1.0",
            default_model=self.config.model,
            available_models=[self.config.model],
            capabilities=BackendCapabilities(max_context_tokens=1000, max_output_tokens=100),
        )

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        return CompletionResponse(
            content=self.config.reply, finish_reason=FinishReason.STOP, model=self.config.model
        )

    async def complete_stream(self, request: CompletionRequest) -> CompletionStream:
        chunks = [
            CompletionChunk.text(self.config.reply),
            CompletionChunk.final_chunk(Usage.new(1, 1), FinishReason.STOP),
        ]
        return CompletionStream.from_chunks(chunks, model=self.config.model)

    async def health_check(self) -> bool:
        return True


plugin = BackendPlugin(name={name!r}, config_model=GoodConfig, factory=GoodBackend)
"""


def good_plugin_source(plugin_name: str) -> str:
    """A working plugin module whose ``BackendPlugin`` is called ``plugin_name``."""
    return GOOD_PLUGIN.format(name=plugin_name)


@dataclass
class Fakes:
    """The standard set of fake plugins, and the module name of each."""

    site: FakeSite
    good: str
    broken: str
    missing_import: str
    wrong_type: str
    dup_a: str
    dup_b: str
    mismatch: str

    @property
    def all_modules(self) -> list[str]:
        return [
            self.good,
            self.broken,
            self.missing_import,
            self.wrong_type,
            self.dup_a,
            self.dup_b,
            self.mismatch,
        ]


# plugin name -> (distribution, version) of the standard fakes
FAKE_PLUGINS: dict[str, tuple[str, str]] = {
    "goodtest": ("tkt-good", "1.2.3"),
    "brokentest": ("tkt-broken", "0.1.0"),
    "missingtest": ("tkt-missing", "0.2.0"),
    "wrongtype": ("tkt-wrongtype", "0.3.0"),
    "mismatch": ("tkt-mismatch", "0.4.0"),
}
DUP_DISTRIBUTIONS = {"dup-a": "1.0", "dup-b": "2.0"}
FAKE_NAMES = {*FAKE_PLUGINS, "duptest"}


@pytest.fixture
def fakes(site: FakeSite) -> Fakes:
    f = Fakes(
        site=site,
        good=site.module("tkt_good"),
        broken=site.module("tkt_broken"),
        missing_import=site.module("tkt_missing"),
        wrong_type=site.module("tkt_wrongtype"),
        dup_a=site.module("tkt_dup_a"),
        dup_b=site.module("tkt_dup_b"),
        mismatch=site.module("tkt_mismatch"),
    )
    modules = {
        "goodtest": (f.good, good_plugin_source("goodtest")),
        "brokentest": (f.broken, 'raise ImportError("missing dependency: libfoo")\n'),
        "missingtest": (
            f.missing_import,
            f"import tkt_no_such_module_{site.suffix}\n\nplugin = None\n",
        ),
        "wrongtype": (f.wrong_type, "plugin = 42\n"),
        "mismatch": (f.mismatch, good_plugin_source("other")),
    }
    for plugin_name, (dist, version) in FAKE_PLUGINS.items():
        module, source = modules[plugin_name]
        site.make_dist(dist, version, {plugin_name: f"{module}:plugin"}, {module: source})
    for (dist, version), module in zip(DUP_DISTRIBUTIONS.items(), [f.dup_a, f.dup_b], strict=True):
        site.make_dist(
            dist, version, {"duptest": f"{module}:plugin"}, {module: good_plugin_source("duptest")}
        )
    return f


def ours(infos: list[PluginInfo]) -> list[PluginInfo]:
    """The fake plugins among ``infos`` (whatever else is installed is left out)."""
    return [info for info in infos if info.name in FAKE_NAMES]


def by_name(infos: list[PluginInfo]) -> dict[str, PluginInfo]:
    result = {}
    for info in ours(infos):
        assert info.name not in result or info.name == "duptest", info
        result[info.name] = info
    return result


def imported(modules: list[str]) -> list[str]:
    return [module for module in modules if module in sys.modules]


# --- listing --------------------------------------------------------------------------------


def test_available_lists_every_fake_plugin_with_its_metadata(fakes: Fakes) -> None:
    infos = ours(Registry().available())

    singles = {info.name: info for info in infos if info.name != "duptest"}
    assert set(singles) == set(FAKE_PLUGINS)
    modules = {
        "goodtest": fakes.good,
        "brokentest": fakes.broken,
        "missingtest": fakes.missing_import,
        "wrongtype": fakes.wrong_type,
        "mismatch": fakes.mismatch,
    }
    for name, (dist, version) in FAKE_PLUGINS.items():
        assert singles[name] == PluginInfo(
            name=name, distribution=dist, version=version, entry_point=f"{modules[name]}:plugin"
        )
        # Listing cannot see import or type problems; only loading (check) can.
        assert singles[name].ok
        assert singles[name].describe() == f"{dist} {version}"

    dups = sorted((i.distribution, i.version, i.entry_point) for i in infos if i.name == "duptest")
    assert dups == [
        ("dup-a", "1.0", f"{fakes.dup_a}:plugin"),
        ("dup-b", "2.0", f"{fakes.dup_b}:plugin"),
    ]


def test_available_is_sorted_by_name_and_names_matches(fakes: Fakes) -> None:
    registry = Registry()
    listed = [info.name for info in registry.available()]
    assert listed == sorted(listed)
    assert registry.names() == sorted(set(listed))
    assert set(registry.names()) >= FAKE_NAMES


def test_listing_imports_no_plugin_module(fakes: Fakes) -> None:
    registry = Registry()
    assert imported(fakes.all_modules) == []

    registry.available()
    registry.names()

    assert imported(fakes.all_modules) == []
    # Loading one plugin imports that plugin's module and no other.
    registry.get("goodtest")
    assert imported(fakes.all_modules) == [fakes.good]


def test_listing_ignores_entry_points_of_other_groups(site: FakeSite) -> None:
    module = site.module("tkt_other_group")
    site.make_dist("tkt-other-group", "1.0", {}, {module: good_plugin_source("othergroup")})
    entry_points = site.path / "tkt_other_group-1.0.dist-info" / "entry_points.txt"
    entry_points.write_text(f"[console_scripts]\nothergroup = {module}:plugin\n")

    assert "othergroup" not in Registry().names()
    assert "othergroup" in Registry(group="console_scripts").names()


# --- loading a good plugin ------------------------------------------------------------------


def test_get_returns_the_backend_plugin(fakes: Fakes) -> None:
    plugin = Registry().get("goodtest")

    assert isinstance(plugin, BackendPlugin)
    assert plugin.name == "goodtest"
    assert plugin is sys.modules[fakes.good].plugin


def test_create_returns_a_configured_backend(fakes: Fakes) -> None:
    registry = Registry()

    backend = registry.create("goodtest")
    assert isinstance(backend, Backend)
    assert backend.info.name == "goodtest"
    assert backend.info.default_model == "good-1"

    configured = registry.create("goodtest", model="good-2")
    assert configured.info.default_model == "good-2"


@pytest.mark.anyio
async def test_created_backend_completes(fakes: Fakes) -> None:
    request = CompletionRequest(messages=[Message.user("hi")])
    async with Registry().create("goodtest", reply="hello there") as backend:
        response = await backend.complete(request)
        async with await backend.complete_stream(request) as stream:
            streamed = await stream.collect()
    assert response.text == "hello there"
    assert streamed.text == "hello there"


def test_get_caches_the_loaded_plugin(fakes: Fakes) -> None:
    registry = Registry()
    first = registry.get("goodtest")
    # Forget the module: a second get must come from the registry's cache, not an import.
    del sys.modules[fakes.good]

    second = registry.get("goodtest")

    assert second is first
    assert fakes.good not in sys.modules


# --- broken plugins -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fragments"),
    [
        pytest.param(
            "brokentest",
            ["failed to load", "ImportError: missing dependency: libfoo"],
            id="import-error",
        ),
        pytest.param(
            "missingtest",
            ["failed to load", "ModuleNotFoundError", "No module named 'tkt_no_such_module_"],
            id="missing-module",
        ),
        pytest.param(
            "wrongtype",
            ["names an object of type int, not a tachikoma_backends_core.BackendPlugin"],
            id="wrong-type",
        ),
        pytest.param(
            "mismatch",
            ["BackendPlugin named 'other'", "the two names must match"],
            id="name-mismatch",
        ),
    ],
)
def test_broken_plugin_raises_plugin_load_error(
    fakes: Fakes, name: str, fragments: list[str]
) -> None:
    dist, version = FAKE_PLUGINS[name]
    registry = Registry()

    with pytest.raises(PluginLoadError) as caught:
        registry.get(name)

    error = caught.value
    assert error.plugin == name
    assert error.distribution == dist
    assert repr(name) in error.message
    assert f"{dist} {version}" in error.message
    for fragment in fragments:
        assert fragment in error.message
    # str() adds the structured facts after the message.
    assert f"plugin={name}" in str(error)
    assert f"distribution={dist}" in str(error)


@pytest.mark.parametrize(
    ("name", "cause_type"),
    [("brokentest", ImportError), ("missingtest", ModuleNotFoundError)],
)
def test_import_failure_is_chained_as_the_cause(
    fakes: Fakes, name: str, cause_type: type[ImportError]
) -> None:
    with pytest.raises(PluginLoadError) as caught:
        Registry().get(name)

    assert type(caught.value.__cause__) is cause_type
    if name == "brokentest":
        assert str(caught.value.__cause__) == "missing dependency: libfoo"


@pytest.mark.parametrize("name", ["brokentest", "missingtest", "wrongtype", "mismatch", "duptest"])
def test_a_broken_plugin_does_not_break_the_others(fakes: Fakes, name: str) -> None:
    registry = Registry()
    with pytest.raises(PluginLoadError):
        registry.get(name)

    assert set(by_name(registry.available())) == FAKE_NAMES
    assert registry.get("goodtest").name == "goodtest"
    assert isinstance(registry.create("goodtest"), Backend)
    # Failures are not cached as successes: asking again fails again, the same way.
    with pytest.raises(PluginLoadError):
        registry.get(name)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("assert False, 'self-check failed'\n", "AssertionError: self-check failed"),
        ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
        (
            "class Bail(BaseException):\n    pass\nraise Bail('not today')\n",
            "Bail: not today",
        ),
    ],
    ids=["assertion-error", "sys-exit", "base-exception"],
)
def test_import_time_assert_or_exit_is_a_plugin_load_error(
    fakes: Fakes, source: str, expected: str
) -> None:
    # stevedore re-raises AssertionError instead of reporting it; SystemExit is no Exception.
    module = fakes.site.module("tkt_asserting")
    fakes.site.make_dist(
        "tkt-asserting", "1.0", {"asserting": f"{module}:plugin"}, {module: source}
    )
    registry = Registry()

    with pytest.raises(PluginLoadError, match=expected):
        registry.get("asserting")
    checked = {info.name: info for info in registry.check()}
    assert checked["asserting"].error is not None
    assert checked["goodtest"].error is None


def test_a_malformed_entry_points_file_anywhere_breaks_no_discovery(fakes: Fakes) -> None:
    # One unrelated distribution whose entry_points.txt does not parse made
    # importlib.metadata.entry_points() raise a TypeError for every group.
    broken = fakes.site.path / "unrelated_broken-0.1.dist-info"
    broken.mkdir()
    (broken / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: unrelated-broken\nVersion: 0.1\n"
    )
    (broken / "entry_points.txt").write_text("[console_scripts]\nthis line has no equals sign\n")
    registry = Registry()

    assert set(by_name(registry.available())) == FAKE_NAMES
    assert registry.get("goodtest").name == "goodtest"
    assert isinstance(registry.create("goodtest"), Backend)


@pytest.mark.timeout(10)
def test_a_plugin_may_use_the_registry_while_it_is_imported(fakes: Fakes) -> None:
    # E.g. a plugin that wraps another: loading must not deadlock on a registry lock.
    module = fakes.site.module("tkt_wrapper")
    source = (
        "from tachikoma_backends_core import registry\n"
        "inner = registry.get('goodtest')\n"
        "from dataclasses import replace\n"
        "plugin = replace(inner, name='wrapper')\n"
    )
    fakes.site.make_dist("tkt-wrapper", "1.0", {"wrapper": f"{module}:plugin"}, {module: source})

    assert default_registry.get("wrapper").name == "wrapper"


def test_failed_import_can_succeed_once_fixed(site: FakeSite) -> None:
    module = site.module("tkt_flaky")
    site.make_dist(
        "tkt-flaky",
        "1.0",
        {"flaky": f"{module}:plugin"},
        {module: "raise ImportError('not yet')\n"},
    )
    registry = Registry()
    with pytest.raises(PluginLoadError, match="not yet"):
        registry.get("flaky")

    (site.path / f"{module}.py").write_text(good_plugin_source("flaky"))
    importlib.invalidate_caches()

    assert registry.get("flaky").name == "flaky"


# --- duplicates -----------------------------------------------------------------------------


def _assert_names_both_dups(error: PluginLoadError) -> None:
    assert error.plugin == "duptest"
    assert "'duptest'" in error.message
    assert "more than one distribution" in error.message
    assert "dup-a 1.0" in error.message
    assert "dup-b 2.0" in error.message
    assert error.distribution is not None
    assert sorted(error.distribution.split(", ")) == ["dup-a", "dup-b"]


def test_duplicate_name_marks_both_entries_in_available(fakes: Fakes) -> None:
    infos = [info for info in Registry().available() if info.name == "duptest"]

    assert sorted(info.distribution or "" for info in infos) == ["dup-a", "dup-b"]
    for info in infos:
        assert not info.ok
        assert isinstance(info.error, PluginLoadError)
        _assert_names_both_dups(info.error)
    # Only the conflicting name is affected.
    others = [info for info in ours(Registry().available()) if info.name != "duptest"]
    assert others
    assert all(info.ok for info in others)


def test_get_of_duplicate_name_names_both_distributions(fakes: Fakes) -> None:
    registry = Registry()

    with pytest.raises(PluginLoadError) as caught:
        registry.get("duptest")

    _assert_names_both_dups(caught.value)
    # Neither claimant was imported: a conflict is decided from metadata alone.
    assert imported([fakes.dup_a, fakes.dup_b]) == []
    assert registry.get("goodtest").name == "goodtest"


# --- unknown names --------------------------------------------------------------------------


def test_unknown_name_lists_installed_plugins(fakes: Fakes) -> None:
    registry = Registry()

    with pytest.raises(PluginLoadError) as caught:
        registry.get("nosuchplugin")

    error = caught.value
    assert error.plugin == "nosuchplugin"
    assert error.distribution is None
    assert "no backend plugin named 'nosuchplugin'" in error.message
    installed = error.message.split("installed plugins: ", 1)[1]
    assert set(installed.split(", ")) == set(registry.names())
    assert set(installed.split(", ")) >= FAKE_NAMES
    assert PLUGINS_ENV_VAR not in error.message


def test_create_of_unknown_name_raises_plugin_load_error(fakes: Fakes) -> None:
    with pytest.raises(PluginLoadError, match="no backend plugin named 'nosuchplugin'"):
        Registry().create("nosuchplugin")


def test_registry_of_an_empty_group_finds_nothing(site: FakeSite) -> None:
    registry = Registry(group=f"tachikoma.test.empty.{site.suffix}")

    assert registry.available() == []
    assert registry.names() == []
    assert registry.check() == []
    with pytest.raises(PluginLoadError, match="installed plugins: none"):
        registry.get("mock")


# --- check ----------------------------------------------------------------------------------


def test_check_reports_load_errors_per_plugin(fakes: Fakes) -> None:
    checked = ours(Registry().check())

    errors = {(info.name, info.distribution): info.error for info in checked}
    assert set(errors) == {
        *((name, dist) for name, (dist, _) in FAKE_PLUGINS.items()),
        ("duptest", "dup-a"),
        ("duptest", "dup-b"),
    }
    assert errors["goodtest", "tkt-good"] is None
    for (name, dist), error in errors.items():
        if name == "goodtest":
            continue
        assert isinstance(error, PluginLoadError), name
        assert error.plugin == name
        if name != "duptest":
            assert error.distribution == dist
    broken = errors["brokentest", "tkt-broken"]
    assert broken is not None
    assert "missing dependency: libfoo" in broken.message
    wrong = errors["wrongtype", "tkt-wrongtype"]
    assert wrong is not None
    assert "not a tachikoma_backends_core.BackendPlugin" in wrong.message
    mismatch = errors["mismatch", "tkt-mismatch"]
    assert mismatch is not None
    assert "must match" in mismatch.message
    # check() really loads: the good plugin's module is now imported.
    assert fakes.good in sys.modules


# --- TACHIKOMA_PLUGINS ----------------------------------------------------------------------


def test_env_var_restricts_listing_to_named_plugins(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PLUGINS_ENV_VAR, " goodtest, brokentest ,,")
    registry = Registry()

    # The selection is exact, so the whole list can be compared (installed mock excluded).
    assert [info.name for info in registry.available()] == ["brokentest", "goodtest"]
    assert registry.names() == ["brokentest", "goodtest"]
    assert [info.name for info in registry.check()] == ["brokentest", "goodtest"]
    assert registry.get("goodtest").name == "goodtest"


def test_env_var_excluded_plugin_says_the_env_var_leaves_it_out(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PLUGINS_ENV_VAR, "goodtest,brokentest")
    registry = Registry()

    with pytest.raises(PluginLoadError) as caught:
        registry.get("wrongtype")

    message = caught.value.message
    assert f"{PLUGINS_ENV_VAR}='goodtest,brokentest' leaves it out" in message
    assert message.endswith("installed plugins: brokentest, goodtest")
    assert fakes.wrong_type not in sys.modules


def test_env_var_resolves_a_duplicate_by_excluding_it(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PLUGINS_ENV_VAR, "goodtest")
    registry = Registry()

    assert all(info.ok for info in registry.available())
    with pytest.raises(PluginLoadError, match="leaves it out"):
        registry.get("duptest")


def test_env_var_is_read_on_every_call(fakes: Fakes, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry()
    assert "wrongtype" in registry.names()

    monkeypatch.setenv(PLUGINS_ENV_VAR, "goodtest")
    assert registry.names() == ["goodtest"]

    monkeypatch.delenv(PLUGINS_ENV_VAR)
    assert "wrongtype" in registry.names()


def test_env_var_naming_an_uninstalled_plugin_gives_no_env_hint(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PLUGINS_ENV_VAR, "goodtest,ghost")
    registry = Registry()

    assert registry.names() == ["goodtest"]
    with pytest.raises(PluginLoadError) as caught:
        registry.get("ghost")
    assert "leaves it out" not in caught.value.message
    assert caught.value.message.endswith("installed plugins: goodtest")


# --- the real mock plugin, in a fresh interpreter -------------------------------------------

LIST_THEN_CREATE_MOCK = """\
import sys

from tachikoma_backends_core import registry

infos = registry.available()
mock = [info for info in infos if info.name == "mock"]
assert len(mock) == 1, infos
assert mock[0].distribution == "tachikoma-backend-mock", mock
assert mock[0].version == "0.1.0", mock
assert mock[0].entry_point == "tachikoma_backend_mock._plugin:plugin", mock
assert mock[0].ok, mock
assert "mock" in registry.names()
heavy = [m for m in ("tachikoma_backend_mock", "pydantic", "stevedore") if m in sys.modules]
assert heavy == [], f"listing imported {heavy}"
print("listed:", mock[0].describe())

from tachikoma_backends_core import Backend

backend = registry.create("mock")
assert isinstance(backend, Backend), backend
assert "tachikoma_backend_mock" in sys.modules
print("created:", type(backend.inner).__name__, backend.info.name)
"""


def test_listing_the_installed_mock_is_metadata_only(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {PLUGINS_ENV_VAR, "PYTHONPATH"}}

    result = subprocess.run(
        [sys.executable, "-c", LIST_THEN_CREATE_MOCK],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "listed: tachikoma-backend-mock 0.1.0" in result.stdout
    assert "created: MockBackend mock" in result.stdout


def test_a_plugin_whose_info_raises_does_not_hide_the_others(
    fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `tachikoma backends` crashed with a traceback on the first plugin whose info raised.
    import io

    from tachikoma_backends_core import registry
    from tachikoma_backends_core.cli import main

    module = fakes.site.module("tkt_blind")
    source = good_plugin_source("blind").replace(
        "    def info(self) -> BackendInfo:\n",
        "    def info(self) -> BackendInfo:\n        raise RuntimeError('no info today')\n",
    )
    fakes.site.make_dist("tkt-blind", "1.0", {"blind": f"{module}:plugin"}, {module: source})
    monkeypatch.setattr(registry, "default_registry", Registry())
    out = io.StringIO()
    main(["backends", "--check"], out=out, err=io.StringIO())  # 1: the fakes hold broken ones
    listing = out.getvalue()
    assert "failed: info failed: RuntimeError: no info today" in listing
    assert "goodtest" in listing
