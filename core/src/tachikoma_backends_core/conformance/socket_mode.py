"""Socket mode: an HTTP plugin's own bytes, served over real TCP with every fault a network has.

The scripted traits answer the backend's client in memory. That proves the wire format,
not what a connection does to it: a stall before the headers or after the last event, a
reset, a body cut short, bytes trickling in or a character split across two reads, a
proxy's HTML page, a redirect, a corrupt gzip body. Socket mode serves the plugin's
harness bytes (`HttpxHarness.reply_response`, `error_body`, `stream_opening`) from a
`WireServer` on 127.0.0.1 with each of those faults, and checks that every call ends in
the right answer or the right typed error, within its timeout and a margin, with no
socket left open and no ``ResourceWarning``.

`FAULTS` lists them; `run_fault` plays one against a backend and returns what happened,
for the suite's traits (``pytest --plugin=NAME --sockets``, contract 3) and for a
plugin's own tests alike.
"""

from __future__ import annotations

import enum
import gc
import json
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from tachikoma_backends_core.completion import CompletionRequest, CompletionResponse, FinishReason
from tachikoma_backends_core.errors import (
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    InvalidRequestError,
    NetworkError,
    ServerError,
    StreamProtocolError,
)
from tachikoma_backends_core.hooks import Hooks
from tachikoma_backends_core.http.wire_server import (
    CLOSE,
    HOLD,
    RESET,
    Pause,
    ReceivedRequest,
    Step,
    WireServer,
    chunk,
    closed_port_url,
    head,
    pieces,
    response,
)
from tachikoma_backends_core.managed import ManagedBackend
from tachikoma_backends_core.messages import Message
from tachikoma_backends_core.retry import RetryPolicy

from ._loading import harness_type
from .harness import EXPECTED_ERRORS, ErrorKind, ScriptedFailure, ScriptedReply

if TYPE_CHECKING:
    from tachikoma_backends_core.backend import Backend
    from tachikoma_backends_core.http import HttpxHarness

__all__ = [
    "ANSWER",
    "CONNECT_TIMEOUT",
    "FAULTS",
    "MARGIN",
    "READ_TIMEOUT",
    "TEXT",
    "Call",
    "Fault",
    "FaultOutcome",
    "WireAnswer",
    "WireScript",
    "ask_socket",
    "run_fault",
    "wait_for_no_sockets",
]

#: The text every fault's reply carries: multibyte characters of 2, 3 and 4 bytes, so a
#: split across reads shows as a wrong character, not a passing test.
TEXT = "Héllo wörld — ☃ 🎉, over a real socket."
#: The timeouts socket mode gives backends: a stall is seen within one of them.
READ_TIMEOUT = 0.5
CONNECT_TIMEOUT = 1.0
#: Seconds allowed on top of a fault's own wait (slow CI machines; never a hang).
MARGIN = 3.0
_BIG_TEXT_SIZE = 5 * 1024 * 1024
_FRAMING_HEADERS = ("content-length", "transfer-encoding", "connection", "content-encoding")


class Call(str, enum.Enum):
    """How a fault's request is made: streamed, or a plain ``complete``."""

    STREAM = "stream"
    COMPLETE = "complete"


