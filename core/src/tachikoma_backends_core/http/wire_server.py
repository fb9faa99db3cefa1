"""WireServer: a scripted HTTP/1.1 server on 127.0.0.1, for tests over real sockets.

pytest-httpx answers a backend's client in memory, which proves the wire format but not
what a real connection does: a server that stalls, resets, trickles bytes, cuts a
multibyte character across two reads, holds the connection after the last event, or
answers a proxy's HTML page. This server says exactly those things, with your provider's
own bytes, so a plugin's tests (and the conformance suite's socket mode) can check that
every one of them ends in the right answer or the right typed error, in time, with no
socket left open.

It runs its own asyncio loop on a thread, so the code under test may use asyncio, trio
or no event loop at all. Each request gets the next scripted answer: a sequence of steps

* ``bytes``: written (and drained) as they are;
* `Pause`: wait, then go on (trickling, or a stall shorter than a timeout);
* `HOLD`: send nothing more and keep the connection open until the client leaves;
* `CLOSE`: close the connection (FIN) (what a server does at the end of a
  ``connection: close`` body, or in the middle of one to cut it);
* `RESET`: abort the connection (RST), as a crashed proxy does.

An answer whose steps end without closing leaves the connection open for the next
request (keep-alive); its bytes must then frame the body (``content-length`` or
chunked). `response`, `head`, `chunk` and `pieces` build the usual steps.

Examples:
    >>> import httpx
    >>> with WireServer() as server:
    ...     server.answer(response(200, {"content-type": "application/json"}, b"{}"))
    ...     reply = httpx.post(server.url + "/v1/chat", json={"model": "m"})
    ...     reply.status_code, reply.json(), server.requests[0].path
    (200, {}, '/v1/chat')
    >>> server.open_connections
    0
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal

__all__ = [
    "CLOSE",
    "HOLD",
    "LAST_CHUNK",
    "RESET",
    "Pause",
    "ReceivedRequest",
    "Step",
    "WireServer",
    "chunk",
    "closed_port_url",
    "head",
    "pieces",
    "response",
]

# Bounds that keep a broken test from hanging the run.
_START_TIMEOUT_SECONDS = 10.0
_STOP_TIMEOUT_SECONDS = 10.0
_BACKLOG = 4096
LAST_CHUNK = b"0\r\n\r\n"


@dataclass(frozen=True)
class Pause:
    """Wait ``seconds`` before the next step."""

    seconds: float


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: Keep the connection open, sending nothing more, until the client leaves.
HOLD = _Marker("HOLD")
#: Close the connection (FIN).
CLOSE = _Marker("CLOSE")
#: Abort the connection (RST).
RESET = _Marker("RESET")

Step = bytes | Pause | _Marker
#: What a handler gets and returns: the request, and the steps of its answer.
Handler = Callable[["ReceivedRequest"], Sequence[Step]]


@dataclass(frozen=True)
class ReceivedRequest:
    """A request the server read: its line, headers (lower-cased names) and body."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body, decoded as JSON."""
        return json.loads(self.body)


