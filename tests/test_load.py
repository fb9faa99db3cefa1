"""Load: 1,000 concurrent streams, 10% of them faulty, three rounds (issue 13).

One backend per plugin serves 1,000 streams at once from a `WireServer` speaking the
plugin's own bytes; every tenth request the server answers with a fault (a reset mid
stream, a cut chunked body, an overload status at once or after holding the request a
second, an HTML page). Every stream must end in the answer or the fault's typed error,
none may hang. After each round no client socket and no server connection is left, the
responses and streams alive in memory are as many as before the test, and the process's
resident memory stays within a stated margin of where it was after the first round.
Stalls that end in a read timeout are the socket traits' (one call at a time): here a
short timeout would also fire on healthy streams waiting their turn on a busy loop.
"""

from __future__ import annotations

import dataclasses
import gc
import resource
from collections import Counter
from typing import Any

import anyio
import httpx
import psutil
import pytest

from tachikoma_backends_core import BackendError, CompletionStream
from tachikoma_backends_core.conformance.socket_mode import (
    FAULTS,
    TEXT,
    Call,
    Fault,
    WireScript,
    ask_socket,
    wait_for_no_sockets,
)
from tachikoma_backends_core.http.wire_server import Pause, Step, WireServer, response

pytestmark = pytest.mark.anyio

HTTP_PLUGINS = ["claude", "openai", "ollama"]
STREAMS = 1000
ROUNDS = 3
# Far past any wait of a healthy stream: with 1,000 streams parsed on one event loop
# (and the server on a thread of the same process), a short read timeout fired on
# streams that were merely waiting their turn. A hang still fails the round.
READ_TIMEOUT = 30.0
CONNECT_TIMEOUT = 30.0
ROUND_SECONDS = 60.0
HELD_SECONDS = 1.0  # how long the held overloads wait before answering
# Growth of the process's resident memory from the end of round 1 to the end of round 3.
# A leak of one response, stream or connection per call would be 2,000 objects a round
# and their buffers: tens of megabytes. Allocator noise stays well under this.
MEMORY_MARGIN = 16 * 1024 * 1024


# The faults served, one request in ten, in turn.
def _held(fault: Fault) -> Fault:
    """``fault``'s answer, sent after the server held the request ``HELD_SECONDS``."""

    def script(wire: WireScript, sent: Any, call: Call) -> list[Step]:
        return [Pause(HELD_SECONDS), *fault.script(wire, sent, call)]

    return dataclasses.replace(fault, name=f"held-{fault.name}", script=script)


LOAD_FAULTS = [
    FAULTS["reset-mid-body"],
    FAULTS["truncated-chunked"],
    FAULTS["status-overloaded"],
    _held(FAULTS["status-overloaded"]),
    FAULTS["html-200"],
]


class FaultyProvider:
    """Answers every request with the plugin's bytes; every tenth with the next fault.

    Every request is the same, so each answer is built once: the server's one thread
    then keeps up with 1,000 requests at once, and a timeout means the client's.
    """

    def __init__(self, wire: WireScript) -> None:
        self.wire = wire
        self.served = 0
        self.built: dict[str, list[Step]] = {}

    def __call__(self, received: Any) -> list[Step]:
        self.served += 1
        fault = LOAD_FAULTS[(self.served // 10) % len(LOAD_FAULTS)]
        key = fault.name if self.served % 10 == 0 else "answer"
        if key not in self.built:
            self.built[key] = self._build(key, fault, received.json())
        return self.built[key]

    def _build(self, key: str, fault: Fault, sent: Any) -> list[Step]:
        if key != "answer":
            return list(fault.script(self.wire, sent, Call.STREAM))
        answer = self.wire.answer(sent)
        return [response(answer.status, answer.headers, answer.body)]


def _alive(kind: type) -> int:
    gc.collect()
    return sum(isinstance(thing, kind) for thing in gc.get_objects())


def _enough_file_descriptors() -> None:
    # Both ends of 1,000 connections live in this process.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 4 * STREAMS
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.fail(f"the load test needs {needed} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


async def _round(wire: WireScript, server: WireServer) -> Counter[str]:
    """One round: STREAMS streams at once through one backend; what each ended in."""
    outcomes: Counter[str] = Counter()
    backend = wire.create_backend(
        **{
            **wire.socket_settings(server),
            "read_timeout": READ_TIMEOUT,
            "connect_timeout": CONNECT_TIMEOUT,
            "timeout": READ_TIMEOUT,
        },
        max_connections=STREAMS,
    )

    async def one() -> None:
        try:
            async with await backend.complete_stream(ask_socket()) as stream:
                answer = await stream.collect()
            outcomes["answer" if answer.content == TEXT else "wrong answer"] += 1
        except BackendError as error:
            outcomes[type(error).__name__] += 1

    async with backend:
        with anyio.fail_after(ROUND_SECONDS):
            async with anyio.create_task_group() as group:
                for _ in range(STREAMS):
                    group.start_soon(one)
    return outcomes


@pytest.mark.parametrize("name", HTTP_PLUGINS)
async def test_a_thousand_concurrent_streams_with_faults_leave_nothing_behind(name: str) -> None:
    _enough_file_descriptors()
    wire = WireScript.for_plugin(name)
    provider = FaultyProvider(wire)
    process = psutil.Process()
    memory_after: list[int] = []
    # Objects other tests of the session still hold are not this test's: count from here.
    responses_before, streams_before = _alive(httpx.Response), _alive(CompletionStream)
    with WireServer(provider) as server:
        for round_number in range(1, ROUNDS + 1):
            outcomes = await _round(wire, server)
            faults = STREAMS // 10
            assert outcomes["answer"] == STREAMS - faults, f"round {round_number}: {outcomes}"
            assert sum(outcomes.values()) == STREAMS, f"round {round_number}: {outcomes}"
            expected_errors: Counter[str] = Counter()
            for fault in LOAD_FAULTS:
                (kind,) = fault.expect
                assert kind is not None
                expected_errors[kind.__name__] += faults // len(LOAD_FAULTS)
            assert outcomes - Counter(answer=STREAMS - faults) == expected_errors, (
                f"round {round_number}: every fault must end in its typed error: {outcomes}"
            )
            left, at_server = await wait_for_no_sockets(server, seconds=10)
            assert not left, f"round {round_number}: {len(left)} client sockets left open"
            assert not at_server, f"round {round_number}: {at_server} connections at the server"
            responses = _alive(httpx.Response) - responses_before
            streams = _alive(CompletionStream) - streams_before
            assert responses == 0, f"round {round_number}: {responses} responses left alive"
            assert streams == 0, f"round {round_number}: {streams} streams left alive"
            memory_after.append(process.memory_info().rss)
    growth = memory_after[-1] - memory_after[0]
    print(f"{name}: resident memory after each round: {[m // 2**20 for m in memory_after]} MiB")
    assert growth < MEMORY_MARGIN, (
        f"resident memory grew {growth / 2**20:.1f} MiB from round 1 to round {ROUNDS} "
        f"(allowed {MEMORY_MARGIN / 2**20:.0f} MiB): {[m // 2**20 for m in memory_after]} MiB"
    )
