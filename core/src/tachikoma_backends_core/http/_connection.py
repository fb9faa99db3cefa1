"""HttpConnection: one provider's ``httpx.AsyncClient``, and the safe ways to use it.

Why a class of its own rather than an ``HttpBackend`` base: a provider's backend is its
wire format (encode, decode, map errors) plus a connection, and composition keeps the two
apart. The backend says *what* to send and how to read it; the connection owns *how*:

* one client per backend, built from `HttpPluginConfig`: timeouts, the pool limits (in
  effect: httpx ignores ``limits`` when a transport is passed, so none is passed unless a
  test supplies one), proxy and CA settings, the environment honoured as httpx does;
* calls beyond ``max_connections`` wait in our own FIFO (`ConnectionGate`), not in
  httpx's pool, and a big pool is kept as small ones (`PoolShards`): httpx's pool does
  its bookkeeping in time proportional to what it holds, at every request and release;
* one attempt per call: the core's retry loop retries (httpx's transport makes none);
* a non-2xx answer becomes the provider's typed error, from a body read to at most
  `MAX_ERROR_BODY` bytes, so a proxy's 1 GB error page is not read whole;
* streams read ahead until the provider's stream has started (`StreamDecoder.started`),
  so an error sent instead of the first event raises from ``await complete_stream()``;
* responses are released however a call ends (cancellation included), under asyncio and
  trio alike, with nothing of httpx's left suspended;
* transport failures become `NetworkError` / `BackendTimeoutError` naming the provider.

Examples:
    ```python
    connection = HttpConnection(
        config,
        provider="acme",
        label="Acme",
        headers={"authorization": f"Bearer {config.require_api_key('acme', label='Acme')}"},
        error_from_response=functools.partial(error_from_response, provider="acme"),
    )
    raw = await connection.read("POST", "/v1/complete", json=body)  # bytes, or a typed error
    stream = await connection.stream(
        "POST", "/v1/complete", json=body, decoder=AcmeStreamDecoder(), model=model
    )
    ```
"""

from __future__ import annotations

import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Generic, NamedTuple, Protocol

import anyio
import httpx

from tachikoma_backends_core.completion import CompletionChunk, Usage
from tachikoma_backends_core.errors import (
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    InvalidRequestError,
    NetworkError,
    ServerError,
)
from tachikoma_backends_core.health import HealthReport
from tachikoma_backends_core.streaming import CompletionStream

from ._body import ACCEPT_ENCODING, DecodedBody, read_to_the_end
from ._config import HttpPluginConfig
from ._decoder import EventParser, EventT
from ._excerpt import excerpt
from ._gate import ConnectionGate
from ._json import encode_json_body
from ._log_redaction import install_log_redaction
from ._shards import SHARD_CONNECTIONS, PoolShards
from ._trust import Trust, trust_for

__all__ = [
    "MAX_ERROR_BODY",
    "ErrorMapper",
    "HttpConnection",
    "HttpEvents",
    "StreamDecoder",
    "release_response",
]

#: The most of an error answer's body that is read (64 KiB): enough for any provider's
#: error object, and a bound on what a misbehaving proxy can make us hold.
MAX_ERROR_BODY = 64 * 1024
# Releasing a response must not hang a cancelled task (the core's streams bound it alike).
_RELEASE_TIMEOUT_SECONDS = 10.0
# How long the rest of a finished stream is read, so its connection can be reused.
_DRAIN_SECONDS = 0.05
_JSON_TYPE = "application/json"
# Paths a connection remembers the full URL of; past it, the memory starts over (paths
# are a plugin's few constants, or one per deployment at most).
_MAX_REMEMBERED_URLS = 256

#: ``(status, headers, body) -> error``: a provider's mapping of an HTTP error answer.
ErrorMapper = Callable[[int, httpx.Headers, bytes], BackendError]


