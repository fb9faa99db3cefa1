"""Socket-mode traits, introduced by Backend contract 3 (collected under ``--sockets``).

The plugin's own bytes, from its `HttpxHarness`, served over real TCP by a `WireServer`
on 127.0.0.1 with every fault in `socket_mode.FAULTS`, on each call kind; and the
connection's lifecycle: a finished stream gives its connection back for the next call, an
abandoned or cancelled one closes it, and ``aclose`` during calls ends them all with a
typed error and no socket left. Each trait counts the client's sockets (psutil) and
fails on a ``ResourceWarning``.
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import anyio.lowlevel
import pytest

from tachikoma_backends_core.errors import BackendError
from tachikoma_backends_core.http.wire_server import HOLD, Step, WireServer, chunk, head, response

from .socket_mode import (
    FAULTS,
    MARGIN,
    Call,
    Fault,
    WireScript,
    ask_socket,
    run_fault,
    wait_for_no_sockets,
)
from .traits import area, since

pytestmark = pytest.mark.anyio

FAULT_CASES = [
    pytest.param(fault, call, id=f"{fault.name}-{call.value}")
    for fault in FAULTS.values()
    for call in fault.calls
]


async def _skip_unless_it_streams(wire: WireScript) -> None:
    backend = wire.create_backend(base_url="http://127.0.0.1:9")  # never called
    async with backend:
        if not backend.info.capabilities.streaming:
            pytest.skip(f"{backend.info.name} does not declare streaming")


@since(3)
@area("sockets")
@pytest.mark.parametrize(("fault", "call"), FAULT_CASES)
async def test_fault_over_a_real_socket(
    tachikoma_wire: WireScript, fault: Fault, call: Call
) -> None:
    if call is Call.STREAM:
        await _skip_unless_it_streams(tachikoma_wire)
    outcome = await run_fault(fault, call, tachikoma_wire)
    problems = outcome.problems()
    assert not problems, f"{fault.name} ({call.value}): " + "; ".join(problems)


@contextmanager
def _no_resource_warnings() -> Iterator[None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaked, "ResourceWarning: " + "; ".join(leaked)


async def _assert_no_sockets(server: WireServer, what: str) -> None:
    left, at_server = await wait_for_no_sockets(server)
    assert not left, f"{what}: client sockets left open: {', '.join(left)}"
    assert not at_server, f"{what}: {at_server} connection(s) still open at the server"


def _whole_answer(wire: WireScript, sent: object) -> list[Step]:
    answer = wire.answer(sent)
    return [response(answer.status, answer.headers, answer.body)]


def _opening_and_hold(wire: WireScript, sent: object) -> list[Step]:
    answer = wire.answer(sent)
    return [head(answer.status, answer.headers), chunk(wire.opening(sent)), HOLD]


@since(3)
@area("sockets")
async def test_finished_streams_give_their_connection_back(tachikoma_wire: WireScript) -> None:
    await _skip_unless_it_streams(tachikoma_wire)
    with _no_resource_warnings(), WireServer() as server:
        server.answer_with(lambda received: _whole_answer(tachikoma_wire, received.json()))
        backend = tachikoma_wire.create_backend(**tachikoma_wire.socket_settings(server))
        async with backend:
            for _ in range(3):
                async with await backend.complete_stream(ask_socket()) as stream:
                    await stream.collect()
            assert server.connections == 1, (
                f"3 streams, one after another, opened {server.connections} connections: a "
                "stream read to its end must give its connection back to the pool"
            )
        await _assert_no_sockets(server, "after aclose")


@since(3)
@area("sockets")
async def test_leaving_a_stream_early_closes_its_socket(tachikoma_wire: WireScript) -> None:
    wire = tachikoma_wire
    await _skip_unless_it_streams(wire)
    with _no_resource_warnings(), WireServer() as server:
        server.answer_with(lambda received: _opening_and_hold(wire, received.json()))
        backend = wire.create_backend(**wire.socket_settings(server))
        async with backend:
            async with await backend.complete_stream(ask_socket()) as stream:
                async for _ in stream:
                    break
            await _assert_no_sockets(server, "a stream left after its first chunk")


@since(3)
@area("sockets")
@pytest.mark.parametrize("call", list(Call), ids=[call.value for call in Call])
async def test_a_cancelled_call_closes_its_socket(tachikoma_wire: WireScript, call: Call) -> None:
    wire = tachikoma_wire
    if call is Call.STREAM:
        await _skip_unless_it_streams(wire)
    with _no_resource_warnings(), WireServer() as server:
        server.answer_with(lambda received: _opening_and_hold(wire, received.json()))
        backend = wire.create_backend(**wire.socket_settings(server))
        async with backend:
            with anyio.move_on_after(0.2) as scope:
                if call is Call.STREAM:
                    async with await backend.complete_stream(ask_socket()) as stream:
                        await stream.collect()
                else:
                    await backend.complete(ask_socket())
            assert scope.cancelled_caught, "the call ended before it was cancelled"
            await _assert_no_sockets(server, f"a cancelled {call.value} call")


#: Points at which ``aclose`` comes: event-loop turns after the calls started (0: before
#: any was sent; more: while connecting, sending, awaiting headers, reading the body).
ACLOSE_POINTS = [0, 2, 5, 10, 40]


@since(3)
@area("sockets")
@pytest.mark.parametrize("turns", ACLOSE_POINTS)
async def test_aclose_during_calls_ends_them_typed_and_leaves_no_socket(
    tachikoma_wire: WireScript, turns: int
) -> None:
    wire = tachikoma_wire
    await _skip_unless_it_streams(wire)
    with _no_resource_warnings(), WireServer() as server:
        # Half the calls get a stream that starts and then stalls, half no answer at all.
        server.answer_with(
            lambda received: (
                _opening_and_hold(wire, received.json()) if len(server.requests) % 2 else [HOLD]
            )
        )
        # A read timeout far past the margin: a call left waiting for it fails the trait.
        settings = {**wire.socket_settings(server), "read_timeout": 60.0, "timeout": 60.0}
        backend = wire.create_backend(**settings)
        outcomes: list[BaseException | None] = []

        async def call(index: int) -> None:
            try:
                if index % 2:
                    await backend.complete(ask_socket())
                else:
                    async with await backend.complete_stream(ask_socket()) as stream:
                        await stream.collect()
                outcomes.append(None)
            except Exception as error:  # recorded: the trait says what it was
                outcomes.append(error)

        with anyio.move_on_after(MARGIN) as waiting:
            async with anyio.create_task_group() as group:
                for index in range(8):
                    group.start_soon(call, index)
                for _ in range(turns):
                    await anyio.lowlevel.checkpoint()
                await backend.aclose()
        assert not waiting.cancelled_caught, (
            f"calls in flight when aclose ran were still waiting {MARGIN:g} s later "
            f"({len(outcomes)} of 8 had ended): aclose must end them"
        )
        untyped = [repr(error) for error in outcomes if not isinstance(error, BackendError)]
        assert not untyped, f"calls in flight during aclose ended untyped: {untyped}"
        await _assert_no_sockets(server, "aclose during calls")
