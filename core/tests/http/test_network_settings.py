"""Over real sockets on 127.0.0.1: the corporate-network settings of `HttpPluginConfig` work.

Users behind a corporate proxy, or behind a TLS-inspecting gateway that re-signs every
site with the company's own root, reach a provider only if ``proxy``, ``ca_bundle``,
``verify`` and ``trust_env`` get to the socket. Mocked transports cannot show that (given
a transport, `HttpConnection` uses none of the config's proxy or TLS settings), so these
tests run tiny servers (anyio, no framework) on 127.0.0.1 and prove that:

* an explicit ``proxy`` receives every request, in absolute form, for a host that is
  never resolved (``upstream.invalid``); credentials in its URL go out as
  ``Proxy-Authorization`` and are never shown by the config or its errors;
* ``HTTP_PROXY`` applies under ``trust_env`` and is bypassed for ``NO_PROXY`` hosts and
  without ``trust_env``;
* a server signed by an unknown CA is refused; trusting its CA through ``ca_bundle``, or
  ``SSL_CERT_FILE`` under ``trust_env``, or not verifying (``verify=False``) works, also
  inside the ``CONNECT`` tunnel a TLS-inspecting gateway intercepts, and for the TLS
  connection to an ``https://`` proxy;
* a ``ca_bundle`` holding no certificate, a missing one, a proxy URL that is not one, a
  socks proxy that cannot be used and a keep-alive pool larger than the pool are each a
  ``ConfigurationError`` naming the setting.

Nothing leaves 127.0.0.1: every test starts with the proxy and certificate variables of
the environment cleared, and sets only those it is about.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import importlib.util
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import certifi
import pytest
import trustme
from anyio.streams.tls import TLSStream
from pydantic import SecretStr

from tachikoma_backends_core import ConfigurationError, NetworkError
from tachikoma_backends_core.http import HttpConnection, HttpPluginConfig, error_from_response
from tachikoma_backends_core.http._trust import _shared_trust, trust_for

pytestmark = pytest.mark.anyio

BODY = b'{"object": "list", "data": [{"id": "m"}]}'
ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    + f"content-length: {len(BODY)}\r\nconnection: close\r\n\r\n".encode()
    + BODY
)
# .invalid never resolves (RFC 6761): only a proxy can answer for it.
UPSTREAM = "http://upstream.invalid"
PROXY_PASSWORD = "s3cret-proxy-pass"
NETWORK_ENVIRONMENT = [
    *(f"{name}_proxy" for name in ("http", "https", "all", "no")),
    *(f"{name}_PROXY" for name in ("HTTP", "HTTPS", "ALL", "NO")),
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUEST_METHOD",  # when set, urllib ignores HTTP_PROXY (a CGI safeguard)
]


class Cfg(HttpPluginConfig):
    model: str = "m"


class Server:
    """An HTTP/1.1 server or proxy: records each request head, answers ``ANSWER``, hangs up.

    Args:
        tls: TLS in front of every connection (an ``https://`` server or proxy).
        intercept: for a ``CONNECT``, answer 200 and terminate the tunnel's TLS with this
            context, as a TLS-inspecting gateway does. Other requests, absolute-form
            (proxied) or not, are answered directly.
    """

    def __init__(
        self, *, tls: ssl.SSLContext | None = None, intercept: ssl.SSLContext | None = None
    ) -> None:
        self.tls = tls
        self.intercept = intercept
        self.port = 0
        self.requests: list[tuple[str, dict[str, str]]] = []

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def lines(self) -> list[str]:
        return [line for line, _ in self.requests]

    async def handle(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            # A client refusing our certificate, or hanging up, ends only its connection.
            with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, ssl.SSLError):
                stream: anyio.abc.ByteStream = client
                if self.tls is not None:
                    stream = await _tls(stream, self.tls)
                line = await self._receive_head(stream)
                if self.intercept is not None and line.startswith("CONNECT "):
                    await stream.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    stream = await _tls(stream, self.intercept)
                    await self._receive_head(stream)
                await stream.send(ANSWER)

    async def _receive_head(self, stream: anyio.abc.ByteStream) -> str:
        raw = b""
        while b"\r\n\r\n" not in raw:
            raw += await stream.receive()
        line, *fields = raw.partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        pairs = (field.partition(":") for field in fields)
        self.requests.append((line, {name.lower(): value.strip() for name, _, value in pairs}))
        return line


async def _tls(stream: anyio.abc.ByteStream, context: ssl.SSLContext) -> TLSStream:
    return await TLSStream.wrap(
        stream, server_side=True, ssl_context=context, standard_compatible=False
    )


@contextlib.asynccontextmanager
async def serving(server: Server) -> AsyncIterator[Server]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    server.port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, server.handle)
        yield server
        group.cancel_scope.cancel()


async def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on: connecting to it is refused at once."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    return port


def make_connection(**settings: Any) -> HttpConnection:
    return HttpConnection(
        Cfg(**settings),
        provider="test",
        label="Test",
        headers={},
        error_from_response=functools.partial(error_from_response, provider="test"),
    )


async def read_models(**settings: Any) -> bytes:
    """``GET /v1/models`` on a connection built from ``settings``, within 10 s."""
    connection = make_connection(**settings)
    try:
        with anyio.fail_after(10):
            return await connection.read("GET", "/v1/models")
    finally:
        await connection.aclose()


@pytest.fixture(autouse=True)
def _clean_network_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NETWORK_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_pem(ca: trustme.CA, tmp_path: Path) -> str:
    """The CA's certificate as a PEM file: the corporate root a user is handed."""
    path = tmp_path / "corporate-root.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    """A server context with a certificate the CA issued for 127.0.0.1 and upstream.invalid."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost", "upstream.invalid").configure_cert(context)
    return context