@dataclass(frozen=True)
class WireAnswer:
    """One answer of the provider, as its status, headers and body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


class WireScript:
    """A plugin's own bytes, from its `HttpxHarness`: the answers faults are made of."""

    def __init__(self, harness: HttpxHarness) -> None:
        self.harness = harness

    @classmethod
    def for_plugin(cls, name: str) -> WireScript:
        """The bytes of the installed plugin ``name``, from the harness it declares
        (outside pytest: its fixtures are not available, and socket mode needs none)."""
        from tachikoma_backends_core.http import HttpxHarness

        harness_class = harness_type(name)
        if not issubclass(harness_class, HttpxHarness):
            raise ConfigurationError(
                f"plugin {name!r}: socket mode serves an HttpxHarness's bytes; "
                f"{harness_class.__name__} is not one",
                provider=name,
            )
        return cls(harness_class(None))  # type: ignore[arg-type]

    def create_backend(self, *, hooks: Hooks | None = None, **config: Any) -> ManagedBackend[Any]:
        """A backend of the harness's plugin with its test settings and ``config``, behind
        the core's retry loop (``max_retries``) and ``hooks`` (none installed ones)."""
        settings = {**self.harness.test_settings, "max_retries": 0, **config}
        inner = self.harness.backend_plugin.create(**settings).inner
        policy = RetryPolicy.from_max_retries(settings["max_retries"])
        return ManagedBackend(inner, retry_policy=policy, hooks=hooks or Hooks())

    def socket_settings(self, server: WireServer) -> dict[str, Any]:
        """The settings that point a backend at ``server``, with socket mode's timeouts."""
        return {
            "base_url": server.url + _base_path(self),
            "timeout": READ_TIMEOUT,
            "read_timeout": READ_TIMEOUT,
            "connect_timeout": CONNECT_TIMEOUT,
        }

    def answer(self, sent: Any, text: str = TEXT) -> WireAnswer:
        """The provider's successful answer to ``sent`` (streamed if it asked)."""
        reply = self.harness.reply_response(ScriptedReply(text=text), sent)
        headers = {k: v for k, v in reply.headers.items() if k.lower() not in _FRAMING_HEADERS}
        return WireAnswer(reply.status_code, headers, reply.content)

    def opening(self, sent: Any) -> bytes:
        """The first events of a streamed answer (the stream has started after them)."""
        return self.harness.stream_opening(sent)

    def error(self, kind: ErrorKind, sent: Any, retry_after: float | None = None) -> WireAnswer:
        """The provider's answer to a request that failed with ``kind``."""
        failure = ScriptedFailure(kind, retry_after=retry_after)
        status = self.harness.error_statuses[kind]
        headers = {
            "content-type": "application/json",
            **self.harness.error_headers(failure, status),
        }
        body = json.dumps(self.harness.error_body(failure, sent)).encode()
        return WireAnswer(status, headers, body)


Script = Callable[[WireScript, Any, Call], Sequence[Step]]


#: An acceptable end of a call: an error type, or `ANSWER` (the reply, intact).
Outcome = type[BackendError] | None
ANSWER: Outcome = None


@dataclass(frozen=True)
class Fault:
    """A way the network or a server can misbehave, and what a backend must make of it.

    Attributes:
        name: the fault's id in test names.
        script: ``(wire, sent, call) -> steps`` for the server's answer.
        expect: the acceptable ends of the call: error types, or `ANSWER`.
        calls: the kinds of call the fault applies to.
        waits: how long the backend must wait before it can know (a read timeout).
        prompt: the call must end well inside one read timeout (nothing is left to
            wait for: the answer was whole).
        text: the reply's text (a 5 MB one for the big-event fault).
        retry_after: the ``retry_after`` the error must carry.
        retryable: what the error's ``retryable`` must say (``None``: not checked).
        max_retries: the backend's setting: a non-retryable error is sent once however
            many retries are allowed.
        refused: connect to a port where nothing listens.
    """

    name: str
    script: Script
    expect: tuple[Outcome, ...]
    calls: tuple[Call, ...] = (Call.STREAM, Call.COMPLETE)
    waits: float = 0.0
    prompt: bool = False
    text: str = TEXT
    retry_after: float | None = None
    retryable: bool | None = None
    max_retries: int = 0
    refused: bool = False

    def describe(self) -> str:
        """The acceptable ends, in words."""
        return " or ".join("the answer" if e is None else e.__name__ for e in self.expect)


def _answer_then(*tail: Step) -> Script:
    """The whole answer, chunked and unterminated, then ``tail``."""

    def script(wire: WireScript, sent: Any, call: Call) -> list[Step]:
        answer = wire.answer(sent)
        return [head(answer.status, answer.headers), chunk(answer.body), *tail]

    return script


