"""Small pieces shared by the benchmark scripts (scripts/benchmark_*.py): timing, R's presence, verdicts,
the memory of a process. Not used by the analyses or the build."""
from __future__ import annotations

import shutil
import subprocess
import time
from typing import Callable


def best_of(repeat: int, fn: Callable, before: Callable | None = None) -> tuple[float, object]:
    """(shortest wall time in seconds of ``repeat`` calls of ``fn``, the value of the last call);
    ``before`` runs untimed before each call."""
    times, value = [], None
    for _ in range(repeat):
        if before is not None:
            before()
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), value


def r_available() -> bool:
    """Whether ``Rscript`` is on PATH with the survival package."""
    if shutil.which("Rscript") is None:
        return False
    done = subprocess.run(["Rscript", "-e", "quit(status = !requireNamespace('survival', quietly = TRUE))"],
                          capture_output=True)
    return done.returncode == 0


def verdict(ok: bool | None) -> str:
    """"PASS", "FAIL", or "n/a " when the check could not run."""
    return "n/a " if ok is None else ("PASS" if ok else "FAIL")


def resident(process) -> int:
    """Memory of a ``psutil.Process`` that is its own: the proportional set size (pages shared with the
    parent after a fork count by their share) where the platform reports it, else the RSS."""
    import psutil
    try:
        return process.memory_full_info().pss
    except (AttributeError, psutil.AccessDenied):
        return process.memory_info().rss