@pytest.fixture
async def proxy(server_tls: ssl.SSLContext) -> AsyncIterator[Server]:
    """A plain HTTP proxy; it intercepts ``CONNECT`` tunnels with the CA's certificate."""
    async with serving(Server(intercept=server_tls)) as server:
        yield server


@pytest.fixture
async def tls_proxy(server_tls: ssl.SSLContext) -> AsyncIterator[Server]:
    """An ``https://`` proxy: TLS to the proxy itself, with the CA's certificate."""
    async with serving(Server(tls=server_tls)) as server:
        yield server


@pytest.fixture
async def tls_server(server_tls: ssl.SSLContext) -> AsyncIterator[Server]:
    """An ``https://`` API server on 127.0.0.1 whose certificate the CA signed."""
    async with serving(Server(tls=server_tls)) as server:
        yield server


# --- 1. An explicit proxy -----------------------------------------------------------------


async def test_explicit_proxy_receives_every_request_in_absolute_form(proxy: Server) -> None:
    connection = make_connection(base_url=UPSTREAM, proxy=proxy.url)
    try:
        with anyio.fail_after(10):
            assert await connection.read("GET", "/v1/models") == BODY
            assert await connection.is_healthy("/health")
    finally:
        await connection.aclose()
    assert proxy.lines == [
        "GET http://upstream.invalid/v1/models HTTP/1.1",
        "GET http://upstream.invalid/health HTTP/1.1",
    ]
    assert proxy.requests[0][1]["host"] == "upstream.invalid"
    assert "proxy-authorization" not in proxy.requests[0][1]


async def test_proxy_credentials_are_sent_to_the_proxy_and_never_shown(proxy: Server) -> None:
    url = f"http://user:{PROXY_PASSWORD}@127.0.0.1:{proxy.port}"
    assert await read_models(base_url=UPSTREAM, proxy=url) == BODY
    (line, headers), *_ = proxy.requests
    assert line == "GET http://upstream.invalid/v1/models HTTP/1.1"
    credentials = base64.b64encode(f"user:{PROXY_PASSWORD}".encode()).decode()
    assert headers["proxy-authorization"] == f"Basic {credentials}"
    config = Cfg(base_url=UPSTREAM, proxy=SecretStr(url))
    for shown in (repr(config), str(config), config.model_dump_json()):
        assert PROXY_PASSWORD not in shown


async def test_proxy_credentials_stay_out_of_the_error_when_the_proxy_is_down() -> None:
    url = f"http://user:{PROXY_PASSWORD}@127.0.0.1:{await closed_port()}"
    with pytest.raises(NetworkError) as caught:
        await read_models(base_url=UPSTREAM, proxy=url)
    assert caught.value.provider == "test"
    assert PROXY_PASSWORD not in str(caught.value)
    assert PROXY_PASSWORD not in repr(caught.value)


# --- 2. A proxy from the environment ------------------------------------------------------


