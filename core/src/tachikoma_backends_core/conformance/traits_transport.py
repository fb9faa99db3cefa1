"""Stream, timeout and connection traits, introduced by Backend contract 3.

Collected with the other trait modules; every trait here carries ``tachikoma_since(3)``.
They use contract 3's harness primitives (`Delivery`, `StallPoint`, errors after the
first chunk, `transport_closed`) to catch what the earlier traits could not see:

* a provider error after the first chunk that ends the stream as if it had finished;
* an event split across two network reads, lost or garbled;
* CRLF framing, or a connection held open after the final event, that keeps the answer
  from arriving until the body ends;
* a configured timeout ignored, and a cancelled ``health_check`` that swallows the
  cancellation;
* the upstream response of a call left open, seen through the harness's own count
  (``open_responses``), not the core's ``stream.closed`` flag: after an early exit, a
  failed stream, or a plain call cancelled mid-body;
* the HTTP client never closed by ``aclose``.
"""

from __future__ import annotations

import time

import anyio
import pytest

from tachikoma_backends_core.backend import Backend
from tachikoma_backends_core.completion import FinishReason, Usage
from tachikoma_backends_core.errors import BackendError, BackendTimeoutError
from tachikoma_backends_core.hooks import Hooks
from tachikoma_backends_core.managed import ManagedBackend

from .harness import (
    EXPECTED_ERRORS,
    ConformanceHarness,
    Delivery,
    ErrorKind,
    ScriptedFailure,
    ScriptedReply,
    StallPoint,
)
from .traits import (
    CALLS,
    PARALLEL,
    READ_FILE,
    area,
    ask,
    calls_summary,
    requires,
    send,
    since,
    skip_unless_it_streams,
)

pytestmark = pytest.mark.anyio

#: Seconds a call may take past what it waits for (slow CI machines; never a hang).
MARGIN = 3.0
#: The timeout the timeout traits configure.
TIMEOUT = 0.2
TEXT = "Héllo wörld — ☃ 🎉, in pieces."


def _no_open_responses(harness: ConformanceHarness, what: str) -> None:
    still_open = harness.open_responses()
    assert still_open is not None, (
        f"{type(harness).__name__}.open_responses() must count the responses it handed out "
        "(contract 3)"
    )
    assert still_open == 0, (
        f"{what} left {still_open} upstream response(s) open: the plugin never closed its "
        "HTTP response (the stream's own closed flag is the core's, not the connection's)"
    )


# -- errors after the first chunk -----------------------------------------------------

LATE_KINDS = [ErrorKind.OVERLOADED, ErrorKind.SERVER_ERROR]


@since(3)
@area("streaming")
@requires("streaming")
@pytest.mark.parametrize("kind", LATE_KINDS, ids=[kind.value for kind in LATE_KINDS])
async def test_a_provider_error_after_the_first_chunk_fails_the_stream(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend, kind: ErrorKind
) -> None:
    tachikoma_harness.script_failure(ScriptedFailure(kind, after_first_chunk=True))
    chunks = []
    failure: BackendError | None = None
    async with tachikoma_backend as backend:
        with anyio.fail_after(10):
            try:
                async with await backend.complete_stream(ask()) as stream:
                    async for chunk in stream:
                        chunks.append(chunk)
            except BackendError as error:
                failure = error
    finished = [c.finish_reason for c in chunks if c.finish_reason is not None]
    assert failure is not None, (
        f"a provider {kind.value} error after the first chunk ended the stream as if it had "
        f"finished (finish {finished or 'none'}, no error raised)"
    )
    expected = EXPECTED_ERRORS[kind].error_type
    assert isinstance(failure, expected), (
        f"a {kind.value} error event after the first chunk must raise {expected.__name__}, "
        f"got {type(failure).__name__}: {failure}"
    )
    assert any(chunk.delta for chunk in chunks), "the chunk before the error must arrive"
    _no_open_responses(tachikoma_harness, f"a stream failed by a {kind.value} event")


# -- delivery -------------------------------------------------------------------------


