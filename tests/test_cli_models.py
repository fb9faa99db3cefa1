"""``tachikoma models`` and ``tachikoma pull`` against a fake Ollama over real TCP.

The fake (anyio, 127.0.0.1, in the test's task group) answers ``/api/tags`` and
``/api/pull``: a pull of ``llama3.2`` streams Ollama's progress lines, a pull of a model
the registry lacks answers 200, then ``pulling manifest``, then the error line Ollama
sends. The CLI runs in a worker thread (its own event loop), or as the console script
with ``OLLAMA_HOST`` set, so the server keeps serving meanwhile.

Also the progress renderer's terminal path: rich's bars, drawn into a fake terminal.
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread
import pytest

from tachikoma_backend_ollama._scripting import ndjson_bytes, pull_lines
from tachikoma_backends_core import PullProgress
from tachikoma_backends_core.cli import main
from tachikoma_backends_core.cli._pull_progress import show_pull

pytestmark = pytest.mark.anyio

TACHIKOMA = Path(sys.executable).with_name("tachikoma")
DIGEST = "sha256:dde5aa3fc5ffc17176b5e8bdc82f587b24b2678c6c66101bf7da77af9f7ccdff"
MISSING = "pull model manifest: file does not exist"
TAGS = {
    "models": [
        {
            "name": "llama3.2:latest",
            "model": "llama3.2:latest",
            "size": 2_019_393_189,
            "digest": DIGEST.removeprefix("sha256:"),
            "modified_at": "2026-11-20T09:13:21+01:00",
        },
        {"name": "qwen3:0.6b", "model": "qwen3:0.6b", "size": 522_653_767},
    ]
}


class FakeOllama:
    """Answers what ``tachikoma models`` and ``tachikoma pull`` ask; records the asks."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []

    async def handle(self, client: anyio.abc.SocketStream) -> None:
        async with client:
            raw = b""
            while b"\r\n\r\n" not in raw:
                raw += await client.receive()
            head, _, body = raw.partition(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            method, target, _version = request_line.split(" ")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines)
            }
            while len(body) < int(headers.get("content-length", "0")):
                body += await client.receive()
            sent: Any = json.loads(body) if body else None
            self.requests.append((method, target, sent))
            if target == "/api/tags":
                await self.send(client, "application/json", json.dumps(TAGS).encode())
            elif target == "/api/version":
                await self.send(client, "application/json", b'{"version": "0.32.15"}')
            elif target == "/api/pull" and sent["model"] == "llama3.2":
                await self.send(client, "application/x-ndjson", ndjson_bytes(pull_lines(DIGEST)))
            elif target == "/api/pull":
                failed = [{"status": "pulling manifest"}, {"error": MISSING}]
                await self.send(client, "application/x-ndjson", ndjson_bytes(failed))
            else:
                await client.send(
                    b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\n"
                    b"content-length: 18\r\nconnection: close\r\n\r\n404 page not found"
                )

    @staticmethod
    async def send(client: anyio.abc.SocketStream, content_type: str, payload: bytes) -> None:
        # Chunked, one piece per line, as Ollama streams.
        await client.send(
            f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\nconnection: close\r\n".encode()
            + b"transfer-encoding: chunked\r\n\r\n"
        )
        for line in payload.splitlines(keepends=True):
            await client.send(f"{len(line):x}\r\n".encode() + line + b"\r\n")
        await client.send(b"0\r\n\r\n")


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, FakeOllama]]:
    server = FakeOllama()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, server.handle)
        yield f"http://127.0.0.1:{port}", server
        group.cancel_scope.cancel()


@pytest.fixture(autouse=True)
def no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("OLLAMA_HOST", "OLLAMA_API_KEY"):
        monkeypatch.delenv(variable, raising=False)


