"""Where the Ollama server is: ``OLLAMA_HOST`` in every form Ollama accepts, as a URL.

Ollama's own rules (``envconfig.Host`` in ollama/ollama), so that one environment variable
points the server, the ``ollama`` CLI and this plugin at the same place:

| ``OLLAMA_HOST`` | URL |
|---|---|
| (unset or empty) | ``http://127.0.0.1:11434`` |
| ``gpu-box`` | ``http://gpu-box:11434`` |
| ``gpu-box:11500`` | ``http://gpu-box:11500`` |
| ``:11500`` | ``http://127.0.0.1:11500`` |
| ``http://gpu-box`` | ``http://gpu-box:80`` (a scheme without a port takes the scheme's port) |
| ``https://example.com/ollama`` | ``https://example.com:443/ollama`` (a path is kept) |
| ``[::1]:11500``, ``::1`` | ``http://[::1]:11500``, ``http://[::1]:11434`` |
| ``0.0.0.0``, ``[::]`` | ``http://127.0.0.1:11434``, ``http://[::1]:11434`` |
| ``ollama.com`` | ``https://ollama.com:443`` (Ollama's cloud, as its CLI reads it) |

Surrounding spaces and quotes are dropped, a port that is not one falls back to the
default, and an address that means "every interface" (what ``ollama serve`` binds) is
reached on loopback, as Ollama's own integrations do.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["DEFAULT_BASE_URL", "OllamaServerConfig", "parse_host"]

DEFAULT_PORT = 11434
#: Where Ollama listens unless told otherwise.
DEFAULT_BASE_URL = f"http://127.0.0.1:{DEFAULT_PORT}"


def parse_host(value: str | None) -> str:
    """The base URL for an ``OLLAMA_HOST`` value (see the module's table).

    Examples:
        >>> parse_host("gpu-box"), parse_host(":11500"), parse_host("https://x.example/ollama/")
        ('http://gpu-box:11434', 'http://127.0.0.1:11500', 'https://x.example:443/ollama')
    """
    raw = (value or "").strip().strip("\"'")
    if not raw:
        return DEFAULT_BASE_URL
    scheme, separator, rest = raw.partition("://")
    if not separator:
        if raw == "ollama.com":  # Ollama's own cloud, as the ollama CLI reads it
            return "https://ollama.com:443"
        scheme, rest = "http", raw
        default_port = DEFAULT_PORT
    else:
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"must be http:// or https://, got {scheme}://")
        default_port = 443 if scheme == "https" else 80
    hostport, _, path = rest.partition("/")
    host, port = _split_host_port(hostport, default_port)
    host = _connectable(host)
    shown = f"[{host}]" if ":" in host else host
    path = path.strip("/")
    return f"{scheme}://{shown}:{port}" + (f"/{path}" if path else "")


def _split_host_port(hostport: str, default_port: int) -> tuple[str, int]:
    """``(host, port)``: ``[v6]:port``, ``host:port``, a bare host or IPv6, or ``:port``."""
    bare = hostport.strip("[]")
    if _is_ip(bare):  # "::1", "[::1]", "1.2.3.4": no port given
        return bare, default_port
    host, colon, port_text = hostport.rpartition(":")
    if not colon:
        host, port_text = hostport, ""
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        port = default_port
    if not 0 <= port <= 65535:
        port = default_port
    return host, port


def _connectable(host: str) -> str:
    """An address that means "every interface" (what a server binds), as loopback."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if not address.is_unspecified:
        return host
    return "127.0.0.1" if address.version == 4 else "::1"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class OllamaServerConfig:
    """The Ollama server to talk to, and whether to start one when none answers.

    Attributes:
        host: where the server is, in any ``OLLAMA_HOST`` form; ``None`` reads the
            ``OLLAMA_HOST`` environment variable, and without it ``127.0.0.1:11434``.
        port: a port that overrides the one in ``host``.
        auto_start: run ``ollama serve`` when nothing answers (the binary must be on
            ``PATH``); the process started is stopped when the backend closes.
        start_timeout: seconds to wait for a started server to answer.
        binary: the ``ollama`` executable to run (a name looked up on ``PATH``, or a path).

    Examples:
        >>> OllamaServerConfig(host="gpu-box", port=11500).base_url
        'http://gpu-box:11500'
    """

    host: str | None = None
    port: int | None = None
    auto_start: bool = False
    start_timeout: float = 30.0
    binary: str = "ollama"

    def __post_init__(self) -> None:
        from tachikoma_backends_core.errors import ConfigurationError

        if self.port is not None and not 0 < self.port <= 65535:
            raise ConfigurationError(f"port must be 1 to 65535, got {self.port}", field="port")
        if self.start_timeout <= 0:
            raise ConfigurationError("start_timeout must be above 0", field="start_timeout")
        try:
            self.base_url  # noqa: B018 - parse now, so a bad host fails here
        except ValueError as exc:
            raise ConfigurationError(f"host: {exc}", field="host") from None

    @property
    def base_url(self) -> str:
        """The server's base URL (``http://127.0.0.1:11434`` by default)."""
        url = parse_host(self.host if self.host is not None else os.environ.get("OLLAMA_HOST"))
        if self.port is None:
            return url
        parts = urlsplit(url)
        host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
        return parts._replace(netloc=f"{host}:{self.port}").geturl()
