"""The server lifecycle, with real processes and sockets (127.0.0.1 only).

No Ollama here: a fake ``ollama`` (a Python script on ``PATH``) plays ``ollama serve``.
It reads ``OLLAMA_HOST`` as Ollama does, listens there and answers ``GET /``,
``/api/version``, ``/api/show``, ``/api/tags`` and ``/api/chat``; it writes its pid to a
file and runs until SIGTERM. Other modes exit at once with a message (a port already
taken), or bind and never answer (a server still discovering its GPUs).

What is checked: nothing answering fails fast saying how to start Ollama; ``auto_start``
without a binary names ``ollama_binary``; a started server answers, shapes ``info`` and
is stopped by ``aclose()``; a server that exits or stays silent is a
`ConfigurationError` quoting what it printed, and is not left running; the registry's
backends start theirs lazily, once.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
import pytest

from tachikoma_backend_ollama import (
    OllamaBackend,
    OllamaBackendConfig,
    OllamaServerConfig,
    plugin,
)
from tachikoma_backend_ollama._server import ServerProcess
from tachikoma_backends_core import (
    CompletionRequest,
    ConfigurationError,
    Message,
    NetworkError,
)

pytestmark = pytest.mark.anyio

REQUEST = CompletionRequest(messages=[Message.user("Hi")])
SHOWN_CONTEXT = 32768

# The fake `ollama`. Its shebang (this interpreter) is prepended when it is written.
FAKE_OLLAMA = r'''
"""A fake `ollama`: `ollama serve` as the plugin sees it."""
import json
import os
import signal
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODE = os.environ.get("FAKE_OLLAMA_MODE", "serve")
PIDFILE = os.environ.get("FAKE_OLLAMA_PIDFILE")
HOST = os.environ.get("OLLAMA_HOST", "")

if sys.argv[1:] != ["serve"]:
    print(f"fake ollama: expected `serve`, got {sys.argv[1:]}", file=sys.stderr)
    sys.exit(2)

print(f"fake ollama: OLLAMA_HOST={HOST}", flush=True)
if MODE == "exit":
    print(f"Error: listen tcp {HOST}: bind: address already in use", file=sys.stderr, flush=True)
    sys.exit(1)

address, _, port = HOST.rpartition(":")
address = address.strip("[]") or "127.0.0.1"


def announce():
    if PIDFILE:
        with open(PIDFILE, "a") as file:
            file.write(f"{os.getpid()}\n")


def terminated(*_):
    if PIDFILE:
        with open(PIDFILE + ".log", "a") as file:
            file.write(f"{os.getpid()} terminated\n")
    os._exit(0)


signal.signal(signal.SIGTERM, terminated)

if MODE == "silent":  # bound, listening, never answering
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, int(port)))
    listener.listen(16)
    announce()
    while True:
        time.sleep(60)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="application/json; charset=utf-8"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_json(self):
        length = int(self.headers.get("content-length", "0"))
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self):
        if self.path == "/":
            self.answer(200, b"Ollama is running", "text/plain; charset=utf-8")
        elif self.path == "/api/version":
            self.answer(200, {"version": "0.32.15"})
        elif self.path == "/api/tags":
            self.answer(200, {"models": [{"name": "llama3.2:latest", "size": 2019393189}]})
        else:
            self.answer(404, b"404 page not found", "text/plain")

    def do_POST(self):
        body = self.read_json()
        if self.path == "/api/show":
            self.answer(200, {
                "model_info": {
                    "general.architecture": "llama",
                    "llama.context_length": int(os.environ.get("FAKE_OLLAMA_CONTEXT", "32768")),
                },
                "capabilities": ["completion", "tools", "vision"],
                "details": {"family": "llama"},
            })
        elif self.path == "/api/chat":
            done = {
                "model": body["model"], "created_at": "2026-11-29T12:00:00Z",
                "message": {"role": "assistant", "content": "hello from the fake"},
                "done": True, "done_reason": "stop", "prompt_eval_count": 3, "eval_count": 4,
            }
            if body.get("stream", True):
                self.answer(200, (json.dumps(done) + "\n").encode(), "application/x-ndjson")
            else:
                self.answer(200, done)
        else:
            self.answer(404, b"404 page not found", "text/plain")


server = ThreadingHTTPServer((address, int(port)), Handler)
announce()
server.serve_forever()
'''


@dataclass
class FakeOllama:
    """The fake ``ollama`` on ``PATH``, and where it reports its pid."""

    path: Path
    pidfile: Path

    def pids(self) -> list[int]:
        if not self.pidfile.exists():
            return []
        return [int(line) for line in self.pidfile.read_text().split()]

    def terminations(self) -> list[str]:
        log = self.pidfile.with_name(self.pidfile.name + ".log")
        return log.read_text().splitlines() if log.exists() else []


def free_port() -> int:
    """A port nothing listens on (bound to 0, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def started(backend: OllamaBackend) -> bool:
    """Whether it started its server (read anew each time: it changes under awaits)."""
    return backend.started_server


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def assert_gone(pid: int, within: float = 10.0) -> None:
    with anyio.fail_after(within):
        while alive(pid):  # noqa: ASYNC110 - another process: nothing to wait on but time
            await anyio.sleep(0.05)


@pytest.fixture(autouse=True)
def no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in OllamaBackendConfig.environment_variables().values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("FAKE_OLLAMA_MODE", raising=False)


@pytest.fixture
def fake_ollama(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOllama]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    path = bin_dir / "ollama"
    path.write_text(f"#!{sys.executable}\n" + FAKE_OLLAMA.lstrip())
    path.chmod(0o755)
    fake = FakeOllama(path, tmp_path / "ollama.pid")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_OLLAMA_PIDFILE", str(fake.pidfile))
    yield fake
    for pid in fake.pids():  # a test that failed half-way must not leave a server behind
        if alive(pid):
            os.kill(pid, 9)


# -- nothing answers ----------------------------------------------------------------------


async def test_nothing_answering_fails_fast_saying_how_to_start_ollama() -> None:
    port = free_port()
    started = time.monotonic()
    with anyio.fail_after(10), pytest.raises(NetworkError) as raised:
        await OllamaBackend.create(
            OllamaServerConfig(host=f"127.0.0.1:{port}"), OllamaBackendConfig(connect_timeout=2)
        )
    assert time.monotonic() - started < 1.0, "a refused connection needs no connect timeout"
    message = raised.value.message
    assert f"http://127.0.0.1:{port}" in message
    for advice in ("ollama serve", "https://ollama.com/download", "OLLAMA_HOST", "auto_start"):
        assert advice in message
    assert raised.value.provider == "ollama"
    assert raised.value.retryable is True


async def test_ollama_host_from_the_environment_is_where_create_looks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    monkeypatch.setenv("OLLAMA_HOST", f":{port}")
    with anyio.fail_after(10), pytest.raises(NetworkError, match=f"127.0.0.1:{port}"):
        await OllamaBackend.create()


async def test_create_without_a_server_config_looks_where_the_backend_config_says() -> None:
    # The advice says "point OLLAMA_HOST (or base_url) at a running server": a base_url
    # given in the backend's config must be where create() looks.
    port = free_port()
    config = OllamaBackendConfig(base_url=f"127.0.0.1:{port}", connect_timeout=2)
    with anyio.fail_after(10), pytest.raises(NetworkError) as raised:
        await OllamaBackend.create(backend_config=config)
    assert f"http://127.0.0.1:{port}" in raised.value.message


async def test_auto_start_without_an_ollama_on_path_names_ollama_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    server = OllamaServerConfig(host=f"127.0.0.1:{free_port()}", auto_start=True)
    with anyio.fail_after(10), pytest.raises(ConfigurationError) as raised:
        await OllamaBackend.create(server, OllamaBackendConfig(connect_timeout=2))
    assert raised.value.field == "ollama_binary"
    assert "no 'ollama' on PATH" in raised.value.message
    assert "ollama serve" in raised.value.message


# -- a server started, used, stopped ---------------------------------------------------


@pytest.mark.parametrize("by", ["name-on-path", "path"])
async def test_auto_start_runs_ollama_serve_and_aclose_stops_it(
    fake_ollama: FakeOllama, by: str
) -> None:
    port = free_port()
    binary = "ollama" if by == "name-on-path" else str(fake_ollama.path)
    server = OllamaServerConfig(
        host=f"127.0.0.1:{port}", auto_start=True, start_timeout=20, binary=binary
    )
    with anyio.fail_after(30):
        backend = await OllamaBackend.create(server, OllamaBackendConfig())
        try:
            assert backend.started_server is True
            assert await backend.health_check() is True
            caps = backend.info.capabilities
            assert caps.max_context_tokens == SHOWN_CONTEXT, "the shown context length"
            assert caps.vision is True, "the shown capabilities"
            response = await backend.complete(REQUEST)
            assert response.text == "hello from the fake"
            (pid,) = fake_ollama.pids()
            assert alive(pid)
        finally:
            await backend.aclose()
        await assert_gone(pid)
    assert started(backend) is False
    assert fake_ollama.terminations() == [f"{pid} terminated"], "stopped with SIGTERM"
    await backend.aclose()  # idempotent, the server already gone


async def test_a_server_already_answering_is_used_and_not_started(
    fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    environment = {**os.environ, "OLLAMA_HOST": f"127.0.0.1:{port}"}
    process = await anyio.open_process([str(fake_ollama.path), "serve"], env=environment)
    try:
        with anyio.fail_after(30):
            while not fake_ollama.pids():  # noqa: ASYNC110 - the fake writes it when it listens
                await anyio.sleep(0.05)
            (pid,) = fake_ollama.pids()
            server = OllamaServerConfig(host=f"127.0.0.1:{port}", auto_start=True)
            backend = await OllamaBackend.create(server)
            assert backend.started_server is False
            assert backend.info.capabilities.max_context_tokens == SHOWN_CONTEXT
            await backend.aclose()
            assert alive(pid), "not ours to stop"
            assert fake_ollama.pids() == [pid], "none other started"
    finally:
        process.terminate()
        await process.wait()
        await process.aclose()


# -- a server that cannot start ----------------------------------------------------------


async def test_a_server_exiting_at_once_is_a_configuration_error_quoting_it(
    fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_OLLAMA_MODE", "exit")
    port = free_port()
    server = OllamaServerConfig(host=f"127.0.0.1:{port}", auto_start=True, start_timeout=20)
    started = time.monotonic()
    with anyio.fail_after(30), pytest.raises(ConfigurationError) as raised:
        await OllamaBackend.create(server)
    assert time.monotonic() - started < 10, "an exit is noticed, not waited out"
    message = raised.value.message
    assert "exited with status 1" in message
    assert f"Error: listen tcp 127.0.0.1:{port}: bind: address already in use" in message
    assert f"OLLAMA_HOST=127.0.0.1:{port}" in message


async def test_a_server_exiting_silently_says_it_printed_nothing(
    fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ollama.path.write_text(f"#!{sys.executable}\nimport sys\nsys.exit(3)\n")
    server = OllamaServerConfig(host=f"127.0.0.1:{free_port()}", auto_start=True)
    with anyio.fail_after(30), pytest.raises(ConfigurationError) as raised:
        await OllamaBackend.create(server)
    assert "exited with status 3" in raised.value.message
    assert "it printed nothing" in raised.value.message


async def test_a_server_that_never_answers_times_out_and_is_stopped(
    fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_OLLAMA_MODE", "silent")
    port = free_port()
    server = OllamaServerConfig(host=f"127.0.0.1:{port}", auto_start=True, start_timeout=1.5)
    started = time.monotonic()
    with anyio.fail_after(30), pytest.raises(ConfigurationError) as raised:
        await OllamaBackend.create(server)
    waited = time.monotonic() - started
    assert 1.5 <= waited < 10, waited
    message = raised.value.message
    assert "did not answer" in message
    assert "within 1.5 s (start_timeout)" in message
    assert f"OLLAMA_HOST=127.0.0.1:{port}" in message, "what it printed"
    (pid,) = fake_ollama.pids()
    with anyio.fail_after(15):
        await assert_gone(pid)


async def test_cancelling_a_start_stops_the_server(
    fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_OLLAMA_MODE", "silent")
    server = OllamaServerConfig(host=f"127.0.0.1:{free_port()}", auto_start=True, start_timeout=60)
    with pytest.raises(TimeoutError), anyio.fail_after(1.5):
        await OllamaBackend.create(server)
    (pid,) = fake_ollama.pids()
    await assert_gone(pid)


async def test_an_ipv6_address_is_passed_to_ollama_in_brackets(
    fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ollama reads OLLAMA_HOST with Go's net.SplitHostPort, which needs "[::1]:port";
    # "::1:port" is not an address it can listen on. No socket is opened here: the fake
    # prints what it was given and exits.
    monkeypatch.setenv("FAKE_OLLAMA_MODE", "exit")

    async def never() -> bool:
        return False

    with anyio.fail_after(30), pytest.raises(ConfigurationError) as raised:
        await ServerProcess.start("ollama", "http://[::1]:11500", start_timeout=20, answers=never)
    assert "OLLAMA_HOST=[::1]:11500" in raised.value.message


# -- through the registry: started lazily, once -------------------------------------------


async def test_a_registry_backend_starts_its_server_on_the_first_call(
    fake_ollama: FakeOllama,
) -> None:
    port = free_port()
    made = plugin.create(
        base_url=f"127.0.0.1:{port}",
        auto_start=True,
        ollama_binary=str(fake_ollama.path),
        start_timeout=20,
        max_retries=0,
    )
    inner = made.inner
    assert isinstance(inner, OllamaBackend)
    with anyio.fail_after(30):
        try:
            assert started(inner) is False
            assert fake_ollama.pids() == [], "nothing started before the first call"
            response = await made.complete(REQUEST)
            assert response.text == "hello from the fake"
            assert started(inner) is True
            streamed = await (await made.complete_stream(REQUEST)).collect()
            assert streamed.text == "hello from the fake"
            models = await inner.list_models()
            assert [m.name for m in models] == ["llama3.2:latest"]
            (pid,) = fake_ollama.pids()
        finally:
            await made.aclose()
        await assert_gone(pid)


async def test_calls_at_once_start_one_server(fake_ollama: FakeOllama) -> None:
    port = free_port()
    made = plugin.create(
        base_url=f"http://127.0.0.1:{port}", auto_start=True, start_timeout=20, max_retries=0
    )
    inner = made.inner
    assert isinstance(inner, OllamaBackend)
    texts: list[str] = []

    async def ask() -> None:
        texts.append((await made.complete(REQUEST)).text)

    async def list_them() -> None:
        texts.append(str(len(await inner.list_models())))

    with anyio.fail_after(30):
        try:
            async with anyio.create_task_group() as group:
                for _ in range(3):
                    group.start_soon(ask)
                group.start_soon(list_them)
            pids = fake_ollama.pids()
        finally:
            await made.aclose()
        assert len(pids) == 1, f"one server, not {pids}"
        await assert_gone(pids[0])
    assert sorted(texts) == ["1", *["hello from the fake"] * 3]


async def test_a_registry_backend_without_auto_start_starts_nothing(
    fake_ollama: FakeOllama,
) -> None:
    made = plugin.create(base_url=f"127.0.0.1:{free_port()}", max_retries=0)
    with anyio.fail_after(10):
        async with made:
            with pytest.raises(NetworkError, match="network failure"):
                await made.complete(REQUEST)
            assert await made.health_check() is False
    assert fake_ollama.pids() == [], "nothing started unasked"
