"""Fixtures shared by core's tests: fake installed distributions.

Fake distributions are written to ``tmp_path`` as ``<name>-<version>.dist-info`` folders
(``METADATA`` + ``entry_points.txt``) next to their module files, and that folder is put on
``sys.path``; ``importlib.metadata`` then discovers them exactly like installed
distributions. Every module name carries a per-test suffix because ``sys.modules`` caches
imports, and the fixture removes the modules it created when the test ends.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tachikoma_backends_core.registry import ENTRY_POINT_GROUP, PLUGINS_ENV_VAR


@dataclass
class FakeSite:
    """A directory on ``sys.path`` that fake plugin distributions are written into."""

    path: Path
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    modules: list[str] = field(default_factory=list)

    def module(self, stem: str) -> str:
        """A module name unique to this test: ``stem`` plus the site's suffix."""
        return f"{stem}_{self.suffix}"

    def make_dist(
        self,
        name: str,
        version: str,
        entry_points: dict[str, str],
        modules: dict[str, str],
        group: str = ENTRY_POINT_GROUP,
    ) -> None:
        """Write distribution ``name`` declaring ``entry_points`` and holding ``modules``.

        ``entry_points`` maps plugin name -> ``"module:attribute"`` in ``group``
        (``tachikoma.backends`` unless said); ``modules`` maps module name -> source.
        """
        dist_info = self.path / f"{name.replace('-', '_')}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
        lines = [f"[{group}]", *(f"{k} = {v}" for k, v in entry_points.items())]
        (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        for module, source in modules.items():
            (self.path / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
            self.modules.append(module)
        # The path finder caches directory listings; new module files must be seen.
        importlib.invalidate_caches()


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSite]:
    monkeypatch.delenv(PLUGINS_ENV_VAR, raising=False)
    path = tmp_path / "site-packages"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    fake = FakeSite(path)
    yield fake
    for module in fake.modules:
        sys.modules.pop(module, None)