def head(
    status: int,
    headers: Mapping[str, str] | None = None,
    *,
    framing: Literal["length", "chunked", "close"] = "chunked",
    length: int | None = None,
) -> bytes:
    """A response's status line and headers.

    ``framing`` says how the body is delimited: ``"length"`` (``content-length:
    length``), ``"chunked"`` (send the body with `chunk`, end it with `chunk(b"")`) or
    ``"close"`` (the body ends when the server closes the connection: end with `CLOSE`).
    Framing headers in ``headers`` are replaced.
    """
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:  # a status of the provider's own (529)
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"]
    for name, value in (headers or {}).items():
        if name.lower() not in ("content-length", "transfer-encoding", "connection"):
            lines.append(f"{name}: {value}")
    if framing == "length":
        lines.append(f"content-length: {0 if length is None else length}")
    elif framing == "chunked":
        lines.append("transfer-encoding: chunked")
    else:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    """``data`` as one piece of a chunked body; ``chunk(b"")`` is the body's end."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n" if data else LAST_CHUNK


def response(status: int, headers: Mapping[str, str] | None = None, body: bytes = b"") -> bytes:
    """A whole response with a ``content-length`` body: one step, connection kept."""
    return head(status, headers, framing="length", length=len(body)) + body


def pieces(data: bytes, size: int, *, pause: float = 0.0, chunked: bool = False) -> list[Step]:
    """``data`` as writes of ``size`` bytes, ``pause`` seconds apart (each a chunk of a
    chunked body when ``chunked``): a trickle, or a character cut across two reads."""
    steps: list[Step] = []
    for start in range(0, len(data), max(1, size)):
        piece = data[start : start + max(1, size)]
        if steps and pause:
            steps.append(Pause(pause))
        steps.append(chunk(piece) if chunked else piece)
    return steps


def closed_port_url() -> str:
    """``http://127.0.0.1:PORT`` where nothing listens: connecting is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class WireServer:
    """A scripted HTTP/1.1 server on 127.0.0.1; see the module docstring.

    Use it as a context manager (sync or async), or `start` and `stop` it.

    Args:
        handler: the answer to any request no `answer` is queued for (the default is a
            ``404`` saying nothing was scripted).

    Attributes:
        requests: every request read, in order.
        connections: how many connections were accepted in all.
    """

    def __init__(self, handler: Handler | None = None) -> None:
        self._handler = handler
        self._queued: deque[Sequence[Step]] = deque()
        self._lock = threading.Lock()
        self.requests: list[ReceivedRequest] = []
        self.connections = 0
        self._open: set[asyncio.StreamWriter] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self.port = 0

    # Scripting

    def answer(self, *steps: Step) -> None:
        """Answer the next request not yet answered with ``steps`` (answers queue up)."""
        with self._lock:
            self._queued.append(steps)

    def answer_with(self, handler: Handler) -> None:
        """Answer every request nothing is queued for with ``handler(request)``."""
        with self._lock:
            self._handler = handler

    # Observation

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, the base URL to give the client."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def open_connections(self) -> int:
        """Connections the server holds open now (the client's side may linger: see
        `client_sockets`)."""
        return len(self._open)

    def client_sockets(self) -> list[str]:
        """This process's TCP sockets connected to the server, as ``"STATUS port"``.

        What a client left open, whatever the server did: a socket the server closed but
        the client never did shows as ``CLOSE_WAIT``. Needs psutil (``pip install
        psutil``); the kernel's ``TIME_WAIT`` entries belong to no process and are not
        counted.
        """
        try:
            import psutil
        except ImportError:
            raise RuntimeError("counting client sockets needs psutil: pip install psutil") from None
        found = []
        for connection in psutil.Process().net_connections(kind="tcp"):
            remote = connection.raddr
            if remote and remote.port == self.port and remote.ip == "127.0.0.1":
                found.append(f"{connection.status} {connection.laddr.port}")
        return found

    # Lifecycle

    def start(self) -> WireServer:
        """Listen on a free port of 127.0.0.1; returns once the server accepts."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self._serve(ready))
            except BaseException as exc:  # reported to start(), not lost on the thread
                failure.append(exc)
                ready.set()

        self._thread = threading.Thread(target=run, name="wire-server", daemon=True)
        self._thread.start()
        if not ready.wait(_START_TIMEOUT_SECONDS) or failure:
            raise RuntimeError(f"the wire server did not start: {failure or 'timed out'}")
        return self

    def stop(self) -> None:
        """Close every connection and stop listening; bounded in time, idempotent."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT_SECONDS)
            self._thread = None

    def __enter__(self) -> WireServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> WireServer:
        return self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        self.stop()  # a thread join of at most a few milliseconds

    # The server's own loop

    async def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        # A deep backlog: a thousand clients connecting at once must not see their SYNs
        # dropped and retried a second later (asyncio's default is 100).
        self._server = await asyncio.start_server(
            self._connection, "127.0.0.1", 0, backlog=_BACKLOG
        )
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()
        async with self._server:
            await self._stopping.wait()
            self._server.close()
            for writer in list(self._open):
                writer.transport.abort()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._open.add(writer)
        try:
            while True:  # keep-alive: one request after another
                request = await _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                if not await self._play(self._steps_for(request), reader, writer):
                    return
        except (OSError, asyncio.IncompleteReadError, ValueError):
            return  # the client went away, or sent what is no HTTP
        except asyncio.CancelledError:
            return  # the server is stopping: this connection ends here, quietly
        finally:
            self._open.discard(writer)
            if not writer.transport.is_closing():
                writer.close()
            # Cancelled here too when the server stops during the close: quietly.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await writer.wait_closed()

    def _steps_for(self, request: ReceivedRequest) -> Sequence[Step]:
        with self._lock:
            if self._queued:
                return self._queued.popleft()
            handler = self._handler
        if handler is None:
            return [response(404, {"content-type": "text/plain"}, b"nothing scripted")]
        return handler(request)

    async def _play(
        self, steps: Sequence[Step], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Play ``steps``; whether the connection stays open for another request."""
        for step in steps:
            if isinstance(step, bytes):
                writer.write(step)
                await writer.drain()
            elif isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
            elif step is HOLD:
                while await reader.read(65536):  # until the client leaves
                    pass
                return False
            elif step is CLOSE:
                writer.close()
                return False
            elif step is RESET:
                sock = writer.get_extra_info("socket")
                if sock is not None:  # linger 0: close sends RST, not FIN
                    with contextlib.suppress(OSError):  # the client already left
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                writer.transport.abort()
                return False
            else:
                raise TypeError(f"not a step: {step!r}")
        return True


async def _read_request(reader: asyncio.StreamReader) -> ReceivedRequest | None:
    """The next request on the connection, or ``None`` once the client closed it."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    except asyncio.LimitOverrunError:
        raise ValueError("request head too long") from None
    lines = raw.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return ReceivedRequest(method, path, headers, body)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers are expected
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