class StreamDecoder(Protocol):
    """What `HttpConnection.stream` needs of a provider's stream decoder.

    ``feed`` takes the body's bytes as they arrive and returns the chunks they complete;
    ``close`` is called at the end of the body and raises `StreamProtocolError` if the
    stream was cut. ``started`` turns true once the provider's stream has begun (after
    it, errors are mid-stream), ``finished`` once the final chunk went out. ``model`` is
    the model the stream says is answering, if it says. ``usage_so_far`` is what the
    provider reported before its final usage (``None`` if nothing).
    """

    @property
    def started(self) -> bool: ...

    @property
    def finished(self) -> bool: ...

    @property
    def model(self) -> str | None: ...

    def feed(self, data: bytes) -> list[CompletionChunk]: ...

    def close(self) -> list[CompletionChunk]: ...

    def usage_so_far(self) -> Usage | None: ...


class HttpConnection:
    """One provider's HTTP client; see the module docstring for what it guarantees.

    Args:
        config: the plugin's validated settings.
        provider: the plugin's name, carried by every error and stream.
        label: how messages name the service (``"Claude"``: "timed out calling Claude").
        headers: sent with every request, after ``config.extra_headers`` (credentials,
            versions: the headers the config refuses in ``extra_headers``).
        error_from_response: the provider's mapping of an HTTP error answer.
        transport: an httpx transport to send through instead of the network (an
            ``httpx.MockTransport`` in tests). It brings its own pool, TLS and proxy
            settings: the config's are then not used.
        base_url: where requests go when it is not ``config.base_url`` (a URL the
            provider derives from other settings, such as an Azure resource's).
        connect_hint: what to do when no connection can be made at all (a local
            server that is not running, say); by default, to check ``base_url``.
    """

    def __init__(
        self,
        config: HttpPluginConfig,
        *,
        provider: str,
        label: str,
        headers: Mapping[str, str],
        error_from_response: ErrorMapper,
        transport: httpx.AsyncBaseTransport | None = None,
        base_url: str | None = None,
        connect_hint: str | None = None,
    ) -> None:
        self.provider = provider
        self._connect_hint = connect_hint
        self.label = label
        self._error_from_response = error_from_response
        self._pool = (config.max_connections, config.pool_timeout or config.timeout)
        # Only where we built the pool: a transport passed in brings its own limits.
        self._gate = None if transport is not None else ConnectionGate(*self._pool)
        self._closed = False
        install_log_redaction()  # httpcore's DEBUG lines quote response headers
        # What aclose() ends: the requests being sent, the responses open.
        self._sending: set[anyio.CancelScope] = set()
        self._responses: set[httpx.Response] = set()
        self.client, self._shards, self._trust_to_load = _build_client(
            config, headers=headers, transport=transport, base_url=base_url or config.base_url
        )
        # path -> the full URL httpx merges it into, for the base URL it was merged with.
        self._urls: dict[str, httpx.URL] = {}
        self._urls_base = self.client.base_url

    @property
    def closed(self) -> bool:
        return self._closed

    async def read(
        self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None
    ) -> bytes:
        """The whole body of a successful answer; a typed error for anything else."""
        response = await self._open(method, path, json=json, params=params)
        try:
            return await self._read_all(response)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, f"reading {self.label}'s response") from exc

    async def stream(
        self,
        method: str,
        path: str,
        *,
        decoder: StreamDecoder,
        model: str,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> CompletionStream:
        """A `CompletionStream` over the answer, decoded by ``decoder``.

        Returns once the provider's stream has started: an HTTP error, or an error
        event in place of the first one, raises from the ``await``. ``model`` names the
        stream unless the decoder learnt the answering model by then.
        """
        response = await self._open(method, path, json=json, params=params)
        if "text/html" in response.headers.get("content-type", ""):
            # A proxy's or captive portal's page, sent with a 200 in place of the stream.
            page = await self._read_capped(response, MAX_ERROR_BODY)
            raise ServerError(
                f"{self.label} answered {response.status_code} with an HTML page instead of "
                f"a stream: {excerpt(page.decode(errors='replace'), 200)}; check base_url "
                "and any proxy in between",
                provider=self.provider,
                status_code=response.status_code,
                retryable=False,
            )
        body_bytes = DecodedBody(response)

        async def release() -> None:
            # After the final event, what is left ([DONE], the chunked ending) is read so
            # the connection goes back to the pool; a stream left early is just closed.
            await self._release(response, body_bytes, drain=decoder.finished)

        try:
            early = await self._read_until_started(body_bytes, decoder)
        except BaseException:
            with anyio.move_on_after(_RELEASE_TIMEOUT_SECONDS, shield=True):
                await release()
            raise
        return CompletionStream(
            self._chunks(body_bytes, decoder, early),
            model=decoder.model or model,
            provider=self.provider,
            on_close=release,
            usage_so_far=decoder.usage_so_far,
        )

    async def events(
        self,
        method: str,
        path: str,
        *,
        parser: EventParser[EventT],
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> HttpEvents[EventT]:
        """The events of a streamed answer that is not a completion (a model pull's
        progress, say), parsed by ``parser``; an HTTP error raises from the ``await``.

        Use it as an async context manager, or close it, to release the connection.
        """
        response = await self._open(method, path, json=json, params=params)
        return HttpEvents(response, parser, self)

    async def health(self, path: str, *, params: Mapping[str, Any] | None = None) -> HealthReport:
        """Whether ``GET path`` answers 2xx, and if not, the typed error it met.

        The error is the one a call would meet (the provider's mapping of the answer, or
        the network failure or timeout), so a health report names a bad key, an
        overloaded provider or a refused connection. Never raises for provider trouble;
        cancellation propagates.
        """
        try:
            response = await self._open("GET", path, json=None, params=params)
        except BackendError as error:
            return HealthReport.failed(error)
        with anyio.move_on_after(_RELEASE_TIMEOUT_SECONDS, shield=True):
            await self._release(response, None)  # the status is the answer, not the body
        return HealthReport.ok()

    async def is_healthy(self, path: str, *, params: Mapping[str, Any] | None = None) -> bool:
        """``GET path`` answers 2xx. ``False`` on any trouble; cancellation propagates."""
        return (await self.health(path, params=params)).healthy

    async def aclose(self) -> None:
        """Close the client, its connections and the responses still open; idempotent.

        Calls in flight end with a typed error, and leave no socket behind.
        """
        if self._closed:
            return
        self._closed = True
        for sending in list(self._sending):
            sending.cancel()
        with anyio.move_on_after(_RELEASE_TIMEOUT_SECONDS, shield=True):
            for response in list(self._responses):
                await self._release(response, None)
            await self.client.aclose()

    def transport_error(self, exc: httpx.HTTPError, doing: str) -> BackendError:
        """httpx's failure as our error: timeouts (the pool's named), then the network."""
        if isinstance(exc, httpx.PoolTimeout):
            connections, wait = self._pool
            return BackendTimeoutError(
                f"timed out {doing}: no connection came free within {wait:g} s, all "
                f"max_connections={connections} being busy; raise max_connections or "
                "pool_timeout, or make fewer calls at once",
                provider=self.provider,
            )
        if isinstance(exc, httpx.TimeoutException):
            return BackendTimeoutError(
                f"timed out {doing} ({type(exc).__name__}); raise timeout= if answers are long",
                provider=self.provider,
            )
        hint = "check base_url and connectivity"
        if self._connect_hint and isinstance(exc, httpx.ConnectError):
            hint = self._connect_hint
        return NetworkError(
            f"network failure {doing}: {type(exc).__name__}: {_reason(exc)}; {hint}",
            provider=self.provider,
        )

    async def _open(
        self, method: str, path: str, *, json: Any, params: Mapping[str, Any] | None
    ) -> httpx.Response:
        """Send the request; a non-2xx answer raises the provider's error for it."""
        self._ensure_open()
        content = None if json is None else encode_json_body(json, provider=self.provider)
        sending = anyio.CancelScope()  # aclose() cancels it: the call ends now, typed
        self._sending.add(sending)
        gate, entered, response = self._gate, False, None
        try:
            with sending:
                if gate is not None:
                    if not gate.take():  # none free: wait in line
                        await gate.enter()
                    entered = True
                if self._trust_to_load is not None:  # the first request: read the CAs now
                    self._trust_to_load.load()
                    self._trust_to_load = None
                # Built once admitted: a call waiting its turn holds no httpx objects.
                # Empty params are left out: httpx would parse the URL again to add nothing.
                request = self.client.build_request(
                    method, self._url(path), content=content, params=params or None
                )
                if content is not None:
                    request.headers["content-type"] = _JSON_TYPE
                response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, f"calling {self.label}") from exc
        finally:
            self._sending.discard(sending)
            if entered and response is None and gate is not None:
                gate.leave()  # nothing was sent after all: the slot goes back
        if response is None:  # only aclose() cancels it
            raise self._closed_error(during_call=True)
        self._responses.add(response)
        try:
            self._ensure_open(during_call=True)  # aclose() may have run meanwhile
        except ConfigurationError:
            await self._release(response, None)
            raise
        if response.is_success:
            return response
        body = await self._read_capped(response, MAX_ERROR_BODY)
        if response.is_redirect or 300 <= response.status_code < 400:
            raise InvalidRequestError(
                f"{self.label} answered {response.status_code}, pointing to "
                f"{response.headers.get('location') or 'nowhere it says'}: set base_url to the "
                "address the service really answers at",
                field="base_url",
                provider=self.provider,
                status_code=response.status_code,
                retryable=False,
            )
        raise self._error_from_response(response.status_code, response.headers, body)

    def _url(self, path: str) -> httpx.URL:
        """``path`` merged with the client's ``base_url``, as httpx merges it, remembered:
        httpx parses the path and then the merged URL again at every request (about 20 us
        of a 600 us call), while a full `httpx.URL` goes through as it is."""
        urls = self._urls
        if self.client.base_url is not self._urls_base:  # base_url was set anew
            urls.clear()
            self._urls_base = self.client.base_url
        url = urls.get(path)
        if url is None:
            if len(urls) >= _MAX_REMEMBERED_URLS:
                urls.clear()
            url = urls[path] = self.client.build_request("GET", path).url
        return url

    def _ensure_open(self, *, during_call: bool = False) -> None:
        """A `ConfigurationError` once `aclose` ran: a closed backend sends nothing."""
        if self._closed:
            raise self._closed_error(during_call=during_call)

    def _closed_error(self, *, during_call: bool) -> ConfigurationError:
        return ConfigurationError(
            f"this {self.label} backend was closed during the call"
            if during_call
            else f"this {self.label} backend is closed; create a new one",
            provider=self.provider,
        )

    async def _release(
        self,
        response: httpx.Response,
        body_bytes: DecodedBody | None,
        *,
        drain: bool = False,
    ) -> None:
        """Release ``response`` (draining a finished stream's rest, briefly, for reuse)."""
        held = response in self._responses  # its slot at the gate goes back once
        self._responses.discard(response)
        if body_bytes is None:
            body_bytes = DecodedBody(response)
        try:
            if drain:  # the answer is whole: the rest is read for reuse, not reported
                with anyio.move_on_after(_DRAIN_SECONDS):
                    await read_to_the_end(body_bytes)
            await release_response(response, body_bytes)
        finally:
            gate = self._gate
            if held and gate is not None:
                gate.leave()  # after the release: its connection is back in the pool
                shards = self._shards
                if shards is not None and shards.over_budget(gate.admitted):
                    await shards.trim_idle()

    async def _read_all(self, response: httpx.Response) -> bytes:
        """The whole body; the response is released however this ends (cancellation too)."""
        body_bytes = DecodedBody(response)
        try:
            body = b"".join([piece async for piece in body_bytes])
        except BaseException:
            with anyio.move_on_after(_RELEASE_TIMEOUT_SECONDS, shield=True):
                await self._release(response, body_bytes)
            raise
        # Read to its end, the answer is released without the network (its connection
        # goes back to the pool): shielded, but with no time bound, so no timer to set.
        with anyio.CancelScope(shield=True):
            await self._release(response, body_bytes)
        return body

    async def _read_capped(self, response: httpx.Response, limit: int) -> bytes:
        """At most ``limit`` bytes of the body (all of a short one), then it is released.

        A failure while reading gives what arrived: the status alone still says what failed.
        """
        body_bytes = DecodedBody(response)
        pieces: list[bytes] = []
        size = 0
        try:
            async for piece in body_bytes:
                pieces.append(piece)
                size += len(piece)
                if size >= limit:
                    break
        except httpx.HTTPError:
            pass
        finally:
            with anyio.move_on_after(_RELEASE_TIMEOUT_SECONDS, shield=True):
                await self._release(response, body_bytes)
        return b"".join(pieces)[:limit]

    async def _read_until_started(
        self, body_bytes: DecodedBody, decoder: StreamDecoder
    ) -> list[CompletionChunk]:
        """Feed the decoder until its stream started (or ended); the chunks seen so far."""
        early: list[CompletionChunk] = []
        try:
            async for data in body_bytes:
                early.extend(decoder.feed(data))
                if decoder.started or decoder.finished:
                    return early
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, f"reading {self.label}'s stream") from exc
        early.extend(decoder.close())  # the body ended before the stream started: cut
        return early

    async def _chunks(
        self,
        body_bytes: DecodedBody,
        decoder: StreamDecoder,
        early: list[CompletionChunk],
    ) -> AsyncIterator[CompletionChunk]:
        """The stream's chunks: those read ahead, then the rest of the body, decoded."""
        for chunk in early:
            yield chunk
        # The chunks read ahead (all of a short answer's) are not kept for the rest of it.
        del early
        try:
            # Up to the provider's final event: the stream ends there, whatever the
            # connection does next (a proxy may hold it open for minutes).
            while not decoder.finished:
                data = await anext(body_bytes, None)
                if data is None:  # the body ended first: the decoder says what that means
                    for chunk in decoder.close():
                        yield chunk
                    return
                for chunk in decoder.feed(data):
                    yield chunk
        except httpx.HTTPError as exc:
            raise self.transport_error(exc, f"reading {self.label}'s stream") from exc