async def test_environment_proxy_is_used_under_trust_env(
    proxy: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    assert await read_models(base_url=UPSTREAM) == BODY
    assert proxy.lines == ["GET http://upstream.invalid/v1/models HTTP/1.1"]


@pytest.mark.parametrize(
    ("no_proxy", "trust_env"),
    [(None, False), ("127.0.0.1", True)],
    ids=["trust_env-off", "host-in-NO_PROXY"],
)
async def test_environment_proxy_is_bypassed(
    proxy: Server,
    monkeypatch: pytest.MonkeyPatch,
    no_proxy: str | None,
    trust_env: bool,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    if no_proxy is not None:
        monkeypatch.setenv("NO_PROXY", no_proxy)
    # Direct to a closed port: refused at once, where the proxy would have answered.
    base_url = f"http://127.0.0.1:{await closed_port()}"
    with pytest.raises(NetworkError, match="ConnectError") as caught:
        await read_models(base_url=base_url, trust_env=trust_env)
    assert caught.value.provider == "test"
    assert proxy.requests == []


# --- 3. Certificates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ca_in_environment", "trust_env"),
    [(False, True), (True, False)],
    ids=["certifi", "SSL_CERT_FILE-ignored-without-trust_env"],
)
async def test_a_server_signed_by_an_unknown_ca_is_refused(
    tls_server: Server,
    ca_pem: str,
    monkeypatch: pytest.MonkeyPatch,
    ca_in_environment: bool,
    trust_env: bool,
) -> None:
    if ca_in_environment:
        monkeypatch.setenv("SSL_CERT_FILE", ca_pem)
    with pytest.raises(NetworkError, match="CERTIFICATE_VERIFY_FAILED") as caught:
        await read_models(base_url=tls_server.url, trust_env=trust_env)
    assert caught.value.provider == "test"
    assert tls_server.requests == []  # nothing was sent over the untrusted connection


async def test_ca_bundle_is_trusted(tls_server: Server, ca_pem: str) -> None:
    assert await read_models(base_url=tls_server.url, ca_bundle=ca_pem) == BODY
    assert tls_server.lines == ["GET /v1/models HTTP/1.1"]


async def test_the_trust_loaded_once_follows_the_bundle_on_disk(
    tls_server: Server, ca_pem: str
) -> None:
    # Backends share one loaded SSL context per setting (loading costs ~20 ms a backend);
    # a bundle rewritten on disk is read again, not served stale from that cache.
    assert await read_models(base_url=tls_server.url, ca_bundle=ca_pem) == BODY
    assert await read_models(base_url=tls_server.url, ca_bundle=ca_pem) == BODY
    trustme.CA().cert_pem.write_to_path(ca_pem)  # another root, at the same path
    with pytest.raises(NetworkError, match="CERTIFICATE_VERIFY_FAILED"):
        await read_models(base_url=tls_server.url, ca_bundle=ca_pem)


async def test_ssl_cert_file_is_trusted_under_trust_env(
    tls_server: Server, ca_pem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", ca_pem)
    assert await read_models(base_url=tls_server.url, trust_env=True) == BODY
    assert tls_server.lines == ["GET /v1/models HTTP/1.1"]


async def test_verify_off_accepts_any_certificate(tls_server: Server) -> None:
    assert await read_models(base_url=tls_server.url, verify=False) == BODY
    assert tls_server.lines == ["GET /v1/models HTTP/1.1"]


@pytest.mark.parametrize("trusted", [True, False], ids=["ca_bundle", "no-ca_bundle"])
async def test_a_tls_inspecting_gateway_is_trusted_through_ca_bundle(
    proxy: Server, ca_pem: str, trusted: bool
) -> None:
    settings: dict[str, Any] = {"base_url": "https://upstream.invalid", "proxy": proxy.url}
    if trusted:
        assert await read_models(**settings, ca_bundle=ca_pem) == BODY
        assert proxy.lines == ["CONNECT upstream.invalid:443 HTTP/1.1", "GET /v1/models HTTP/1.1"]
    else:
        with pytest.raises(NetworkError, match="CERTIFICATE_VERIFY_FAILED"):
            await read_models(**settings)
        assert proxy.lines == ["CONNECT upstream.invalid:443 HTTP/1.1"]


@pytest.mark.parametrize(
    "trust", ["ca_bundle", "ca_bundle+HTTP_PROXY", "SSL_CERT_FILE", "verify-off"]
)
async def test_an_https_proxy_is_verified_with_the_same_trust(
    tls_proxy: Server, ca_pem: str, monkeypatch: pytest.MonkeyPatch, trust: str
) -> None:
    # The connection to the proxy is TLS too: a corporate proxy's certificate is signed
    # by the same corporate root as the sites it re-signs.
    settings: dict[str, Any] = {"base_url": UPSTREAM, "proxy": tls_proxy.url}
    if trust.startswith("ca_bundle"):
        settings["ca_bundle"] = ca_pem
    if trust.endswith("HTTP_PROXY"):
        monkeypatch.setenv("HTTP_PROXY", settings.pop("proxy"))
    if trust == "SSL_CERT_FILE":
        monkeypatch.setenv("SSL_CERT_FILE", ca_pem)
    if trust == "verify-off":
        settings["verify"] = False
    assert await read_models(**settings) == BODY
    assert tls_proxy.lines == ["GET http://upstream.invalid/v1/models HTTP/1.1"]


def test_a_ca_bundle_without_certificates_fails_when_the_connection_is_built(
    tmp_path: Path,
) -> None:
    not_a_certificate = tmp_path / "notes.pem"
    not_a_certificate.write_text("ask IT for the real root\n", encoding="utf-8")
    config = Cfg(base_url="https://127.0.0.1", ca_bundle=str(not_a_certificate))
    with pytest.raises(ConfigurationError) as caught:
        HttpConnection(
            config,
            provider="test",
            label="Test",
            headers={},
            error_from_response=functools.partial(error_from_response, provider="test"),
        )
    assert caught.value.field == "ca_bundle"


CERTIFI_ROOTS = Path(certifi.where()).read_text(encoding="utf-8").count("BEGIN CERTIFICATE")


async def test_the_default_trust_reads_its_certificates_at_the_first_request(
    tls_server: Server,
) -> None:
    """Creating a backend does not read certifi's bundle (about 20 ms); its first request
    does, before anything is sent, and backends share what was read."""
    _shared_trust.cache_clear()  # other tests may have read it already in this process
    connection = make_connection(base_url=tls_server.url)
    trust = trust_for(Cfg(base_url=tls_server.url))
    assert not trust.loaded
    assert trust.context.cert_store_stats()["x509_ca"] == 0
    try:
        with pytest.raises(NetworkError, match="CERTIFICATE_VERIFY_FAILED"):
            with anyio.fail_after(10):
                await connection.read("GET", "/v1/models")
    finally:
        await connection.aclose()
    assert trust.loaded
    assert trust.context.cert_store_stats()["x509_ca"] == CERTIFI_ROOTS
    assert tls_server.requests == []  # refused, with certifi's roots in place
    # A second backend shares the loaded trust: nothing left to read.
    assert make_connection(base_url=tls_server.url)._trust_to_load is None


async def test_an_unreadable_ssl_cert_file_fails_each_request_as_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_certificate = tmp_path / "notes.pem"
    not_a_certificate.write_text("ask IT for the real root\n", encoding="utf-8")
    monkeypatch.setenv("SSL_CERT_FILE", str(not_a_certificate))
    connection = make_connection(base_url="https://127.0.0.1:1", trust_env=True)  # created
    try:
        for _ in range(2):  # and again: the failed read is not taken for a loaded trust
            with pytest.raises(ConfigurationError, match="SSL_CERT_FILE: cannot load"):
                await connection.read("GET", "/v1/models")
    finally:
        await connection.aclose()


def test_a_missing_ca_bundle_fails_validation(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Cfg(base_url="https://127.0.0.1", ca_bundle=str(tmp_path / "missing.pem"))
    assert caught.value.field == "ca_bundle"


# --- 4. Validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["ftp://x", "not a url", f"ftp://user:{PROXY_PASSWORD}@127.0.0.1:21"]
)
def test_a_proxy_that_is_not_a_proxy_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Cfg(base_url=UPSTREAM, proxy=SecretStr(url))
    assert caught.value.field == "proxy"
    assert PROXY_PASSWORD not in str(caught.value)


async def test_a_socks_proxy_works_or_is_refused_as_configuration() -> None:
    # The config accepts socks5://, which httpx serves only with the socksio package.
    settings: dict[str, Any] = {"base_url": UPSTREAM, "proxy": "socks5://127.0.0.1:1080"}
    if importlib.util.find_spec("socksio") is not None:
        await make_connection(**settings).aclose()
        return
    with pytest.raises(ConfigurationError) as caught:
        make_connection(**settings)
    assert caught.value.field == "proxy"


def test_more_keepalive_connections_than_connections_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="max_keepalive_connections") as caught:
        Cfg(base_url=UPSTREAM, max_connections=5, max_keepalive_connections=6)
    assert caught.value.field == "max_keepalive_connections"
