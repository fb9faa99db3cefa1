"""Build a wheel and an sdist of every distribution, then check their metadata.

``make dist`` runs this: core and the four plugins, each built with ``python -m build``
into one directory (``dist/`` at the repository root unless ``--out-dir`` says
otherwise), then ``twine check --strict`` over everything built. The builds run without
isolation, on the hatchling of the running environment, so after the tools are installed
nothing is downloaded and five distributions build in seconds rather than in ten fresh
build environments.

The tools come from ``requirements/dev.lock``; until the lock carries them, missing ones
are installed into the running environment at the versions pinned in ``TOOLS``.

    python scripts/build_dists.py                 # into ./dist
    python scripts/build_dists.py --out-dir /tmp/wheels
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Source directory -> distribution name, in build order (core first).
DISTRIBUTIONS = {
    "core": "tachikoma-backends-core",
    "plugins/mock": "tachikoma-backend-mock",
    "plugins/claude": "tachikoma-backend-claude",
    "plugins/openai": "tachikoma-backend-openai",
    "plugins/ollama": "tachikoma-backend-ollama",
}
#: Module -> requirement. hatchling is every pyproject's build backend; twine 6.1 is the
#: first to accept the Metadata-Version 2.4 (License-Expression) that hatchling writes.
TOOLS = {"build": "build==1.6.1", "twine": "twine==7.0.0", "hatchling": "hatchling==1.33.0"}


def ensure_tools() -> None:
    """Install the build tools missing from this environment, saying so."""
    missing = [req for module, req in TOOLS.items() if importlib.util.find_spec(module) is None]
    if missing:
        print(f"installing the release tools: {' '.join(missing)}", flush=True)
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, *missing], check=True)


def build(out_dir: Path) -> list[Path]:
    """Build every distribution into ``out_dir``; the files built.

    Files of an earlier build there are removed first (only those: ``out_dir`` may be any
    directory), so twine checks, and pip finds, exactly this build.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in [*out_dir.glob("tachikoma_*.whl"), *out_dir.glob("tachikoma_*.tar.gz")]:
        old.unlink()
    for source, name in DISTRIBUTIONS.items():
        print(f"building {name} ({source}/)", flush=True)
        # No --sdist/--wheel: the wheel is built from the sdist, which proves the sdist whole.
        # Run from out_dir: `-m` puts the working directory first on sys.path, and the
        # repository's build/ (the docs site) must not stand in for the `build` package.
        command: list[str | Path] = [sys.executable, "-m", "build", "--no-isolation"]
        command += ["--outdir", out_dir, REPO / source]
        subprocess.run(command, check=True, cwd=out_dir)
    return sorted([*out_dir.glob("tachikoma_*.whl"), *out_dir.glob("tachikoma_*.tar.gz")])


def check(files: list[Path]) -> None:
    """``twine check --strict``: the metadata an index would show, README rendering included."""
    command: list[str | Path] = [sys.executable, "-m", "twine", "check", "--strict", *files]
    subprocess.run(command, check=True, cwd=files[0].parent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out-dir", type=Path, default=REPO / "dist", help="where to put them (default: dist/)"
    )
    args = parser.parse_args(argv)
    ensure_tools()
    try:
        files = build(args.out_dir.resolve())
        check(files)
    except subprocess.CalledProcessError as error:
        print(f"build_dists: {error.cmd[2]} failed (exit {error.returncode})", file=sys.stderr)
        return 1
    print(f"{len(files)} files in {args.out_dir}: " + ", ".join(f.name for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