def _reason(exc: BaseException) -> str:
    """What went wrong, from the first exception in the chain that says (trio's
    ``ConnectError`` is empty; its cause names the refused certificate or connection)."""
    seen: BaseException | None = exc
    for _ in range(8):  # a bounded walk: chains can loop
        if seen is None:
            break
        if str(seen):
            return str(seen) if seen is exc else f"{type(seen).__name__}: {seen}"
        seen = seen.__cause__ or seen.__context__
    return "no reason given"


class HttpEvents(Generic[EventT]):
    """The parsed events of one streamed answer: an async iterator, closed however it ends.

    Transport failures are typed as the connection's are; leaving ``async with``,
    exhausting it or failing releases the response.
    """

    def __init__(
        self, response: httpx.Response, parser: EventParser[EventT], connection: HttpConnection
    ) -> None:
        self._response = response
        self._parser = parser
        self._connection = connection
        self._body = DecodedBody(response)
        self._ready: deque[EventT] = deque()
        self._ended = False
        self._closed = False

    def __aiter__(self) -> HttpEvents[EventT]:
        return self

    async def __anext__(self) -> EventT:
        try:
            while not self._ready:
                if self._ended:
                    await self.aclose()
                    raise StopAsyncIteration
                await self._read()
        except BaseException:
            await self.aclose()
            raise
        return self._ready.popleft()

    async def _read(self) -> None:
        connection = self._connection
        try:
            data = await self._body.__anext__()
        except StopAsyncIteration:
            self._ended = True
            self._ready.extend(self._parser.close())
        except httpx.HTTPError as exc:
            raise connection.transport_error(exc, f"reading {connection.label}'s answer") from exc
        else:
            self._ready.extend(self._parser.feed(data))

    async def aclose(self) -> None:
        """Release the response; idempotent, shielded from cancellation, bounded in time."""
        if not self._closed:
            self._closed = True
            with anyio.move_on_after(_RELEASE_TIMEOUT_SECONDS, shield=True):
                await self._connection._release(self._response, self._body)

    async def __aenter__(self) -> HttpEvents[EventT]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def release_response(response: httpx.Response, body_bytes: AsyncIterator[bytes]) -> None:
    """Close ``response`` (and its connection), then end the chain of body iterators.

    Closing leaves the generators httpx and httpcore stack under a body iterator
    suspended, and trio warns about every suspended async generator the garbage collector
    finds. Reading on after the close ends them all: what is still buffered comes out,
    then the closed connection raises, unwinding every level. ``body_bytes`` is the
    connection's own decoded body, or any iterator over the response (``aiter_bytes()``).
    """
    try:
        await response.aclose()
    finally:
        if isinstance(body_bytes, DecodedBody):
            await body_bytes.aclose()
        else:
            await read_to_the_end(body_bytes)