async def cli(*argv: str) -> tuple[int, str, str]:
    """``tachikoma ARGV`` in a worker thread; the exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        return main(list(argv), out=out, err=err)

    with anyio.fail_after(30):
        code = await anyio.to_thread.run_sync(run)
    return code, out.getvalue(), err.getvalue()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- tachikoma pull ------------------------------------------------------------------------


async def test_pull_shows_progress_and_ends_with_pulled(served: tuple[str, FakeOllama]) -> None:
    url, server = served
    code, out, err = await cli("pull", "llama3.2", "-o", f"base_url={url}")
    assert (code, err) == (0, ""), err
    lines = out.splitlines()
    short = DIGEST.removeprefix("sha256:")[:12]
    assert lines[0] == "pulling manifest"
    progress = [line for line in lines if line.startswith(f"pulling {short}")]
    assert progress, out
    for line in progress:
        assert re.fullmatch(rf"pulling {short}: +\d+% of 2\.0 GB", line), line
    assert progress[-1].endswith("100% of 2.0 GB")
    assert lines[-4:] == [
        "verifying sha256 digest",
        "writing manifest",
        "success",
        "pulled llama3.2",
    ]
    assert server.requests == [("POST", "/api/pull", {"model": "llama3.2", "stream": True})]


async def test_pulling_a_model_the_registry_lacks_fails_in_one_line(
    served: tuple[str, FakeOllama],
) -> None:
    url, _server = served
    code, out, err = await cli("pull", "llama9", "-o", f"base_url={url}")
    assert code == 1
    assert out.splitlines() == ["pulling manifest"]
    assert err.count("\n") == 1, err
    assert err.startswith("tachikoma: error: ")
    assert "ollama.com/library" in err
    assert "'llama9'" in err
    assert "pulled" not in out


async def test_pull_with_a_backend_that_cannot_pull() -> None:
    code, out, err = await cli("pull", "x", "-b", "mock")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith("tachikoma: error: ")
    assert "cannot pull models" in err


async def test_pull_with_nothing_answering_fails_in_one_line() -> None:
    code, out, err = await cli("pull", "llama3.2", "-o", f"base_url=127.0.0.1:{free_port()}")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1, err
    assert err.startswith("tachikoma: error: ")
    assert "network failure" in err


async def test_a_server_that_cannot_start_fails_in_one_line(tmp_path: Path) -> None:
    # What `ollama serve` printed is quoted in the error; the CLI promises one line.
    fake = tmp_path / "ollama"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "print('Couldn\\'t find /root/.ollama/id_ed25519. Generating new private key.')\n"
        "print('Error: listen tcp 127.0.0.1:1: bind: permission denied', file=sys.stderr)\n"
        "sys.exit(1)\n"
    )
    fake.chmod(0o755)
    code, out, err = await cli(
        "models",
        "ollama",
        "-o",
        f"base_url=127.0.0.1:{free_port()}",
        "-o",
        "auto_start=true",
        "-o",
        f"ollama_binary={fake}",
    )
    assert (code, out) == (1, "")
    assert err.startswith("tachikoma: error: ")
    assert "bind: permission denied" in err
    assert err.count("\n") == 1, f"one line, not:\n{err}"


# -- tachikoma models ----------------------------------------------------------------------


async def test_models_lists_ollamas_models_with_sizes(served: tuple[str, FakeOllama]) -> None:
    url, server = served
    code, out, err = await cli("models", "ollama", "-o", f"base_url={url}")
    assert (code, err) == (0, "")
    rows = [line.split() for line in out.splitlines()]
    assert rows == [
        ["ollama", "llama3.2:latest", "2.0", "GB"],
        ["ollama", "qwen3:0.6b", "0.5", "GB"],
    ]
    assert [(m, t) for m, t, _ in server.requests] == [("GET", "/api/tags")]


async def test_models_lists_the_mocks_models() -> None:
    code, out, err = await cli("models", "mock")
    assert (code, err) == (0, "")
    assert [line.split() for line in out.splitlines()] == [["mock", "mock-model"]]


async def test_the_console_script_reads_ollama_host(served: tuple[str, FakeOllama]) -> None:
    url, _server = served
    environment = {**os.environ, "OLLAMA_HOST": url.removeprefix("http://")}
    with anyio.fail_after(60):
        models = await anyio.run_process(
            [str(TACHIKOMA), "models", "ollama"], env=environment, check=False
        )
        pulled = await anyio.run_process(
            [str(TACHIKOMA), "pull", "llama3.2"], env=environment, check=False
        )
    assert models.returncode == 0, models.stderr.decode()
    assert "llama3.2:latest" in models.stdout.decode()
    assert pulled.returncode == 0, pulled.stderr.decode()
    assert pulled.stdout.decode().splitlines()[-1] == "pulled llama3.2"


# -- the terminal renderer -------------------------------------------------------------


class FakeTerminal(io.StringIO):
    """A StringIO that says it is a terminal: rich draws its bars into it."""

    def isatty(self) -> bool:
        return True


async def events(lines: list[dict[str, Any]]) -> AsyncIterator[PullProgress]:
    for line in lines:
        await anyio.lowlevel.checkpoint()
        yield PullProgress(
            status=line["status"],
            digest=line.get("digest"),
            completed=line.get("completed"),
            total=line.get("total"),
        )


async def test_show_pull_draws_bars_on_a_terminal() -> None:
    terminal = FakeTerminal()
    last = await show_pull(events(pull_lines(DIGEST, size=4_000_000)), terminal)
    assert last == PullProgress("success")
    drawn = terminal.getvalue()
    short = DIGEST.removeprefix("sha256:")[:12]
    for status in ("pulling manifest", f"pulling {short}", "verifying sha256 digest", "success"):
        assert status in drawn, drawn
    assert "━" in drawn, "a bar"
    assert "4.0/4.0 MB" in drawn, "the download column"
    assert "\x1b[" in drawn, "drawn for a terminal"


async def test_show_pull_writes_lines_elsewhere() -> None:
    out = io.StringIO()
    last = await show_pull(events(pull_lines(DIGEST, size=4_000_000)), out)
    assert last is not None
    assert last.done
    assert "━" not in out.getvalue()
    assert out.getvalue().splitlines()[0] == "pulling manifest"


async def test_show_pull_of_nothing() -> None:
    assert await show_pull(events([]), io.StringIO()) is None
    assert await show_pull(events([]), FakeTerminal()) is None