@since(3)
@area("streaming")
@pytest.mark.parametrize("call", CALLS)
async def test_events_split_across_reads_arrive_whole(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend, call: str
) -> None:
    skip_unless_it_streams(tachikoma_backend, call)
    tools = tachikoma_backend.info.capabilities.tool_calling
    request = ask().with_tools([READ_FILE]) if tools else ask()
    reply = ScriptedReply(
        text=TEXT,
        tool_calls=PARALLEL if tools else (),
        usage=Usage(17, 9),
        delivery=Delivery(read_size=1),
    )
    tachikoma_harness.script_reply(reply)
    async with tachikoma_backend as backend:
        with anyio.fail_after(30):
            try:
                response = await send(backend, request, call)
            except BackendError as error:
                raise AssertionError(
                    f"an answer delivered a byte per read failed ({call}): an event split "
                    f"across network reads was lost or garbled: {type(error).__name__}: {error}"
                ) from None
    got = (response.content, calls_summary(response.tool_calls), response.usage)
    assert got == (reply.text, calls_summary(list(reply.tool_calls)), reply.usage), (
        f"an answer delivered a byte per read arrived changed ({call}): an event split "
        f"across network reads was lost or garbled: text {response.content!r}, "
        f"{len(response.tool_calls)} tool call(s), usage {response.usage}"
    )


@since(3)
@area("streaming")
@requires("streaming")
@pytest.mark.parametrize("line_ending", ["\n", "\r\n"], ids=["lf", "crlf"])
async def test_a_stream_ends_at_its_final_event(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend, line_ending: str
) -> None:
    delivery = Delivery(line_ending=line_ending, keep_open=True)  # type: ignore[arg-type]
    tachikoma_harness.script_reply(ScriptedReply(text=TEXT, delivery=delivery))
    framing = "CRLF" if line_ending == "\r\n" else "LF"
    async with tachikoma_backend as backend:
        with anyio.move_on_after(MARGIN) as waiting:
            async with await backend.complete_stream(ask()) as stream:
                response = await stream.collect()
    assert not waiting.cancelled_caught, (
        f"a stream with {framing} framing, its connection held open after the final event, "
        f"had not ended {MARGIN:g} s later: "
        + (
            "with CRLF line endings no event arrives until the body ends"
            if line_ending == "\r\n"
            else "the stream waits for the body to end instead of its final event"
        )
    )
    assert (response.content, response.finish_reason) == (TEXT, FinishReason.STOP), (
        f"a stream with {framing} framing arrived changed: {response.content!r}, "
        f"{response.finish_reason}"
    )


# -- timeouts and cancellation --------------------------------------------------------


def _backend_with_timeout(harness: ConformanceHarness, seconds: float) -> ManagedBackend[Backend]:
    created = harness.create_backend(max_retries=0, **harness.timeout_config(seconds))
    return ManagedBackend(created, retry_policy=None, hooks=Hooks())


STALLS = [StallPoint.BEFORE_RESPONSE, StallPoint.MID_BODY]


@since(3)
@area("timeouts")
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("point", STALLS, ids=[point.value for point in STALLS])
async def test_the_configured_timeout_ends_a_stalled_call(
    tachikoma_harness: ConformanceHarness, point: StallPoint, call: str
) -> None:
    backend = _backend_with_timeout(tachikoma_harness, TIMEOUT)
    if call == "stream" and not backend.info.capabilities.streaming:
        await backend.aclose()
    skip_unless_it_streams(backend, call)
    tachikoma_harness.script_stall(point)
    error: BaseException | None = None
    started = time.monotonic()
    async with backend:
        with anyio.move_on_after(TIMEOUT + MARGIN) as waiting:
            try:
                await send(backend, ask(), call)
            except BackendError as raised:
                error = raised
    took = time.monotonic() - started
    assert not waiting.cancelled_caught, (
        f"a call stalled {point.value.replace('_', ' ')} was still waiting {took:.1f} s later "
        f"with timeout={TIMEOUT:g} configured: the configured timeout was ignored"
    )
    assert isinstance(error, BackendTimeoutError), (
        f"a call stalled {point.value.replace('_', ' ')} must end in BackendTimeoutError "
        f"once its timeout passes, got {error!r}"
    )
    _no_open_responses(tachikoma_harness, f"a {call} call that timed out")


