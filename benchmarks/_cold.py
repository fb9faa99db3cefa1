"""Cold start: a fresh interpreter doing one thing, timed from outside, wall clock.

Each snippet runs in a new process (`subprocess.run`), interleaved with the others
repetition after repetition. Bytecode caching is on for them, as in any installed
environment (``PYTHONDONTWRITEBYTECODE`` is dropped; one warm-up run writes the caches):
a cold start is a new process, not a first compilation. Listing must import no plugin
module: `run_cold` says which leaked if one did.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

_LISTING = (
    "import sys\n"
    "from tachikoma_backends_core import registry\n"
    "registry.available()\n"
    "leaked = [m for m in sys.modules if m.startswith('tachikoma_backend_')]\n"
    "print(','.join(leaked))\n"
)
_OURS = (
    "import asyncio\n"
    "from tachikoma_backends_core import registry\n"
    "backend = registry.create({name!r}{key})\n"
    "asyncio.run(backend.aclose())\n"
)
_FLOOR = "import asyncio, httpx\nclient = httpx.AsyncClient()\nasyncio.run(client.aclose())\n"
# The floor plus pydantic, which validates every backend's settings: a lower bound for a
# client built on both (this one also reads the CA bundle, which ours defers).
_FLOOR_PYDANTIC = (
    "import asyncio, httpx\n"
    "from pydantic import BaseModel, Field, SecretStr\n"
    "client = httpx.AsyncClient()\nasyncio.run(client.aclose())\n"
)
_SDKS = {
    "claude": "import asyncio, anthropic\n"
    "client = anthropic.AsyncAnthropic(api_key='k')\nasyncio.run(client.close())\n",
    "openai": "import asyncio, openai\n"
    "client = openai.AsyncOpenAI(api_key='k')\nasyncio.run(client.close())\n",
    "ollama": "import asyncio, ollama\n"
    "client = ollama.AsyncClient()\nasyncio.run(client.close())\n",
}


def commands(plugins: list[str], sdks: bool) -> dict[str, list[str]]:
    """Name -> command line, for the plugins asked for."""
    python = sys.executable
    cli = str(Path(python).with_name("tachikoma"))
    found = {
        "python -c pass": [python, "-c", "pass"],
        "registry.available()": [python, "-c", _LISTING],
        "tachikoma backends": [cli, "backends"],
        "tachikoma backends --check (loads each plugin)": [cli, "backends", "--check"],
        "floor: import httpx + AsyncClient": [python, "-c", _FLOOR],
        "floor + pydantic": [python, "-c", _FLOOR_PYDANTIC],
    }
    for name in plugins:
        key = "" if name == "ollama" else ", api_key='k'"
        found[f"{name}: registry.create + close"] = [python, "-c", _OURS.format(name=name, key=key)]
        if sdks:
            found[f"{name}: SDK import + client"] = [python, "-c", _SDKS[name]]
    return found


def run_cold(plugins: list[str], sdks: bool, runs: int) -> tuple[dict[str, list[float]], str]:
    """Seconds per run of each command (interleaved), and the plugin modules listing
    imported (``""``: none)."""
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    found = commands(plugins, sdks)
    leaked = ""
    for command in found.values():  # warm-up: bytecode caches
        subprocess.run(command, env=environment, capture_output=True, check=True, timeout=120)
    samples: dict[str, list[float]] = {name: [] for name in found}
    for _ in range(runs):
        for name, command in found.items():
            started = time.perf_counter()
            result = subprocess.run(
                command, env=environment, capture_output=True, text=True, check=True, timeout=120
            )
            samples[name].append(time.perf_counter() - started)
            if name == "registry.available()":
                leaked = result.stdout.strip()
    return samples, leaked
