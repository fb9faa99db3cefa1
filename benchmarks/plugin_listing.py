"""How long does listing installed plugins take, next to a bare interpreter start?

Target: under 150 ms for `registry.available()` in a fresh process, importing no plugin
module. Prints medians over fresh interpreters and the ratio to `python -c pass`;
asserts nothing (machines are noisy), but exits 1 if a plugin module got imported.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 15
LISTING = (
    "from tachikoma_backends_core import registry\n"
    "plugins = registry.available()\n"
    "import sys\n"
    "leaked = [m for m in sys.modules if m.startswith('tachikoma_backend_')]\n"
    "print(len(plugins), ','.join(leaked))\n"
)


def median_seconds(code: str) -> tuple[float, str]:
    samples, output = [], ""
    for _ in range(RUNS):
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        )
        samples.append(time.perf_counter() - start)
        output = result.stdout.strip()
    return statistics.median(samples), output


def main() -> int:
    baseline, _ = median_seconds("pass")
    listing, output = median_seconds(LISTING)
    count, _, leaked = output.partition(" ")
    print(f"python -c pass            : {baseline * 1000:7.1f} ms (median of {RUNS})")
    print(f"registry.available()      : {listing * 1000:7.1f} ms, {count} plugin(s) listed")
    extra_ms = (listing - baseline) * 1000
    print(f"listing over bare start   : {extra_ms:7.1f} ms extra, ratio {listing / baseline:.2f}x")
    if leaked:
        print(f"FAIL: listing imported plugin modules: {leaked}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
