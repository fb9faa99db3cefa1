"""The offline suite's network guard: no connection leaves the machine.

A plugin could pass scripted traits by calling the real service (a harness that forgot
to script something, a client built outside the harness). While an offline trait runs,
every socket connection and name lookup that is not loopback is refused with
`NetworkGuardError` and recorded, and the suite fails the trait with a message naming
the address. Loopback stays open for fake servers the tests start themselves.

It patches ``socket.socket.connect`` / ``connect_ex`` and ``socket.getaddrinfo``, which
asyncio, trio and every blocking client end up calling.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["NetworkGuardError", "guard_network"]

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class NetworkGuardError(ConnectionRefusedError):
    """A non-loopback connection attempted during the offline conformance suite."""


def _is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower().rstrip(".") in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


@contextmanager
def guard_network(violations: list[str]) -> Iterator[None]:
    """Refuse non-loopback connections and lookups inside the block; record each one."""
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def refuse(what: str) -> NetworkGuardError:
        message = (
            f"the offline conformance suite refused {what}: offline traits must be "
            "scripted through the harness (use --live to reach the real service)"
        )
        violations.append(message)
        return NetworkGuardError(message)

    def check_address(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise refuse(f"a connection to {address[0]}:{address[1]}")

    def connect(self: socket.socket, address: Any) -> None:
        check_address(self, address)
        return original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check_address(self, address)
        return original_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback(host):
            raise refuse(f"a name lookup of {host!r}")
        return original_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.socket.connect = original_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = original_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = original_getaddrinfo
