"""The loopback server, in a process of its own: precomputed bytes, on another core.

The client's CPU is what is measured, so the server runs elsewhere: in a child process
(``python -m benchmarks._server``) pinned to the last core while the client keeps the
others (`pin_client`). It is the kit's `WireServer` with a handler that picks, from the
path and the request body, the answer `_payloads` built once for it: serving a request
costs reading it and one write.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
from collections.abc import Iterator, Sequence

from tachikoma_backends_core.http.wire_server import ReceivedRequest, Step, WireServer, response

from ._payloads import FORMATS, deltas_asked

#: Enough descriptors for 10 000 connections on each side, and some to spare.
WANTED_FILES = 24_000


def raise_file_limit() -> int:
    """Raise the soft limit on open files as far as the hard limit allows; the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = WANTED_FILES if hard == resource.RLIM_INFINITY else min(WANTED_FILES, hard)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return max(soft, wanted)


def _cores() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def server_core() -> int | None:
    """The core the server gets: the last one, if there are two or more."""
    cores = _cores()
    return cores[-1] if len(cores) > 1 else None


def pin_client() -> str:
    """Keep this process off the server's core; says where each runs."""
    core = server_core()
    if core is None:
        return "one core: client and server share it"
    client = [c for c in _cores() if c != core]
    os.sched_setaffinity(0, client)
    return f"client on core(s) {','.join(map(str, client))}, server on core {core}"


def _answer_with_precomputed_bytes(server: WireServer) -> None:
    routes = {wire.base_path + wire.path: wire for wire in FORMATS.values()}

    def answer(request: ReceivedRequest) -> Sequence[Step]:
        server.requests.clear()  # a benchmark sends millions: keep none
        wire = routes.get(request.path)
        if wire is None:
            return [response(404, {"content-type": "text/plain"}, b"not a benchmark path")]
        return [wire.answer(deltas_asked(request.json()))]

    server.answer_with(answer)


def serve() -> None:
    """The child's side: serve until stdin closes (the parent ended or went away)."""
    raise_file_limit()
    core = server_core()
    if core is not None:
        os.sched_setaffinity(0, {core})
    with WireServer() as server:
        _answer_with_precomputed_bytes(server)
        print(server.url, flush=True)
        sys.stdin.read()


@contextlib.contextmanager
def running_server() -> Iterator[str]:
    """Start the server process; its base URL while the block runs."""
    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        url = child.stdout.readline().strip()
        if not url.startswith("http://"):
            raise RuntimeError(f"the benchmark server did not start (said {url!r})")
        yield url
    finally:
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


if __name__ == "__main__":
    serve()
