"""The one code path every call takes: hooks, rate limiting, retries, typed errors.

`BackendPlugin.create` returns the provider's backend wrapped in a `ManagedBackend`, so
what matters for every provider is written once, here, rather than once per plugin:

* **hooks** (`hooks`) see each request, response, chunk and error;
* a **rate limiter** (optional) admits each attempt, holding its permit until the
  response is read or the stream is closed, then records the provider-reported usage;
* the **retry loop** (`RetryPolicy`, from the config's ``max_retries``) retries
  request-level failures that are ``retryable``, honouring ``retry_after``; a stream is
  never retried once it started, because its chunks may already be on the user's screen;
* **typed errors**: anything but a `BackendError` escaping a plugin (a bug) becomes a
  `BackendError` naming the plugin, so users catch one tree.

The wrapped backend stays reachable as `ManagedBackend.inner` (the mock's scripting
methods, a provider's extras).

Examples:
    >>> from tachikoma_backend_mock import MockBackend
    >>> backend = ManagedBackend(MockBackend(), retry_policy=RetryPolicy(max_attempts=2))
    >>> backend.inner.info.name
    'mock'
"""

from __future__ import annotations

import enum
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from .backend import Backend, BackendInfo
from .errors import BackendError
from .health import HealthReport
from .hooks import Hooks
from .retry import RetryPolicy
from .streaming import CompletionStream

if TYPE_CHECKING:
    from .completion import CompletionChunk, CompletionRequest, CompletionResponse
    from .rate_limit import AdaptiveRateLimiting, PermitLike, RateLimiting
    from .tokens import TokenCounter

__all__ = ["ManagedBackend"]

B = TypeVar("B", bound=Backend)
T = TypeVar("T")


class _Keep(enum.Enum):
    """``with_options``' default: keep the current setting (``None`` means "none")."""

    KEEP = enum.auto()


_KEEP = _Keep.KEEP


