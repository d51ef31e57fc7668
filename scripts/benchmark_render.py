"""Benchmark of `make report`: cold and warm build times, render time and time per notebook.

Not a test: it prints timings and the targets of issue 6 (on a 2-core machine after set-up:
cold build <= 45 s; after a prose-only change <= 5 s with no notebook re-executed).

* cold  - every notebook executed (cache off), then rendered;
* warm  - the same output folder built again: unchanged notebooks are not re-executed, the
          report is rendered again (what a prose-only edit of report.qmd costs);
* render only - helpers.render.render_report on the already executed notebooks.

Everything is written to a temporary folder; `_output/` is not touched.

Usage: python scripts/benchmark_render.py [--data data] [--renderer pandoc+typst|quarto] [--keep]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from helpers.config import PROJECT_ROOT

COLD_TARGET_S = 45.0
WARM_TARGET_S = 5.0


def _quiet(_message: str) -> None:
    pass


def _build(data: Path, out: Path, use_cache: bool, renderer: str | None) -> dict:
    from helpers.pipeline import build_report

    started = time.perf_counter()
    summary = build_report(data, out, use_cache=use_cache, renderer=renderer, progress=_quiet)
    summary["seconds"] = time.perf_counter() - started
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=PROJECT_ROOT / "data")
    parser.add_argument("--renderer", default=None, choices=("quarto", "pandoc+typst"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary output folder")
    args = parser.parse_args(argv)

    from helpers.render import render_report

    tmp = Path(tempfile.mkdtemp(prefix="bench-render-"))
    out = tmp / "_output"
    try:
        cold = _build(args.data, out, use_cache=False, renderer=args.renderer)
        warm = _build(args.data, out, use_cache=True, renderer=args.renderer)
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
    reexecuted = [Path(nb.path).name for nb in warm["executed"] if not nb.cached]
    print("\nbuild times:")
    print(f"  cold (all notebooks executed, rendered)  {cold['seconds']:6.1f} s   "
          f"target <= {COLD_TARGET_S:.0f} s: {'met' if cold['seconds'] <= COLD_TARGET_S else 'NOT met'}")
    print(f"  warm (nothing changed, re-rendered)      {warm['seconds']:6.1f} s   "
          f"target <= {WARM_TARGET_S:.0f} s: {'met' if warm['seconds'] <= WARM_TARGET_S else 'NOT met'}")
    print(f"  render only ({len(info.files)} formats)                {render_s:6.1f} s")
    print(f"  notebooks re-executed in the warm run: {', '.join(reexecuted) or 'none'}")
    if args.keep:
        print(f"\noutputs kept in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
