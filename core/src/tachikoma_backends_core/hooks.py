"""Lifecycle hooks (pluggy): extension plugins that observe or amend every call.

Extensions are pluggy plugins for the project ``tachikoma``: any object or module with
functions marked `hookimpl` and named after a spec in `hookspecs`. They arrive two ways:

* installed, through the entry point group ``tachikoma.hooks`` (loaded once per process
  by `default_hooks`, when the first backend is created — listing plugins imports none);
* registered in code: ``default_hooks().register(MyHooks())``.

``TACHIKOMA_HOOKS`` restricts which installed extensions load (comma-separated entry
point names; empty means none), the way ``TACHIKOMA_PLUGINS`` restricts backends.

Why the calls do not go through pluggy's own ``pm.hook.X(...)``: pluggy stops at the
first exception, and a broken metrics extension must not lose anybody's response. So
`Hooks` runs each implementation itself, in pluggy's order, catching and logging each
failure; pluggy still does the registration, validation against the specs and
entry-point bookkeeping.

Examples:
    >>> class Audit:
    ...     seen = []
    ...     @hookimpl
    ...     def tachikoma_request(self, request):
    ...         Audit.seen.append(request.model)
    >>> hooks = Hooks()
    >>> hooks.register(Audit(), name="audit")  # unnamed, it would be known by its id()
    'audit'
    >>> hooks.names
    ['audit']
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from . import hookspecs
from ._metadata import entry_points
from .errors import ConfigurationError, redact

if TYPE_CHECKING:
    from .backend import BackendInfo
    from .completion import CompletionChunk, CompletionRequest, CompletionResponse
    from .errors import BackendError

__all__ = ["HOOKS_ENTRY_POINT_GROUP", "HookLoadError", "Hooks", "default_hooks", "hookimpl"]

HOOKS_ENTRY_POINT_GROUP = "tachikoma.hooks"
HOOKS_ENV_VAR = "TACHIKOMA_HOOKS"

hookimpl = pluggy.HookimplMarker("tachikoma")
logger = logging.getLogger(__name__)

T = TypeVar("T")


class HookLoadError:
    """An installed extension that could not be loaded, kept for ``Hooks.load_errors``."""

    __slots__ = ("message", "name")

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = message

    def __repr__(self) -> str:
        return f"HookLoadError(name={self.name!r}, message={self.message!r})"


class Hooks:
    """A set of hook implementations and the one place that calls them.

    Attributes:
        load_errors: extensions from entry points that failed to import or validate;
            each was logged and left out, the others load normally.
    """

    def __init__(self) -> None:
        self._manager = pluggy.PluginManager("tachikoma")
        self._manager.add_hookspecs(hookspecs)
        self.load_errors: list[HookLoadError] = []

    @classmethod
    def from_entry_points(cls, group: str = HOOKS_ENTRY_POINT_GROUP) -> Hooks:
        """A `Hooks` with every installed extension of ``group`` (see ``TACHIKOMA_HOOKS``)."""
        hooks = cls()
        wanted = _wanted_names()
        for entry_point in entry_points(group=group):
            if wanted is not None and entry_point.name not in wanted:
                continue
            try:
                extension = entry_point.load()
                hooks.register(extension, name=entry_point.name)
            except Exception as exc:  # one broken extension must not break the others
                message = redact(f"{type(exc).__name__}: {exc}")
                logger.warning("hook extension %r not loaded: %s", entry_point.name, message)
                hooks.load_errors.append(HookLoadError(entry_point.name, message))
        return hooks

    def register(self, extension: object, name: str | None = None) -> str:
        """Add ``extension`` (object or module with `hookimpl` functions); return its name.

        Raises:
            ConfigurationError: a hook name or argument does not match the specs, or the
                extension uses a pluggy wrapper (not supported: calls are isolated).
        """
        try:
            registered = self._manager.register(extension, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            raise ConfigurationError(f"hook extension rejected: {exc}") from exc
        if registered is None:  # pluggy: blocked name
            raise ConfigurationError(f"hook extension {name!r} is blocked")
        try:
            self._manager.check_pending()  # a misspelt hook name would never be called
        except pluggy.PluginValidationError as exc:
            self._manager.unregister(extension)
            raise ConfigurationError(f"hook extension {registered!r} rejected: {exc}") from exc
        for caller in self._manager.get_hookcallers(extension) or ():
            for impl in caller.get_hookimpls():
                if impl.plugin is extension and (impl.wrapper or impl.hookwrapper):
                    self._manager.unregister(extension)
                    raise ConfigurationError(
                        f"hook {caller.name} of {registered!r} is a wrapper; "
                        "Tachikoma calls each hook on its own, so use a plain hookimpl"
                    )
        return registered

    def unregister(self, extension: object) -> None:
        """Remove a registered extension (no error if it is not registered)."""
        if self._manager.is_registered(extension):
            self._manager.unregister(extension)

    @property
    def names(self) -> list[str]:
        """The names of the registered extensions."""
        return [name for name, _ in self._manager.list_name_plugin()]

    @property
    def observes_streams(self) -> bool:
        """Whether any extension wants a stream's end or its failure (``tachikoma_response``,
        ``tachikoma_error``): only then does a stream need a wrapper of its own."""
        hook = self._manager.hook
        return bool(hook.tachikoma_response.get_hookimpls() or hook.tachikoma_error.get_hookimpls())

    def __bool__(self) -> bool:
        return bool(self._manager.list_name_plugin())

    # -- the calls ---------------------------------------------------------------

    def request(self, request: CompletionRequest, backend: BackendInfo) -> CompletionRequest:
        """Run ``tachikoma_request`` hooks; return the (possibly replaced) request."""
        from .completion import CompletionRequest

        return self._amend(
            "tachikoma_request", CompletionRequest, request, "request", backend=backend
        )

    def response(
        self, request: CompletionRequest, response: CompletionResponse, backend: BackendInfo
    ) -> CompletionResponse:
        """Run ``tachikoma_response`` hooks; return the (possibly replaced) response."""
        from .completion import CompletionResponse

        return self._amend(
            "tachikoma_response",
            CompletionResponse,
            response,
            "response",
            request=request,
            backend=backend,
        )

    def chunk_caller(
        self, request: CompletionRequest, backend: BackendInfo
    ) -> Callable[[CompletionChunk], CompletionChunk] | None:
        """The ``tachikoma_chunk`` hooks of one stream, resolved once: a function from
        each chunk to the chunk the caller sees, or ``None`` if there
        are none. Implementations and their arguments are looked up here, not per chunk,
        so a chunk costs what the hooks themselves cost; one registered during the stream
        applies from the next stream on.
        """
        from .completion import CompletionChunk

        context: dict[str, Any] = {"request": request, "backend": backend}
        calls: list[tuple[pluggy.HookImpl, list[Any], int]] = []
        for impl in self._implementations("tachikoma_chunk"):
            names = list(impl.argnames)
            slot = names.index("chunk") if "chunk" in names else -1
            calls.append((impl, [context.get(name) for name in names], slot))
        if not calls:
            return None

        def amend(chunk: CompletionChunk) -> CompletionChunk:
            for impl, arguments, slot in calls:
                if slot >= 0:
                    arguments[slot] = chunk
                try:
                    result = impl.function(*arguments)
                except Exception as exc:
                    self._report_failure(impl, exc)
                    continue
                if result is None:
                    continue
                if isinstance(result, CompletionChunk):
                    chunk = result
                else:
                    self._report_wrong_type("tachikoma_chunk", impl, result, CompletionChunk)
            return chunk

        return amend

    def error(
        self,
        request: CompletionRequest,
        error: BackendError,
        backend: BackendInfo,
        *,
        attempt: int,
        will_retry: bool,
        delay: float | None = None,
        max_attempts: int = 1,
    ) -> None:
        """Run ``tachikoma_error`` hooks (observers only)."""
        arguments = {
            "request": request,
            "error": error,
            "backend": backend,
            "attempt": attempt,
            "will_retry": will_retry,
            "delay": delay,
            "max_attempts": max_attempts,
        }
        for impl in self._implementations("tachikoma_error"):
            self._run(impl, arguments)

    def _amend(self, hook: str, expected: type[T], value: T, argument: str, **context: Any) -> T:
        for impl in self._implementations(hook):
            result = self._run(impl, {**context, argument: value})
            if result is None:
                continue
            if isinstance(result, expected):
                value = result
            else:
                self._report_wrong_type(hook, impl, result, expected)
        return value

    @staticmethod
    def _report_wrong_type(
        hook: str, impl: pluggy.HookImpl, result: object, expected: type
    ) -> None:
        logger.error(
            "hook %s of %r returned %s, not %s or None; ignored",
            hook,
            impl.plugin_name,
            type(result).__name__,
            expected.__name__,
        )

    def _implementations(self, hook: str) -> list[pluggy.HookImpl]:
        # pluggy calls the last registered first (tryfirst/trylast already applied).
        return list(reversed(getattr(self._manager.hook, hook).get_hookimpls()))

    @staticmethod
    def _run(impl: pluggy.HookImpl, arguments: dict[str, Any]) -> Any:
        try:
            return impl.function(*(arguments[name] for name in impl.argnames))
        except Exception as exc:
            Hooks._report_failure(impl, exc)
            return None

    @staticmethod
    def _report_failure(impl: pluggy.HookImpl, exc: Exception) -> None:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        # No exc_info: a traceback's message line would bypass redaction.
        logger.error(
            "hook %s of %r raised %s (at %s:%s); ignored, the call goes on",
            impl.function.__name__,
            impl.plugin_name,
            redact(f"{type(exc).__name__}: {exc}"),
            frame.filename,
            frame.lineno,
        )

    def __repr__(self) -> str:
        return f"Hooks({self.names!r})"


def _wanted_names() -> set[str] | None:
    value = os.environ.get(HOOKS_ENV_VAR)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


_default: Hooks | None = None
_default_lock = threading.Lock()


def default_hooks(*, reload: bool = False) -> Hooks:
    """The process-wide hooks every created backend uses, loaded on first use.

    ``reload=True`` rebuilds them from the installed entry points (tests, or after
    installing an extension in a running process); code-registered extensions are lost.
    """
    global _default
    with _default_lock:
        if _default is None or reload:
            _default = Hooks.from_entry_points()
        return _default