class _Built(NamedTuple):
    """A connection's client, its pool's shards (a big pool), and the trust whose
    certificates are still to be read before its first request."""

    client: httpx.AsyncClient
    shards: PoolShards | None
    trust: Trust | None


def _build_client(
    config: HttpPluginConfig,
    *,
    headers: Mapping[str, str],
    transport: httpx.AsyncBaseTransport | None,
    base_url: str,
) -> _Built:
    timeout = httpx.Timeout(
        config.timeout,
        connect=config.connect_timeout,
        read=config.read_timeout or config.timeout,
        pool=config.pool_timeout or config.timeout,
    )
    # What DecodedBody decodes, whatever compression packages happen to be installed.
    merged = {"accept-encoding": ACCEPT_ENCODING, **config.extra_headers, **headers}
    if transport is not None:
        client = httpx.AsyncClient(
            base_url=base_url, headers=merged, timeout=timeout, transport=transport
        )
        return _Built(client, None, None)
    # No transport passed, so limits are in effect; proxies are mounted here rather than
    # left to httpx, so that the connection to an https:// proxy is verified with the
    # same trust (ca_bundle, verify) as the provider's.
    trust = trust_for(config)
    limits = httpx.Limits(
        max_connections=config.max_connections,
        max_keepalive_connections=config.keepalive_connections,
    )
    try:
        mounts: dict[str, httpx.AsyncBaseTransport | None] = {
            pattern: None
            if url is None
            else httpx.AsyncHTTPTransport(
                verify=trust.context, limits=limits, proxy=_proxy(url, trust.context)
            )
            for pattern, url in _proxies(config).items()
        }
    except ImportError as exc:  # socks5:// without httpx's socks extra
        raise ConfigurationError(f"proxy: {exc}", field="proxy", provider=None) from None
    shards = None
    if config.max_connections > SHARD_CONNECTIONS:  # a big pool: kept as small ones
        shards = PoolShards(
            lambda part: httpx.AsyncHTTPTransport(verify=trust.context, limits=part), limits
        )
    client = httpx.AsyncClient(
        base_url=base_url,
        headers=merged,
        timeout=timeout,
        limits=limits,
        verify=trust.context,
        mounts=mounts,
        transport=shards,
        trust_env=False,  # the environment was read above, once
    )
    return _Built(client, shards, None if trust.loaded else trust)


def _proxies(config: HttpPluginConfig) -> dict[str, str | None]:
    """URL pattern -> proxy URL (``None``: go direct), as httpx would mount them."""
    if config.proxy is not None:
        return {"all://": config.proxy.get_secret_value()}
    if not config.trust_env:
        return {}
    # httpx's own reading of HTTP(S)_PROXY, ALL_PROXY and NO_PROXY, rules and all.
    from httpx._utils import get_environment_proxies

    return get_environment_proxies()


def _proxy(url: str, trust: ssl.SSLContext) -> httpx.Proxy:
    # An ssl_context is for https:// proxies only (httpcore refuses one for http://).
    return httpx.Proxy(url, ssl_context=trust if url.startswith("https://") else None)
