"""Starting ``ollama serve`` when nothing answers, and stopping what was started.

Only when asked (``auto_start``) and only when the binary is there: a library that starts
servers unbidden surprises people. The started process listens where the backend looks
(``OLLAMA_HOST`` is set for it), is waited for within ``start_timeout`` (``ollama serve``
binds its port before it answers, so readiness is an answer, not a connection), and is
stopped when the backend closes: terminated, then killed if it lingers. What it printed
goes to a temporary file, quoted in the error when it cannot start.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from typing import IO
from urllib.parse import urlsplit

import anyio
import anyio.abc

from tachikoma_backends_core.errors import ConfigurationError

from ._wire import PROVIDER

__all__ = ["ServerProcess", "how_to_start"]

_POLL_SECONDS = 0.1
_STOP_SECONDS = 5.0
_QUOTED = 600


def how_to_start(base_url: str) -> str:
    """The advice for a server that does not answer at ``base_url``."""
    return (
        f"nothing answers at {base_url}: start Ollama with `ollama serve` (install it from "
        "https://ollama.com/download), point OLLAMA_HOST (or base_url) at a running "
        "server, or pass auto_start=True to have the backend start one"
    )


class ServerProcess:
    """An ``ollama serve`` this backend started; `stop` ends it."""

    def __init__(self, process: anyio.abc.Process, log: IO[bytes]) -> None:
        self._process = process
        self._log = log

    @classmethod
    async def start(
        cls,
        binary: str,
        base_url: str,
        *,
        start_timeout: float,
        answers: Callable[[], Awaitable[bool]],
    ) -> ServerProcess:
        """Run ``binary serve`` for ``base_url``; wait ``start_timeout`` s for it to answer.

        ``answers`` asks the server whether it is up. A `ConfigurationError` says why it
        could not start: no binary, it exited (with what it printed), or it stayed silent.
        """
        path = shutil.which(binary)
        if path is None:
            raise ConfigurationError(
                f"{how_to_start(base_url)}; auto_start found no {binary!r} on PATH",
                field="ollama_binary",
                provider=PROVIDER,
            )
        parts = urlsplit(base_url)
        environment = {**os.environ, "OLLAMA_HOST": parts.netloc}  # "[::1]:11500" stays bracketed
        log = tempfile.TemporaryFile()  # noqa: SIM115 - the server's, closed by stop()
        try:
            process = await anyio.open_process(
                [path, "serve"],
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            log.close()
            raise ConfigurationError(
                f"could not run {path} serve: {exc}", field="ollama_binary", provider=PROVIDER
            ) from None
        server = cls(process, log)
        try:
            await server._wait_until_it_answers(base_url, start_timeout, answers)
        except BaseException:
            await server.stop()
            raise
        return server

    async def _wait_until_it_answers(
        self, base_url: str, seconds: float, answers: Callable[[], Awaitable[bool]]
    ) -> None:
        with anyio.move_on_after(seconds):
            while self._process.returncode is None:
                if await answers():
                    return
                await anyio.sleep(_POLL_SECONDS)
            raise ConfigurationError(
                f"`ollama serve` exited with status {self._process.returncode} before "
                f"answering at {base_url}: {self._printed()}",
                provider=PROVIDER,
            )
        raise ConfigurationError(
            f"`ollama serve` did not answer at {base_url} within {seconds:g} s "
            f"(start_timeout): {self._printed()}",
            provider=PROVIDER,
        )

    def _printed(self) -> str:
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").strip().splitlines()
        text = " | ".join(line.strip() for line in lines if line.strip())  # one line
        if not text:
            return "it printed nothing"
        return "it printed: " + (text if len(text) <= _QUOTED else "..." + text[-_QUOTED:])

    @property
    def running(self) -> bool:
        return self._process.returncode is None

    async def stop(self) -> None:
        """Terminate the server (its whole process group), kill it if it lingers."""
        with anyio.CancelScope(shield=True):
            try:
                if self._process.returncode is None:
                    self._signal(signal.SIGTERM)
                    with anyio.move_on_after(_STOP_SECONDS):
                        await self._process.wait()
                    if self._process.returncode is None:
                        self._signal(signal.SIGKILL)
                        await self._process.wait()
            finally:
                await self._process.aclose()
                self._log.close()

    def _signal(self, number: signal.Signals) -> None:
        try:
            if hasattr(os, "killpg"):  # the server and any runner it spawned
                os.killpg(self._process.pid, number)
            else:  # pragma: no cover - Windows
                self._process.send_signal(number)
        except (ProcessLookupError, PermissionError):
            pass
