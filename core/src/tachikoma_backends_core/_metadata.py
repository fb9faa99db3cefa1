"""Reading entry points from installed metadata, whatever else is installed.

``importlib.metadata.entry_points()`` folds duplicate copies of one distribution
together, but one distribution with malformed metadata (any, even one unrelated to us)
makes it raise for every group. Plugin discovery and hook loading must not depend on the
good health of every package on the machine.
"""

from __future__ import annotations

import importlib.metadata

__all__ = ["entry_points"]


def entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
    """The entry points of ``group`` in every installed distribution that can be read.

    The fast way first; when it raises, each distribution is read on its own and a
    broken one is skipped.
    """
    try:
        return list(importlib.metadata.entry_points(group=group))
    except Exception:  # a malformed entry_points.txt somewhere
        pass
    found: list[importlib.metadata.EntryPoint] = []
    seen: set[str] = set()
    for dist in importlib.metadata.distributions():
        try:
            name = (dist.metadata["Name"] or "").lower().replace("_", "-")
            if name in seen:
                continue  # a second copy of a distribution: the first one wins
            seen.add(name)
            found.extend(ep for ep in dist.entry_points if ep.group == group)
        except Exception:  # this distribution's metadata cannot be read: not ours to fix
            continue
    return found
