"""Pre-flight checks: refuse, with the figure, work that cannot fit in this machine's memory.

A run that would need more than :data:`MEMORY_SHARE` of the physical memory for one of its
large arrays is refused before it starts, instead of ending in a raw ``MemoryError`` or an
out-of-memory kill after minutes of work ([reliability]).
"""

from __future__ import annotations

import os

from twin.errors import ScenarioError

__all__ = ["physical_memory_bytes", "check_memory", "MEMORY_SHARE"]

#: The share of physical memory one estimated allocation may take (the run needs the rest).
MEMORY_SHARE = 0.5


def physical_memory_bytes() -> int:
    """This machine's physical memory in bytes (0 where the system does not say)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):       # pragma: no cover - not POSIX
        return 0


def check_memory(need_bytes, what, fix) -> None:
    """A ScenarioError when ``need_bytes`` exceeds :data:`MEMORY_SHARE` of physical memory:
    ``what`` needs about X GiB, this machine has Y GiB; ``fix`` says what to change."""
    have = physical_memory_bytes()
    if have and need_bytes > MEMORY_SHARE * have:
        raise ScenarioError(f"{what} needs about {need_bytes / 1024 ** 3:,.1f} GiB of memory; this machine has "
                            f"{have / 1024 ** 3:,.1f} GiB; {fix}")
