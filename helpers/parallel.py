"""Independent fits in a process pool, with results that do not depend on the number of workers.

Used for the bootstrap replicates of the C-index validation, the imputations of multiple imputation and the
weighted-Cox bootstrap. The rule that makes results identical for any worker count: every random draw is made
before the work is split (or from a stream of its own per task), and results come back in task order.

The worker count is the plan's top-level ``workers``: ``auto`` (the default) uses the cores this process may
run on; an integer overrides it (1 = no pool). The pool forks the process (Linux, macOS), so the large arrays
of a task are inherited, not copied through pipes; where fork is unavailable the tasks run one after another.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Sequence

__all__ = ["resolve_workers", "map_tasks", "POOL_MIN_PATIENTS"]

#: Fits of a cohort smaller than this run in the calling process: for small data a fork costs more than
#: the fits it would share out (results are the same either way).
POOL_MIN_PATIENTS = 20_000

#: Shared read-only context of the running map (inherited by the forked workers).
_CONTEXT: Any = None
_FUNCTION: Callable | None = None


def available_cores() -> int:
    """Cores this process may run on (the CPU affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:     # macOS, Windows
        return max(1, os.cpu_count() or 1)


def resolve_workers(setting: Any = "auto") -> int:
    """The number of worker processes for a plan's ``workers`` setting.

    Parameters
    ----------
    setting : "auto", None or a positive integer
        "auto" or None: :func:`available_cores`; an integer: that many (at least 1).

    Raises
    ------
    ValueError
        When the setting is neither "auto" nor a positive integer.
    """
    if setting is None or (isinstance(setting, str) and setting.strip().lower() == "auto"):
        return available_cores()
    try:
        value = int(setting)
    except (TypeError, ValueError):
        raise ValueError(f"analysis.yaml: workers must be 'auto' or a positive integer, got {setting!r}") from None
    if value < 1 or isinstance(setting, bool):
        raise ValueError(f"analysis.yaml: workers must be 'auto' or a positive integer, got {setting!r}")
    return value


def _run(task):
    return _FUNCTION(_CONTEXT, task)


def _fork_context():
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return None


def map_tasks(function: Callable[[Any, Any], Any], tasks: Sequence, context: Any = None,
              workers: int = 1) -> list:
    """``[function(context, task) for task in tasks]``, computed by ``workers`` forked processes.

    ``context`` is shared read-only (inherited at fork, never pickled); each task and each result is
    pickled. Results are returned in the order of ``tasks``, so a caller that draws every random number
    before the call (or gives each task its own seed) gets the same list for any ``workers``. With one
    worker, one task, or no fork on the platform, the tasks run in this process.
    """
    global _CONTEXT, _FUNCTION
    tasks = list(tasks)
    workers = max(1, min(int(workers or 1), len(tasks)))
    ctx = _fork_context()
    if workers == 1 or ctx is None:
        return [function(context, task) for task in tasks]
    _CONTEXT, _FUNCTION = context, function
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            return list(pool.map(_run, tasks))
    finally:
        _CONTEXT, _FUNCTION = None, None
