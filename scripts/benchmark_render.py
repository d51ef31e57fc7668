"""Benchmark of `make report`: cold and warm build times, render time and time per notebook.

Not a test: it prints timings and the targets of issue 6 (on a 2-core machine after set-up:
cold build <= 45 s; after a prose-only change <= 5 s with no notebook re-executed).

* cold  - every notebook executed (cache off), then rendered;
* warm  - the same output folder built again, ``--repeat`` times: the data are not validated again
          (validated-data.json), no notebook is re-executed (nor 08-reproduction and 09-provenance, which
          read results.json: it is unchanged), the report is rendered again. The cache keys hold the content of the
          notebooks, data and code, not of the prose, so this is what a prose-only edit of
          report.qmd or sections/*.qmd costs;
* warm command - the same as ``make report`` after a prose-only edit: ``python -m helpers.build.pipeline``
          in a new process (start-up and imports included), ``--repeat`` times;
* render only - helpers.build.render.render_report on the already executed notebooks.

Wall-clock times depend on what else runs on the machine; the CPU seconds (this process and its
children: kernels, pandoc) do much less, and are printed next to them.

Everything is written to a temporary folder; `_output/` is not touched.

Usage: python scripts/benchmark_render.py [--data data] [--renderer pandoc+typst|quarto] [--repeat 3] [--keep]
"""
from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from helpers.config import PROJECT_ROOT

COLD_TARGET_S = 45.0
WARM_TARGET_S = 5.0


def _quiet(_message: str) -> None:
    pass


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _build(data: Path, out: Path, use_cache: bool, renderer: str | None) -> dict:
    """build_report once; its summary with ``seconds`` (wall clock) and ``cpu_seconds``."""
    from helpers.build.pipeline import build_report

    cpu = _cpu_seconds()
    started = time.perf_counter()
    summary = build_report(data, out, use_cache=use_cache, renderer=renderer, progress=_quiet)
    summary["seconds"] = time.perf_counter() - started
    summary["cpu_seconds"] = _cpu_seconds() - cpu
    return summary


def _command(data: Path, out: Path, renderer: str | None) -> dict:
    """``python -m helpers.build.pipeline`` (what ``make report`` runs) in a new process, with its times."""
    cmd = [sys.executable, "-m", "helpers.build.pipeline", "--data", str(data), "--output", str(out)]
    cpu = _cpu_seconds()
    started = time.perf_counter()
    subprocess.run(cmd + (["--renderer", renderer] if renderer else []), cwd=PROJECT_ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {"seconds": time.perf_counter() - started, "cpu_seconds": _cpu_seconds() - cpu}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=PROJECT_ROOT / "data")
    parser.add_argument("--renderer", default=None, choices=("quarto", "pandoc+typst"))
    parser.add_argument("--repeat", type=int, default=3, help="number of warm builds (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary output folder")
    args = parser.parse_args(argv)

    from helpers.build.render import render_report

    tmp = Path(tempfile.mkdtemp(prefix="bench-render-"))
    out = tmp / "_output"
    try:
        cold = _build(args.data, out, use_cache=False, renderer=args.renderer)
        warms = [_build(args.data, out, use_cache=True, renderer=args.renderer) for _ in range(max(1, args.repeat))]
        commands = [_command(args.data, out, args.renderer) for _ in range(max(1, args.repeat))]
        started = time.perf_counter()
        info = render_report(PROJECT_ROOT, out, renderer=args.renderer)
        render_s = time.perf_counter() - started
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"renderer: {info.renderer} ({info.detail})")
    print("\nper notebook (cold run):")
    print(f"  {'notebook':<28} {'seconds':>8}")
    for nb in cold["executed"]:
        print(f"  {Path(nb.path).name:<28} {nb.seconds:8.1f}")
    reexecuted = sorted({Path(nb.path).name for warm in warms for nb in warm["executed"] if not nb.cached})
    print("\nbuild times:")
    print(f"  {'cold (all notebooks executed, rendered)':<41}{cold['seconds']:6.1f} s   "
          f"target <= {COLD_TARGET_S:.0f} s: {'met' if cold['seconds'] <= COLD_TARGET_S else 'NOT met'}   "
          f"({cold['cpu_seconds']:.1f} CPU s)")
    for name, runs in (("warm (nothing changed, re-rendered)", warms),
                       ("warm command (python -m helpers.build.pipeline)", commands)):
        wall = statistics.median(r["seconds"] for r in runs)
        cpu = statistics.median(r["cpu_seconds"] for r in runs)
        print(f"  {name:<41}{wall:6.1f} s   target <= {WARM_TARGET_S:.0f} s: "
              f"{'met' if wall <= WARM_TARGET_S else 'NOT met'}   (median of {len(runs)}; fastest "
              f"{min(r['seconds'] for r in runs):.1f} s; {cpu:.1f} CPU s)")
    print(f"  {f'render only ({len(info.files)} formats)':<41}{render_s:6.1f} s")
    print(f"  notebooks re-executed in the warm runs: {', '.join(reexecuted) or 'none'}")
    if args.keep:
        print(f"\noutputs kept in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
