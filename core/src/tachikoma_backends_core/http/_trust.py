"""Trust: how servers (and https proxies) are verified, and when certificates are read.

Reading a CA bundle takes about 20 ms, a tenth of a cold ``registry.create``; a backend
created and never called (``tachikoma backends --check``, an application that builds
every configured backend at start) has no use for it. So the trust is an ``SSLContext``
set up as ``ssl.create_default_context`` sets one up, whose certificates (certifi's, or
``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` under ``trust_env``, as httpx reads them) load at
the connection's first request (`Trust.load`, before anything is sent, so no handshake
happens without them); one that cannot be read is a `ConfigurationError` from that
request, and from every one after it. A ``ca_bundle`` set in the backend's settings loads
at once: a bundle that cannot be read fails the backend's creation, where the setting was
given. ``verify=False`` loads nothing.

One context is shared per setting, per environment and per bundle file as it is on disk
(an ``SSLContext`` is made to be shared): a hundred backends read the bundle once.
"""

from __future__ import annotations

import functools
import os
import ssl
import sys
import threading
from collections.abc import Callable

import httpx

from tachikoma_backends_core.errors import ConfigurationError

from ._config import HttpPluginConfig

__all__ = ["Trust", "trust_for"]


class Trust:
    """An ``SSLContext`` and, until `load` ran, the certificates it still has to read."""

    __slots__ = ("_lock", "_pending", "context")

    def __init__(
        self, context: ssl.SSLContext, pending: Callable[[ssl.SSLContext], None] | None = None
    ) -> None:
        self.context = context
        self._pending = pending
        self._lock = threading.Lock()  # backends in several threads may share it

    @property
    def loaded(self) -> bool:
        return self._pending is None

    def load(self) -> None:
        """Read the certificates now, once; a no-op after it succeeded.

        Raises:
            ConfigurationError: the certificates could not be read (then again next time).
        """
        if self._pending is None:
            return
        with self._lock:
            if self._pending is not None:
                self._pending(self.context)
                self._pending = None


def trust_for(config: HttpPluginConfig) -> Trust:
    """The trust ``config`` asks for: off, ``ca_bundle``, the environment's, or certifi's."""
    bundle = config.ca_bundle if config.verify else None
    stamp = None
    if bundle is not None:
        try:
            stamp = os.stat(bundle).st_mtime_ns
        except OSError:
            stamp = None  # reported by the load itself, with its reason
    environment = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    return _shared_trust(
        config.verify, bundle, stamp, environment if config.trust_env else (None, None)
    )


@functools.lru_cache(maxsize=16)
def _shared_trust(
    verify: bool,
    ca_bundle: str | None,
    stamp: int | None,
    environment: tuple[str | None, str | None],
) -> Trust:
    if not verify:
        return Trust(httpx.create_ssl_context(verify=False))
    if ca_bundle is not None:
        context = _verifying_context()
        # Read now: a bundle that cannot be read fails where the setting was given.
        if os.path.isdir(ca_bundle):
            _read(context, capath=ca_bundle, what="ca_bundle", field="ca_bundle")
        else:
            _read(context, cafile=ca_bundle, what="ca_bundle", field="ca_bundle")
        return Trust(context)
    cert_file, cert_dir = environment
    # SSL_CERT_FILE, then SSL_CERT_DIR, as httpx reads them under trust_env; else certifi.
    pending: Callable[[ssl.SSLContext], None]
    if cert_file:
        pending = functools.partial(_read, cafile=cert_file, what="SSL_CERT_FILE")
    elif cert_dir:
        pending = functools.partial(_read, capath=cert_dir, what="SSL_CERT_DIR")
    else:
        pending = _read_certifi
    return Trust(_verifying_context(), pending)


def _verifying_context() -> ssl.SSLContext:
    """What ``ssl.create_default_context()`` makes for verifying servers, certificates
    not yet read."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # hostname checked, certificate required
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog and not sys.flags.ignore_environment and hasattr(context, "keylog_filename"):
        context.keylog_filename = keylog
    return context


def _read(
    context: ssl.SSLContext,
    *,
    cafile: str | None = None,
    capath: str | None = None,
    what: str,
    field: str | None = None,
) -> None:
    """Trust the certificates of a PEM file (``cafile``) or a directory of them."""
    try:
        context.load_verify_locations(cafile=cafile, capath=capath)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(
            f"{what}: cannot load certificates from it ({type(exc).__name__}: {exc})",
            field=field,
        ) from None


def _read_certifi(context: ssl.SSLContext) -> None:
    import certifi  # httpx's own dependency: the bundle httpx verifies with

    context.load_verify_locations(cafile=certifi.where())