@since(3)
@area("health")
async def test_a_cancelled_health_check_is_cancelled(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    tachikoma_harness.script_stall(StallPoint.HEALTH_CHECK)
    result: bool | None = None
    async with tachikoma_backend as backend:
        with anyio.fail_after(MARGIN * 2):  # a health check that ignores cancellation hangs
            with anyio.move_on_after(0.1) as scope:
                result = await backend.health_check()
    assert scope.cancelled_caught, (
        f"health_check swallowed the cancellation of the task running it (it returned "
        f"{result!r}): cancellation must propagate, not become 'unhealthy'"
    )


@since(4)
@area("health")
async def test_check_health_says_why(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    async with tachikoma_backend as backend:
        report = await backend.check_health()
        assert report.healthy, f"a healthy provider must give a healthy report, got {report!r}"
        assert report.error is None, f"a healthy report must carry no error, got {report!r}"
        tachikoma_harness.script_unhealthy()
        report = await backend.check_health()
        assert not report.healthy, "an unhealthy provider must give an unhealthy report"
        assert isinstance(report.error, BackendError), (
            "an unhealthy report must carry the typed error the probe met (contract 4): "
            "the plugin left check_health to the default, which only knows health_check's "
            "bool; override it (the HTTP kit's HttpConnection.health gives the report)"
        )
        healthy = await backend.health_check()
    assert healthy is False, (
        f"health_check answered {healthy!r} where check_health reported unhealthy: answer "
        "health_check from check_health so that the two agree"
    )


@since(4)
@area("health")
async def test_a_stalled_health_check_reports_the_timeout(
    tachikoma_harness: ConformanceHarness,
) -> None:
    backend = _backend_with_timeout(tachikoma_harness, TIMEOUT)
    tachikoma_harness.script_stall(StallPoint.HEALTH_CHECK)
    async with backend:
        with anyio.move_on_after(TIMEOUT + MARGIN) as waiting:
            report = await backend.check_health()
    assert not waiting.cancelled_caught, (
        f"a stalled health check was still waiting {TIMEOUT + MARGIN:g} s later with "
        f"timeout={TIMEOUT:g} configured: check_health ignored the configured timeout"
    )
    assert isinstance(report.error, BackendTimeoutError), (
        f"a stalled health check must report a BackendTimeoutError, got {report!r}"
    )


@since(3)
@area("streaming")
async def test_a_plain_call_cancelled_mid_body_closes_its_response(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    tachikoma_harness.script_stall(StallPoint.MID_BODY)
    async with tachikoma_backend as backend:
        with anyio.fail_after(MARGIN * 2), anyio.move_on_after(0.1) as scope:
            await backend.complete(ask())
        assert scope.cancelled_caught, "the stalled call ended before it was cancelled"
        _no_open_responses(tachikoma_harness, "a plain call cancelled mid-body")


# -- upstream release -----------------------------------------------------------------


@since(3)
@area("streaming")
@requires("streaming")
async def test_leaving_a_stream_early_closes_its_response(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    tachikoma_harness.script_reply(ScriptedReply(text=TEXT))
    async with tachikoma_backend as backend:
        async with await backend.complete_stream(ask()) as stream:
            async for _chunk in stream:
                break
        _no_open_responses(tachikoma_harness, "a stream left after its first chunk")


MID_STREAM_FAILURES = {
    "malformed_stream": ScriptedFailure(ErrorKind.MALFORMED_STREAM),
    "stream_cut": ScriptedFailure(ErrorKind.STREAM_CUT),
    "overloaded_event": ScriptedFailure(ErrorKind.OVERLOADED, after_first_chunk=True),
}


@since(3)
@area("streaming")
@requires("streaming")
@pytest.mark.parametrize("failure", list(MID_STREAM_FAILURES))
async def test_a_failed_stream_closes_its_response(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend, failure: str
) -> None:
    tachikoma_harness.script_failure(MID_STREAM_FAILURES[failure])
    async with tachikoma_backend as backend:
        stream = await backend.complete_stream(ask())
        with anyio.fail_after(10), pytest.raises(BackendError):
            await stream.collect()
        _no_open_responses(tachikoma_harness, f"a stream failed by {failure}")


@since(3)
@area("lifecycle")
async def test_aclose_closes_the_transport(
    tachikoma_harness: ConformanceHarness, tachikoma_backend: Backend
) -> None:
    tachikoma_harness.script_reply(ScriptedReply(text="ok"))
    async with tachikoma_backend as backend:
        await backend.complete(ask())
    closed = tachikoma_harness.transport_closed()
    assert closed is not None, (
        f"{type(tachikoma_harness).__name__}.transport_closed() must say whether the "
        "backend's transport was closed (contract 3)"
    )
    assert closed, "aclose() left the backend's HTTP client open (its connection pool leaks)"