class ManagedBackend(Backend, Generic[B]):
    """A backend with hooks, an optional rate limiter and a retry policy in front.

    Args:
        inner: the provider's backend (a `ManagedBackend` is unwrapped, never nested).
        retry_policy: ``None`` (default) tries once.
        rate_limiter: a `RateLimiter` or `AdaptiveRateLimiter` (one process), or a
            `RedisRateLimiter` or `RedisAdaptiveRateLimiter` (a quota shared by many);
            each attempt acquires a permit for the estimated tokens (prompt estimate +
            ``max_tokens``) and corrects it with the usage the provider reports. An
            adaptive limiter also learns from rate-limit errors and successes.
        token_counter: estimates prompts for the rate limiter (default
            `SimpleTokenCounter`).
        hooks: the extensions to call (default: `default_hooks`, the installed ones).
    """

    def __init__(
        self,
        inner: B | ManagedBackend[B],
        *,
        retry_policy: RetryPolicy | None = None,
        rate_limiter: RateLimiting | None = None,
        token_counter: TokenCounter | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        if isinstance(inner, ManagedBackend):
            inner = inner.inner
        if hooks is None:
            from .hooks import default_hooks

            hooks = default_hooks()
        self.inner: B = inner
        self.retry_policy = retry_policy or RetryPolicy.disabled()
        self.rate_limiter = rate_limiter
        # Adaptive limiters learn from outcomes; found once, not on every call.
        self._adaptive: AdaptiveRateLimiting | None = (
            cast("AdaptiveRateLimiting", rate_limiter)
            if callable(getattr(rate_limiter, "record_rate_limit", None))
            else None
        )
        self.hooks = hooks
        if rate_limiter is not None and token_counter is None:
            from .tokens import SimpleTokenCounter

            token_counter = SimpleTokenCounter()
        self.token_counter = token_counter

    def with_options(
        self,
        *,
        retry_policy: RetryPolicy | _Keep | None = _KEEP,
        rate_limiter: RateLimiting | _Keep | None = _KEEP,
        hooks: Hooks | _Keep = _KEEP,
    ) -> ManagedBackend[B]:
        """A managed backend over the same provider backend, with some settings replaced.

        Examples:
            >>> from tachikoma_backend_mock import MockBackend
            >>> patient = ManagedBackend(MockBackend()).with_options(
            ...     retry_policy=RetryPolicy(max_attempts=5))
            >>> patient.retry_policy.max_attempts
            5
        """
        return ManagedBackend(
            self.inner,
            retry_policy=self.retry_policy if isinstance(retry_policy, _Keep) else retry_policy,
            rate_limiter=self.rate_limiter if isinstance(rate_limiter, _Keep) else rate_limiter,
            token_counter=self.token_counter,
            hooks=self.hooks if isinstance(hooks, _Keep) else hooks,
        )

    @property
    def info(self) -> BackendInfo:
        return self.inner.info

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        info = self.inner.info
        request = self.hooks.request(request, info) if self.hooks else request

        async def attempt() -> CompletionResponse:
            permit = await self._admit(request)
            try:
                response = await self._typed(self.inner.complete, request)
            except BackendError as error:
                await self._learn_from(error)
                raise
            finally:
                if permit is not None:
                    permit.release()
            if permit is not None:
                permit.record_usage(response.usage.total_tokens)
                self._learn_success()
            return response

        response = await self._with_retries(request, attempt)
        return self.hooks.response(request, response, info) if self.hooks else response

    async def complete_stream(self, request: CompletionRequest) -> CompletionStream:
        info = self.inner.info
        request = self.hooks.request(request, info) if self.hooks else request
        holder: list[PermitLike | None] = []

        async def attempt() -> CompletionStream:
            permit = await self._admit(request)
            try:
                stream = await self._typed(self.inner.complete_stream, request)
            except BaseException as error:
                if permit is not None:
                    permit.release()
                if isinstance(error, BackendError):
                    await self._learn_from(error)
                raise
            holder.append(permit)
            return stream

        upstream = await self._with_retries(request, attempt)
        permit = holder[-1]
        hooks = self.hooks
        wanted = permit is not None or bool(hooks)
        if (upstream.closed and wanted) or (hooks and hooks.observes_streams):
            return self._managed_stream(request, upstream, permit, info)
        # Nothing needs the stream's end or failure: the provider's stream is handed
        # over, its chunks amended in place and its permit settled when it closes.
        amend = hooks.chunk_caller(request, info) if hooks else None
        if amend is not None:
            upstream.amend_chunks(amend)
        if permit is not None:
            upstream.add_on_close(functools.partial(self._settle, upstream, permit))
        return upstream

    async def health_check(self) -> bool:
        try:
            return bool(await self.inner.health_check())
        except Exception:  # the contract says False, never an exception
            return False

    async def check_health(self) -> HealthReport:
        try:
            report: object = await self._typed(self.inner.check_health)  # a plugin's, unchecked
        except BackendError as error:  # the contract says a report, never an exception
            return HealthReport.failed(error)
        if isinstance(report, HealthReport):
            return report
        name = self.inner.info.name
        return HealthReport.failed(
            BackendError(
                f"the {name!r} backend's check_health returned {type(report).__name__}, not "
                "a HealthReport (a bug in the plugin)",
                provider=name,
                retryable=False,
            )
        )

    async def aclose(self) -> None:
        await self._typed(self.inner.aclose)

    def __repr__(self) -> str:
        return f"<ManagedBackend {self.inner!r}>"

    # -- the shared path ---------------------------------------------------------

    async def _with_retries(
        self, request: CompletionRequest, attempt: Callable[[], Awaitable[T]]
    ) -> T:
        info = self.inner.info

        max_attempts = self.retry_policy.max_attempts

        async def report_retry(error: BackendError, number: int, delay: float) -> None:
            if self.hooks:
                self.hooks.error(
                    request,
                    error,
                    info,
                    attempt=number,
                    will_retry=True,
                    delay=delay,
                    max_attempts=max_attempts,
                )

        try:
            return await self.retry_policy.call(attempt, on_retry=report_retry)
        except BackendError as error:
            if self.hooks:
                self.hooks.error(
                    request, error, info, attempt=0, will_retry=False, max_attempts=max_attempts
                )
            raise

    async def _typed(self, method: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Call a plugin method; a non-`BackendError` exception becomes a typed one."""
        try:
            return await method(*args)
        except BackendError:
            raise
        except Exception as exc:
            name = self.inner.info.name
            raise BackendError(
                f"the {name!r} backend failed with an unexpected {type(exc).__name__}: {exc} "
                "(a bug in the plugin: it should raise a BackendError subclass)",
                provider=name,
                retryable=False,
            ) from exc

    async def _admit(self, request: CompletionRequest) -> PermitLike | None:
        if self.rate_limiter is None or self.token_counter is None:
            return None
        tokens = self.token_counter.count_messages(request.messages)
        tokens += request.max_tokens or self.inner.info.capabilities.max_output_tokens
        return await self.rate_limiter.acquire(tokens)

    async def _learn_from(self, error: BackendError) -> None:
        if self._adaptive is None:
            return
        from .errors import RateLimitError

        if isinstance(error, RateLimitError):
            await self._adaptive.record_rate_limit(error.retry_after)

    def _learn_success(self) -> None:
        if self._adaptive is not None:
            self._adaptive.record_success()

    async def _settle(self, stream: CompletionStream, permit: PermitLike) -> None:
        """A closed stream's permit: its usage recorded, the success learnt, released."""
        try:
            usage = stream.reported_usage
            if usage is not None:
                permit.record_usage(usage.total_tokens)
            if stream.exhausted:
                self._learn_success()
        finally:
            permit.release()

    def _managed_stream(
        self,
        request: CompletionRequest,
        upstream: CompletionStream,
        permit: PermitLike | None,
        info: BackendInfo,
    ) -> CompletionStream:
        hooks = self.hooks
        amend = hooks.chunk_caller(request, info)  # resolved once for the whole stream

        async def chunks() -> AsyncIterator[CompletionChunk]:
            try:
                async for chunk in upstream:
                    if amend is not None:
                        chunk = amend(chunk)
                    if chunk.usage is not None and permit is not None:
                        permit.record_usage(chunk.usage.total_tokens)
                    yield chunk
            except BackendError as error:  # mid-stream: reported, never retried
                if hooks:
                    hooks.error(
                        request,
                        error,
                        info,
                        attempt=0,
                        will_retry=False,
                        max_attempts=self.retry_policy.max_attempts,
                    )
                raise
            if permit is not None:
                self._learn_success()
            if hooks:
                hooks.response(request, await upstream.collect(), info)

        async def close() -> None:
            try:
                await upstream.aclose()
            finally:
                if permit is not None:
                    permit.release()

        return CompletionStream(
            chunks(),
            model=upstream.model,
            provider=info.name,
            on_close=close,
            usage_so_far=lambda: upstream.usage,
        )
