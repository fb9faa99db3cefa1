"""Find provider plugins through entry points, and load one only when it is used.

Listing (`available`) reads installed distributions' metadata and imports no
plugin code, so it stays fast however heavy a provider's dependencies are. Loading
(`get`, `create`) imports one plugin through stevedore. Problems are
reported per plugin as `PluginLoadError` and never break the others:

* a plugin that fails to import, or whose entry point names something other than a
  ``BackendPlugin``, fails to load with an error that says which and why;
* two distributions claiming one name is an error naming both, for that name only.

``TACHIKOMA_PLUGINS=mock,claude`` restricts discovery to the named plugins (useful
in tests, and to keep an untrusted plugin from loading).

Examples:
    >>> from tachikoma_backends_core import registry
    >>> [p.name for p in registry.available()]  # doctest: +SKIP
    ['claude', 'mock']
    >>> backend = registry.create("mock")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ._metadata import entry_points as read_entry_points
from .errors import PluginLoadError
from .manifest import (
    MANIFEST_ENTRY_POINT_GROUP,
    ManifestError,
    PluginManifest,
    contract_problem,
    parse_manifest,
)

if TYPE_CHECKING:
    from ._endpoints_file import Endpoint
    from .backend import Backend
    from .plugin import BackendPlugin

__all__ = [
    "ENTRY_POINT_GROUP",
    "PLUGINS_ENV_VAR",
    "PluginInfo",
    "Registry",
    "available",
    "create",
    "default_registry",
    "get",
    "names",
]

ENTRY_POINT_GROUP = "tachikoma.backends"
PLUGINS_ENV_VAR = "TACHIKOMA_PLUGINS"


@dataclass(frozen=True)
class PluginInfo:
    """An installed plugin, as its distribution's metadata describes it.

    ``error`` is set when the plugin cannot be used (a name conflict or an unreadable or
    unsupported manifest found while listing, or, from `Registry.check`, a failure to
    load). ``manifest`` is the plugin's declared contract version and capabilities.
    """

    name: str
    distribution: str | None
    version: str | None
    entry_point: str
    error: PluginLoadError | None = None
    manifest: PluginManifest = field(default_factory=PluginManifest)
    #: One line saying what it is: the distribution's summary (its pyproject
    #: ``description``), or an endpoint's ``description``; ``None`` when there is none.
    description: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def describe(self) -> str:
        """``"tachikoma-backend-mock 0.1.0"`` (or ``"<unknown distribution>"``)."""
        if self.distribution is None:
            return "<unknown distribution>"
        return f"{self.distribution} {self.version}"


def _info(entry_point: importlib.metadata.EntryPoint) -> PluginInfo:
    manifest, error = _manifest(entry_point)
    # One parse of the METADATA file: ``dist.name`` and ``dist.version`` each parse it anew.
    metadata = None if entry_point.dist is None else entry_point.dist.metadata
    return PluginInfo(
        name=entry_point.name,
        distribution=None if metadata is None else metadata["Name"],
        version=None if metadata is None else metadata["Version"],
        entry_point=entry_point.value,
        error=error,
        manifest=manifest,
        description=None if metadata is None else (metadata["Summary"] or None),
    )


def _manifest(
    entry_point: importlib.metadata.EntryPoint,
) -> tuple[PluginManifest, PluginLoadError | None]:
    """The plugin's manifest, from its own distribution's metadata, and why it is refused."""
    dist = entry_point.dist
    name = entry_point.name
    declared = None
    if dist is not None:
        declared = next(
            (
                candidate.value
                for candidate in dist.entry_points
                if candidate.group == MANIFEST_ENTRY_POINT_GROUP and candidate.name == name
            ),
            None,
        )
    if declared is None:
        return PluginManifest(), None
    try:
        manifest = parse_manifest(declared)
    except ManifestError as exc:
        # The distribution is named only in a refusal: reading it parses METADATA again.
        distribution = None if dist is None else dist.name
        error = PluginLoadError(
            f"plugin {name!r} has an invalid manifest {declared!r} "
            f"([{MANIFEST_ENTRY_POINT_GROUP}] in {distribution}): {exc}",
            plugin=name,
            distribution=distribution,
        )
        return PluginManifest(), error
    problem = contract_problem(name, manifest)
    if problem is None:
        return manifest, None
    distribution = None if dist is None else dist.name
    return manifest, PluginLoadError(problem, plugin=name, distribution=distribution)


@functools.cache
def _stevedore_manager() -> Any:
    """stevedore's loader, fed the entry points we resolved ourselves.

    stevedore normally rescans entry points through its own caches (per process and
    on disk), which go stale when plugins are installed while a program runs and drop
    the distribution; we already hold fresh entry points, so we hand it exactly one.
    Imported lazily: stevedore costs ~90 ms to import and listing never needs it.
    """
    from stevedore import NamedExtensionManager

    class _ResolvedEntryPointManager(NamedExtensionManager[Any]):
        def __init__(self, group: str, entry_point: importlib.metadata.EntryPoint) -> None:
            self._resolved = entry_point
            self.failures: list[BaseException] = []
            super().__init__(
                group,
                names=[entry_point.name],
                on_load_failure_callback=lambda _mgr, _ep, exc: self.failures.append(exc),
                on_missing_entrypoints_callback=None,
            )

        def list_entry_points(self) -> list[importlib.metadata.EntryPoint]:
            return [self._resolved]

    return _ResolvedEntryPointManager


class Registry:
    """Plugins of one entry-point group. Most code uses the module-level functions."""

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self.group = group
        self._loaded: dict[tuple[str, str | None, str], BackendPlugin[Any]] = {}

    # -- discovery (metadata only) ----------------------------------------------------

    def _enabled_names(self) -> set[str] | None:
        selection = os.environ.get(PLUGINS_ENV_VAR)
        if selection is None:
            return None
        return {name.strip() for name in selection.split(",") if name.strip()}

    def _scan(self) -> dict[str, list[importlib.metadata.EntryPoint]]:
        enabled = self._enabled_names()
        found: dict[str, list[importlib.metadata.EntryPoint]] = {}
        for entry_point in read_entry_points(self.group):
            if enabled is None or entry_point.name in enabled:
                found.setdefault(entry_point.name, []).append(entry_point)
        return dict(sorted(found.items()))

    @staticmethod
    def _conflict(name: str, entry_points: list[importlib.metadata.EntryPoint]) -> PluginLoadError:
        claims = " and ".join(
            f"{info.describe()} ({info.entry_point})" for info in map(_info, entry_points)
        )
        return PluginLoadError(
            f"plugin name {name!r} is claimed by more than one distribution: {claims}; "
            "uninstall all but one",
            plugin=name,
            distribution=", ".join(str(_info(ep).distribution) for ep in entry_points),
        )

    def available(self) -> list[PluginInfo]:
        """Every discovered plugin, sorted by name, without importing any of them: the
        installed ones and the endpoints declared in the endpoints file."""
        scanned = self._scan()
        infos = []
        for name, entry_points in scanned.items():
            if len(entry_points) == 1:
                infos.append(_info(entry_points[0]))
                continue
            conflict = self._conflict(name, entry_points)
            infos.extend(replace(_info(ep), error=conflict) for ep in entry_points)
        infos.extend(self._endpoint_info(endpoint, scanned) for endpoint in self._endpoints())
        return sorted(infos, key=lambda info: info.name)

    def names(self) -> list[str]:
        """The names of the discovered plugins and declared endpoints, sorted."""
        return sorted([*self._scan(), *(endpoint.name for endpoint in self._endpoints())])

    # -- endpoints (see `tachikoma_backends_core.endpoints`) ---------------------------

    def _endpoints(self) -> list[Endpoint]:
        if self.group != ENTRY_POINT_GROUP:
            return []  # a registry of another group has no endpoints
        from ._endpoints_file import read_endpoints

        enabled = self._enabled_names()
        return [e for e in read_endpoints().values() if enabled is None or e.name in enabled]

    def _endpoint_info(
        self, endpoint: Endpoint, scanned: dict[str, list[importlib.metadata.EntryPoint]]
    ) -> PluginInfo:
        """An endpoint as a plugin: the base plugin's distribution and contract, the
        endpoint's capabilities; an error if its name or its base plugin is not right."""
        where = f"[endpoints.{endpoint.name}] in {endpoint.source} ({endpoint.plugin})"
        base = scanned.get(endpoint.plugin, [])
        error = None
        if endpoint.name in scanned:
            error = PluginLoadError(
                f"endpoint {endpoint.name!r} ({endpoint.source}) has the name of an installed "
                "plugin; rename the endpoint",
                plugin=endpoint.name,
            )
        elif len(base) != 1:
            error = PluginLoadError(
                f"endpoint {endpoint.name!r} ({endpoint.source}) is served by plugin "
                f"{endpoint.plugin!r}, which is not installed",
                plugin=endpoint.name,
            )
        if error is not None:
            return PluginInfo(endpoint.name, None, None, where, error, description=endpoint.summary)
        info = _info(base[0])
        capabilities = endpoint.capabilities
        if capabilities is None:
            capabilities = info.manifest.capabilities
        manifest = PluginManifest(contract=info.manifest.contract, capabilities=capabilities)
        return PluginInfo(
            endpoint.name,
            info.distribution,
            info.version,
            where,
            info.error,
            manifest,
            endpoint.summary,
        )

    # -- loading ----------------------------------------------------------------------

    def _resolve(self, name: str) -> importlib.metadata.EntryPoint:
        scanned = self._scan()
        entry_points = scanned.get(name)
        if not entry_points:
            enabled = self._enabled_names()
            hint = ""
            if enabled is not None and name not in enabled:
                hint = f" ({PLUGINS_ENV_VAR}={os.environ[PLUGINS_ENV_VAR]!r} leaves it out)"
            known = ", ".join(scanned) or "none"
            raise PluginLoadError(
                f"no backend plugin named {name!r}{hint}; installed plugins: {known}",
                plugin=name,
            )
        if len(entry_points) > 1:
            raise self._conflict(name, entry_points)
        return entry_points[0]

    def info(self, name: str) -> PluginInfo:
        """The metadata of plugin ``name`` (manifest included), without importing it."""
        endpoint = self._endpoint(name)
        if endpoint is not None:
            return self._endpoint_info(endpoint, self._scan())
        return _info(self._resolve(name))

    def _endpoint(self, name: str) -> Endpoint | None:
        """The endpoint called ``name``; an installed plugin of that name wins (the
        endpoint is listed with the clash)."""
        endpoint = next((e for e in self._endpoints() if e.name == name), None)
        if endpoint is None or name in self._scan():
            return None
        return endpoint

    def get(self, name: str) -> BackendPlugin[Any]:
        """Load (once) and return the plugin called ``name`` (an endpoint: its base plugin,
        serving it)."""
        endpoint = self._endpoint(name)
        if endpoint is not None:
            info = self._endpoint_info(endpoint, self._scan())
            if info.error is not None:
                raise info.error
            from .endpoints import EndpointPlugin

            return EndpointPlugin.serving(endpoint, self.get(endpoint.plugin))
        entry_point = self._resolve(name)
        info = _info(entry_point)
        if info.error is not None:
            raise info.error
        key = (name, info.distribution, info.entry_point)
        plugin = self._loaded.get(key)
        if plugin is None:
            # No lock: imports have their own, and two threads racing here load the same
            # module object. (A lock would deadlock a plugin that uses the registry while
            # it is being imported, e.g. one that wraps another.)
            plugin = self._loaded.setdefault(key, self._load(entry_point, info))
        return plugin

    def _load(
        self, entry_point: importlib.metadata.EntryPoint, info: PluginInfo
    ) -> BackendPlugin[Any]:
        from .plugin import BackendPlugin

        where = f"{info.name} = {info.entry_point} in {info.describe()}"
        try:
            manager = _stevedore_manager()(self.group, entry_point)
            failures = manager.failures
        except KeyboardInterrupt:
            raise
        # stevedore re-raises AssertionError itself; a plugin may also sys.exit() on import,
        # or raise a BaseException of its own.
        except BaseException as exc:
            failures = [exc]
        if failures:
            cause = failures[0]
            raise PluginLoadError(
                f"plugin {info.name!r} failed to load ({where}): {type(cause).__name__}: {cause}",
                plugin=info.name,
                distribution=info.distribution,
            ) from cause
        loaded = manager[info.name].plugin
        if not isinstance(loaded, BackendPlugin):
            raise PluginLoadError(
                f"plugin {info.name!r} entry point ({where}) names an object of type "
                f"{type(loaded).__name__}, not a tachikoma_backends_core.BackendPlugin",
                plugin=info.name,
                distribution=info.distribution,
            )
        if loaded.name != info.name:
            raise PluginLoadError(
                f"plugin entry point {info.name!r} ({where}) holds a BackendPlugin named "
                f"{loaded.name!r}; the two names must match",
                plugin=info.name,
                distribution=info.distribution,
            )
        return loaded

    def check(self) -> list[PluginInfo]:
        """Like `available`, but load each plugin and report its load error."""
        checked = []
        for info in self.available():
            if info.error is None:
                try:
                    self.get(info.name)
                except PluginLoadError as error:
                    info = replace(info, error=error)
            checked.append(info)
        return checked

    def create(self, name: str, /, **config: Any) -> Backend:
        """Build a backend of plugin ``name`` from keyword settings (and the environment)."""
        return self.get(name).create(**config)


default_registry = Registry()


def available() -> list[PluginInfo]:
    """Every installed plugin (see `Registry.available`)."""
    return default_registry.available()


def names() -> list[str]:
    """The names of the installed plugins."""
    return default_registry.names()


def get(name: str) -> BackendPlugin[Any]:
    """The plugin called ``name``, loaded (see `Registry.get`)."""
    return default_registry.get(name)


def create(name: str, /, **config: Any) -> Backend:
    """A backend of plugin ``name``: ``registry.create("mock")``."""
    return default_registry.create(name, **config)