def _opening_then(*tail: Step, framing: str = "chunked") -> Script:
    """The stream's first events (or half a plain body), then ``tail``."""

    def script(wire: WireScript, sent: Any, call: Call) -> list[Step]:
        answer = wire.answer(sent)
        start = wire.opening(sent) if call is Call.STREAM else answer.body[: len(answer.body) // 2]
        if framing == "close":
            return [head(answer.status, answer.headers, framing="close"), start, *tail]
        return [head(answer.status, answer.headers), chunk(start), *tail]

    return script


def _reset_after(count: int | None) -> Script:
    """The whole answer's bytes up to ``count`` (``None``: the headers and a first
    event), then a reset."""

    def script(wire: WireScript, sent: Any, call: Call) -> list[Step]:
        if count is not None:
            answer = wire.answer(sent)
            wire_bytes = head(
                answer.status, answer.headers, framing="length", length=len(answer.body)
            )
            return [(wire_bytes + answer.body)[:count], Pause(0.05), RESET]
        return [*_opening_then()(wire, sent, call), Pause(0.05), RESET]

    return script


def _trickle(wire: WireScript, sent: Any, call: Call) -> list[Step]:
    # Five pieces, gaps well inside the read timeout, the whole longer than it: the
    # timeout is an idle timeout, and a slow answer still arrives.
    answer = wire.answer(sent)
    size = -(-len(answer.body) // 5)
    gap = READ_TIMEOUT * 0.3
    return [
        head(answer.status, answer.headers),
        *pieces(answer.body, size, pause=gap, chunked=True),
        chunk(b""),
    ]


def _split_characters(wire: WireScript, sent: Any, call: Call) -> list[Step]:
    # A write ends inside every multibyte character: each arrives in two reads.
    answer = wire.answer(sent)
    body, start = answer.body, 0
    steps: list[Step] = [head(answer.status, answer.headers)]
    for index in range(1, len(body)):
        if 0x80 <= body[index] <= 0xBF and not 0x80 <= body[index - 1] <= 0xBF:
            steps += [chunk(body[start:index]), Pause(0.005)]
            start = index
    return [*steps, chunk(body[start:]), chunk(b"")]


def _big_event(wire: WireScript, sent: Any, call: Call) -> list[Step]:
    # The harness cuts text into small deltas; a one-letter text makes one delta, whose
    # JSON string is then swapped for 5 MB (text that JSON needs no escape for).
    answer = wire.answer(sent, _MARK)
    quoted = f'"{_MARK}"'.encode()
    if answer.body.count(quoted) != 1:
        raise ValueError(f"the answer to a one-letter text does not carry it once: {quoted!r}")
    body = answer.body.replace(quoted, f'"{_BIG_TEXT}"'.encode())
    return [head(answer.status, answer.headers), *pieces(body, 64 * 1024, chunked=True), chunk(b"")]


def _garbage(wire: WireScript, sent: Any, call: Call) -> list[Step]:
    answer = wire.answer(sent)
    noise = bytes(range(256)) * 8  # not UTF-8, not JSON, not any framing of a provider
    return [response(200, answer.headers, noise)]


def _unreachable(wire: WireScript, sent: Any, call: Call) -> list[Step]:
    raise AssertionError("nothing listens where a refused call connects")


def _hold(wire: WireScript, sent: Any, call: Call) -> list[Step]:
    return [HOLD]


def _json_instead(wire: WireScript, sent: Any, call: Call) -> list[Step]:
    # A server that ignores "stream": the plain answer, as JSON.
    plain = wire.answer({**sent, "stream": False} if isinstance(sent, dict) else sent)
    return [response(200, {"content-type": "application/json"}, plain.body)]


def _html(status: int) -> Script:
    def script(wire: WireScript, sent: Any, call: Call) -> list[Step]:
        page = b"<!DOCTYPE html><html><body><h1>Sign in to the network</h1></body></html>"
        return [response(status, {"content-type": "text/html; charset=utf-8"}, page)]

    return script


def _corrupt_gzip(wire: WireScript, sent: Any, call: Call) -> list[Step]:
    answer = wire.answer(sent)
    headers = {**answer.headers, "content-encoding": "gzip"}
    return [response(answer.status, headers, b"\x1f\x8b\x08\x00" + answer.body)]


def _redirect(wire: WireScript, sent: Any, call: Call) -> list[Step]:
    return [response(307, {"location": "https://elsewhere.example/v1/", "content-length": "0"})]


def _error(kind: ErrorKind, retry_after: float | None = None) -> Script:
    def script(wire: WireScript, sent: Any, call: Call) -> list[Step]:
        answer = wire.error(kind, sent, retry_after)
        return [response(answer.status, answer.headers, answer.body)]

    return script


_BIG_TEXT = ("0123456789abcdef" * (_BIG_TEXT_SIZE // 16))[:_BIG_TEXT_SIZE]
_MARK = "Z"


def _error_faults() -> list[Fault]:
    faults = []
    for kind in (
        ErrorKind.RATE_LIMIT,
        ErrorKind.OVERLOADED,
        ErrorKind.SERVER_ERROR,
        ErrorKind.AUTHENTICATION,
        ErrorKind.INVALID_REQUEST,
    ):
        expected = EXPECTED_ERRORS[kind]
        faults.append(
            Fault(
                f"status-{kind.value}",
                _error(kind),
                (expected.error_type,),
                retryable=expected.retryable,
            )
        )
        if expected.retryable:
            faults.append(
                Fault(
                    f"status-{kind.value}-retry-after",
                    _error(kind, 1.5),
                    (expected.error_type,),
                    retry_after=1.5,
                    retryable=True,
                )
            )
    return faults


_STREAM, _COMPLETE = (Call.STREAM,), (Call.COMPLETE,)

#: Every fault socket mode plays, by name.
FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in [
        Fault("refused", _unreachable, (NetworkError,), refused=True),
        Fault("reset-before-anything", _reset_after(0), (NetworkError,)),
        Fault("reset-in-the-headers", _reset_after(20), (NetworkError,)),
        Fault("reset-mid-body", _reset_after(None), (NetworkError,)),
        Fault("stall-before-headers", _hold, (BackendTimeoutError,), waits=READ_TIMEOUT),
        Fault("stall-mid-body", _opening_then(HOLD), (BackendTimeoutError,), waits=READ_TIMEOUT),
        # The answer is whole at its final event: a proxy holding the connection open, or
        # dropping it, after that changes nothing (and costs no read timeout).
        Fault("stall-after-the-final-event", _answer_then(HOLD), (ANSWER,), _STREAM, prompt=True),
        Fault("closed-after-the-final-event", _answer_then(CLOSE), (ANSWER,), _STREAM, prompt=True),
        Fault("reset-after-the-final-event", _answer_then(RESET), (ANSWER,), _STREAM, prompt=True),
        Fault(
            "truncated-close-delimited",
            _opening_then(CLOSE, framing="close"),
            (StreamProtocolError,),
            _STREAM,
        ),
        Fault("truncated-chunked", _opening_then(CLOSE), (NetworkError,)),
        Fault("trickle", _trickle, (ANSWER,)),
        Fault("multibyte-split-across-writes", _split_characters, (ANSWER,)),
        Fault("five-megabyte-event", _big_event, (ANSWER,), text=_BIG_TEXT),
        Fault("garbage-stream", _garbage, (StreamProtocolError,), _STREAM),
        # A 200 whose body is no answer: the server's fault, and trying again won't help.
        Fault("garbage-body", _garbage, (ServerError,), _COMPLETE, retryable=False),
        # A server ignoring "stream": NDJSON providers may read the one line as the answer.
        Fault("json-instead-of-a-stream", _json_instead, (StreamProtocolError, ANSWER), _STREAM),
        Fault("html-200", _html(200), (ServerError,), retryable=False),
        Fault("html-502", _html(502), (ServerError,), retryable=True),
        Fault("corrupt-gzip", _corrupt_gzip, (NetworkError,)),
        Fault("redirect", _redirect, (InvalidRequestError,), retryable=False, max_retries=2),
        *_error_faults(),
    ]
}


@dataclass
class FaultOutcome:
    """What one fault made of one call: the answer or the error, and how it went."""

    fault: Fault
    call: Call
    response: CompletionResponse | None = None
    error: BaseException | None = None
    seconds: float = 0.0
    requests: list[ReceivedRequest] = field(default_factory=list)
    sockets_left: list[str] = field(default_factory=list)
    server_connections_left: int = 0
    resource_warnings: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Everything that is not as the fault requires, one sentence each."""
        fault, found = self.fault, []
        budget = READ_TIMEOUT / 2 if fault.prompt else fault.waits + MARGIN
        if self.seconds > budget:
            found.append(f"took {self.seconds:.2f} s, more than the {budget:g} s allowed")
        if self.error is None and ANSWER in fault.expect:
            found.extend(self._answer_problems())
        elif self.error is None:
            found.append(f"expected {fault.describe()}, got the answer")
        elif not isinstance(self.error, tuple(e for e in fault.expect if e is not None)):
            found.append(f"expected {fault.describe()}, got {self.error!r}")
        else:
            assert isinstance(self.error, BackendError)
            found.extend(self._error_problems(self.error))
        if self.sockets_left:
            found.append(f"client sockets left open: {', '.join(self.sockets_left)}")
        if self.server_connections_left:
            found.append(f"{self.server_connections_left} connection(s) still open at the server")
        found.extend(f"ResourceWarning: {text}" for text in self.resource_warnings)
        return found

    def _answer_problems(self) -> list[str]:
        answer = self.response
        if answer is None:
            return ["no answer and no error"]
        if answer.content != self.fault.text:
            got = answer.content or ""
            return [
                f"the answer's text differs ({len(got)} characters, expected "
                f"{len(self.fault.text)}): {got[:60]!r}"
            ]
        if answer.finish_reason is not FinishReason.STOP:
            return [f"the answer finished with {answer.finish_reason}, not STOP"]
        return []

    def _error_problems(self, error: BackendError) -> list[str]:
        fault, found = self.fault, []
        if fault.retryable is not None and error.retryable is not fault.retryable:
            found.append(f"retryable={error.retryable}, expected {fault.retryable}: {error!r}")
        if fault.retry_after is not None and error.retry_after != fault.retry_after:
            found.append(f"retry_after={error.retry_after}, expected {fault.retry_after}")
        if not fault.refused and fault.max_retries and len(self.requests) != 1:
            found.append(f"sent {len(self.requests)} times; a non-retryable error is sent once")
        return found


async def run_fault(
    fault: Fault,
    call: Call,
    wire: WireScript,
    *,
    request: CompletionRequest | None = None,
    hooks: Hooks | None = None,
    config: Mapping[str, Any] | None = None,
) -> FaultOutcome:
    """Play ``fault`` for one ``call`` of a backend built by ``wire.create_backend``.

    The backend gets the server's URL, socket mode's timeouts, the fault's
    ``max_retries``, ``hooks`` and ``config``; it is closed before sockets are counted.
    """
    outcome = FaultOutcome(fault, call)
    request = request or ask_socket()
    with warnings.catch_warnings(record=True) as caught, WireServer() as server:
        warnings.simplefilter("always", ResourceWarning)
        server.answer_with(lambda received: fault.script(wire, received.json(), call))
        settings = {**wire.socket_settings(server), "max_retries": fault.max_retries}
        if fault.refused:
            settings["base_url"] = closed_port_url()
        backend = wire.create_backend(hooks=hooks, **settings, **(config or {}))
        started = time.monotonic()
        try:
            with anyio.fail_after(fault.waits + MARGIN * 4):  # a hang fails; never waits forever
                outcome.response = await _call(backend, call, request)
        except Exception as error:
            outcome.error = error
        finally:
            outcome.seconds = time.monotonic() - started
            await backend.aclose()
        outcome.requests = list(server.requests)
        outcome.sockets_left, outcome.server_connections_left = await wait_for_no_sockets(server)
        gc.collect()
    outcome.resource_warnings = [
        str(warning.message) for warning in caught if issubclass(warning.category, ResourceWarning)
    ]
    return outcome


def ask_socket(text: str = "Say hello.") -> CompletionRequest:
    """The request every socket-mode call makes."""
    return CompletionRequest(messages=[Message.user(text)], max_tokens=64)


async def _call(backend: Backend, call: Call, request: CompletionRequest) -> CompletionResponse:
    if call is Call.COMPLETE:
        return await backend.complete(request)
    async with await backend.complete_stream(request) as stream:
        return await stream.collect()


def _base_path(wire: WireScript) -> str:
    """The path part of the harness's base URL (``/v1`` for OpenAI's)."""
    base = wire.harness.base_url
    after_scheme = base.split("://", 1)[-1]
    path = after_scheme.partition("/")[2]
    return "/" + path if path else ""


async def wait_for_no_sockets(server: WireServer, seconds: float = 2.0) -> tuple[list[str], int]:
    """Wait (bounded) until no client socket and no server connection is left; return
    what is still open then."""
    deadline = time.monotonic() + seconds
    while True:
        left, open_at_server = server.client_sockets(), server.open_connections
        if (not left and not open_at_server) or time.monotonic() > deadline:
            return left, open_at_server
        await anyio.sleep(0.01)
