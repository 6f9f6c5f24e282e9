"""What a process costs, read from /proc (Linux): CPU seconds, resident memory, its descendants.

The load benchmarks read a server's cost from its own accounting (utime + stime), not from a
sampler, so clients on the same machine do not blur it; `percentile` is the nearest-rank rule
their tables use.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a live process, all its threads (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_megabytes(pid: int) -> float:
    """Resident memory of a live process in MB (0 once it is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0.0
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def descendants(root: int) -> dict[int, str]:
    """Every live process below `root`, with its command name."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            name = text[text.index("(") + 1 : text.rindex(")")]
            parent = int(text.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append((int(entry.name), name))
    found, waiting = {}, [root]
    while waiting:
        for pid, name in children.get(waiting.pop(), []):
            found[pid] = name
            waiting.append(pid)
    return found


def group_cpu(root: int, keep: str) -> dict[int, float]:
    """CPU seconds of each live process below `root` whose command name contains `keep`."""
    return {pid: cpu_seconds(pid) for pid, name in descendants(root).items() if keep in name}


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds a group of processes spent between two `group_cpu` readings (new processes counted whole)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def percentile(values: list[float], share: float) -> float:
    """The `share` percentile by the nearest-rank rule (nan for no values)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]
