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


def add_comparison_arguments(parser, default_sizes: str, large: int, repeat_help: str, repeat_large: int) -> None:
    """The options of a side-by-side benchmark: ``--sizes``, ``--repeat``, ``--repeat-large``, ``--no-r``,
    ``--no-lifelines`` (read the sizes back with :func:`sizes_of`)."""
    parser.add_argument("--sizes", default=default_sizes, help=f"comma-separated patients (default {default_sizes})")
    parser.add_argument("--repeat", type=int, default=5, help=f"{repeat_help} (default 5)")
    parser.add_argument("--repeat-large", type=int, default=repeat_large,
                        help=f"repeats from {large:,} patients on (default {repeat_large})")
    parser.add_argument("--no-r", action="store_true", help="skip R even when Rscript is present")
    parser.add_argument("--no-lifelines", action="store_true")


def sizes_of(text: str) -> list[int]:
    """``"1e4,100000"`` -> ``[10000, 100000]``."""
    return [int(float(s)) for s in text.split(",") if s]


def speed_line(head: str, ours: tuple[str, float], others: list[tuple[str, float | None]], digits: int = 3) -> str:
    """``"<head>: ours 0.068 s, R 0.530 s (R / ours = 7.8x), ..."``; an other whose time is None is left out."""
    name, seconds = ours
    parts = [f"{head}: {name} {seconds:.{digits}f} s"]
    parts += [f"{other} {s:.{digits}f} s ({other} / {name} = {s / seconds:.1f}x)" for other, s in others if s is not None]
    return ", ".join(parts)
