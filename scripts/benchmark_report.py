"""End-to-end benchmark: `make report` on a synthetic registry-size cohort (issue 16).

For each size the generator writes a cohort to a temporary folder (``python -m helpers.data.synthetic
<folder> --n N``, not timed), then the whole build runs as ``make report DATA=<folder>`` runs it
(``python -m helpers.build.pipeline --data <folder> --output <folder>/out``, in a new process: data
validation, every notebook, the render of HTML, PDF and Word). Printed per size: wall time, the time per
notebook (from the build's progress lines), and the peak memory of the whole process tree: the build, its
notebook kernels and their worker pools, proportional set sizes summed (pages a forked worker shares with
its parent count once), sampled every 250 ms with psutil (reading the proportional set size of a large
process costs CPU), with the step the build was in at the peak (the notebooks executing then, from the
build's "executing" and "done" lines). At 100,000 patients each is compared with the
targets of issue 16: at most 120 s and under 4 GiB on a 2-core machine.

Usage::

    python scripts/benchmark_report.py [--sizes 100000] [--keep]

``--sizes 1000000`` measures a million patients (about ten minutes and 10-20 GiB; see the README's limits).
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from helpers.benchmarking import resident
from helpers.config import PROJECT_ROOT

TARGET_SECONDS = 120.0
TARGET_MEMORY_GIB = 4.0
TARGET_N = 100_000


class TreeMemory:
    """Highest summed memory (bytes; :func:`resident`) of a process and all its descendants, sampled in a
    thread."""

    def __init__(self, pid: int, interval: float = 0.25, step=lambda: ""):
        self.process = psutil.Process(pid)
        self.interval = interval
        self.step = step        # what the build is doing (read at the peak)
        self.peak = 0
        self.peak_processes = 0
        self.peak_step = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                tree = [self.process, *self.process.children(recursive=True)]
            except psutil.Error:
                break
            total = 0
            for p in tree:
                try:
                    total += resident(p)
                except psutil.Error:
                    pass
            if total > self.peak:
                self.peak, self.peak_processes, self.peak_step = total, len(tree), self.step()
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False


def build(n: int, keep: bool) -> dict:
    """Generate a cohort of ``n`` patients and build its supplement; timings and peak memory."""
    tmp = Path(tempfile.mkdtemp(prefix=f"report-{n}-"))
    data, out = tmp / "data", tmp / "out"
    subprocess.run([sys.executable, "-m", "helpers.data.synthetic", str(data), "--n", str(n)], check=True,
                   cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL)
    command = [sys.executable, "-u", "-m", "helpers.build.pipeline", "--data", str(data), "--output", str(out)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    lines: list[str] = []
    running: dict[str, None] = {}       # the notebooks executing now, in the order they started
    state = {"done": 0}

    def step() -> str:
        if running:
            return "executing " + " and ".join(running)
        return "rendering" if state["done"] else "validating and loading the data"

    with TreeMemory(process.pid, step=step) as memory:
        for line in process.stdout:
            lines.append(line.rstrip())
            if m := re.search(r"\] (\S+\.ipynb): (executing|done|unchanged)", line):
                if m.group(2) == "executing":
                    running[m.group(1)] = None
                else:
                    running.pop(m.group(1), None)
                    state["done"] += 1
        status = process.wait()
    seconds = time.perf_counter() - started
    notebooks = {m.group(1): float(m.group(2)) for line in lines
                 if (m := re.search(r"\] (\S+\.ipynb): done in ([\d.]+) s", line))}
    if not keep:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return {"n": n, "status": status, "seconds": seconds, "peak_gib": memory.peak / 2**30,
            "processes": memory.peak_processes, "peak_step": memory.peak_step, "notebooks": notebooks, "folder": tmp if keep else None,
            "tail": lines[-6:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=str(TARGET_N), help="comma-separated cohort sizes")
    parser.add_argument("--keep", action="store_true", help="keep the cohort and the output folder")
    args = parser.parse_args(argv)
    print(f"make report end to end on {psutil.cpu_count()} CPU(s), "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB of memory")
    for n in (int(s) for s in args.sizes.split(",") if s):
        print(f"... n = {n:,}: generating the cohort and building", file=sys.stderr, flush=True)
        r = build(n, args.keep)
        if r["status"] != 0:
            print(f"n={n:,}: the build FAILED (exit status {r['status']}) after {r['seconds']:.1f} s, peak "
                  f"{r['peak_gib']:.2f} GiB ({r['peak_step']}):\n  " + "\n  ".join(r["tail"]))
            continue
        slowest = ", ".join(f"{name.split('-')[0]} {s:.0f} s" for name, s in
                            sorted(r["notebooks"].items(), key=lambda kv: -kv[1]))
        print(f"n={n:,}: {r['seconds']:.1f} s, peak memory {r['peak_gib']:.2f} GiB "
              f"({r['processes']} processes at the peak, {r['peak_step']}); notebooks: {slowest}")
        if n == TARGET_N:
            print(f"  target <= {TARGET_SECONDS:.0f} s: {'PASS' if r['seconds'] <= TARGET_SECONDS else 'FAIL'}; "
                  f"target < {TARGET_MEMORY_GIB:.0f} GiB: {'PASS' if r['peak_gib'] < TARGET_MEMORY_GIB else 'FAIL'}")
        if r["folder"]:
            print(f"  kept: {r['folder']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
