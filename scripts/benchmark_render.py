"""Benchmark of `make report` after a prose-only edit (issue 16, item 4: at most 3 s).

Not a test: it prints timings, each against its target where it has one.

The project (working tree as it is: helpers, notebooks, prose, data) is copied to a temporary folder
(a git repository there with one commit, so the build sentence's ``git`` calls cost what they cost in
a clone); every build runs in a new process in that copy, as ``make report`` runs it
(``python -m helpers.build.pipeline --data ... --output ...`` with the copy first on ``PYTHONPATH``, so
notebooks and kernels import the copy's helpers). Edits of the copy's prose, and changes other people
make to the project meanwhile, do not mix.

* cold - every notebook executed (``--no-cache``), then rendered (information: issue 16 sets the
  end-to-end target on a registry-size cohort, scripts/benchmark_report.py);
* warm command, nothing changed - the build again, ``--repeat`` times (information);
* warm command after a prose-only edit - before each of ``--repeat`` builds a sentence is added to
  the copy's ``sections/00-introduction.qmd``: no notebook is re-executed (the cache keys hold the
  notebooks, data and code, not the prose), the report is rendered again (HTML, PDF through Typst,
  Word). Target: median at most 3 s. The edit is checked to reach report.html;
* render only - ``python -m helpers.build.render`` on the executed notebooks (information).

Wall-clock times depend on what else runs on the machine; the CPU seconds of the build's processes
(the build, pandoc, kernels) depend on it much less, and are printed next to them.

Everything is written to a temporary folder; `_output/` is not touched.

Usage: python scripts/benchmark_render.py [--data FOLDER] [--renderer pandoc+typst|quarto] [--repeat 3] [--keep]
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from helpers.build.chunks import HTML_SECTIONS, READ_SECTIONS, TYPST_SECTIONS
from helpers.build.render import CITATIONS, RENDER_CACHE, TABLE_LAYOUTS
from helpers.config import PROJECT_ROOT

#: Issue 16, item 4: a prose-only edit re-renders in at most this many seconds (median)
PROSE_EDIT_TARGET_S = 3.0
#: The prose file the benchmark edits (in its copy of the project)
EDITED = Path("sections") / "00-introduction.qmd"
#: Not copied: the environment, version control, outputs and caches
NOT_COPIED = (".venv", ".git", "_output", ".pytest_cache", "__pycache__", "*.egg-info", "._output.*", ".ipynb_checkpoints")
#: What the fallback renderer keeps in the output's .cache/ for a prose-only edit (helpers.build.render,
#: helpers.build.chunks): a render that keeps none of it reads and writes the whole document again
KEPT = (*(TABLE_LAYOUTS.format(fmt=fmt) for fmt in ("pdf", "html", "docx")), CITATIONS, READ_SECTIONS, TYPST_SECTIONS,
        HTML_SECTIONS)
PROGRESS_RE = re.compile(r"^\[\d+/\d+\] (?P<name>\S+\.ipynb): done in (?P<seconds>[\d.]+) s", re.M)


def _children_cpu() -> float:
    """User + system CPU seconds of this process's finished children (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def copy_project(target: Path, source: Path = PROJECT_ROOT) -> Path:
    """The project's working tree copied to ``target`` (without :data:`NOT_COPIED`), made a git
    repository with one commit when git is available."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*NOT_COPIED), symlinks=True)
    git = ["git", "-c", "user.name=benchmark", "-c", "user.email=benchmark@example.invalid",
           "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null"]
    try:
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "--no-verify", "-m", "benchmark copy"]):
            subprocess.run(git + args, cwd=target, check=True, capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        pass    # outside git the build sentence says so; the timings barely change
    return target


def add_sentence(project: Path, number: int) -> str:
    """Append a sentence to the copy's :data:`EDITED` (a prose-only edit); returns the sentence."""
    sentence = f"This sentence was added by the render benchmark (edit {number})."
    path = project / EDITED
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n") + f"\n\n{sentence}\n", encoding="utf-8")
    return sentence


def run_build(project: Path, data: Path, out: Path, renderer: str | None, *extra: str) -> dict:
    """``python -m helpers.build.pipeline`` in ``project`` (a new process); its wall and CPU seconds,
    standard output, and the notebooks it executed."""
    cmd = [sys.executable, "-m", "helpers.build.pipeline", "--data", str(data), "--output", str(out), *extra]
    if renderer:
        cmd += ["--renderer", renderer]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(project), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    cpu, started = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=project, env=env, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
    if proc.returncode != 0:
        raise SystemExit(f"the build failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    executed = {m["name"]: float(m["seconds"]) for m in PROGRESS_RE.finditer(proc.stdout)}
    return {"seconds": seconds, "cpu_seconds": cpu, "stdout": proc.stdout, "executed": executed}


def run_render(project: Path, out: Path, renderer: str | None) -> dict:
    """``python -m helpers.build.render`` in ``project`` (a new process): wall and CPU seconds."""
    cmd = [sys.executable, "-m", "helpers.build.render", "--project", str(project), "--output", str(out)]
    if renderer:
        cmd += ["--renderer", renderer]
    env = dict(os.environ, PYTHONPATH=str(project))
    cpu, started = _children_cpu(), time.perf_counter()
    subprocess.run(cmd, cwd=project, env=env, check=True, capture_output=True)
    return {"seconds": time.perf_counter() - started, "cpu_seconds": _children_cpu() - cpu}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def summary_line(name: str, runs: list[dict], target: float | None = None) -> str:
    wall = statistics.median(r["seconds"] for r in runs)
    cpu = statistics.median(r["cpu_seconds"] for r in runs)
    where = f"median of {len(runs)}; fastest {min(r['seconds'] for r in runs):.2f} s; {cpu:.2f} CPU s"
    if target is None:
        return f"  {name:<46}{wall:6.2f} s   ({where})"
    return f"  {name:<46}{wall:6.2f} s   target <= {target:.0f} s: {verdict(wall <= target)}   ({where})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=None, help="cohort folder (default: the copy's data/)")
    parser.add_argument("--renderer", default=None, choices=("quarto", "pandoc+typst"))
    parser.add_argument("--repeat", type=int, default=3, help="builds per warm measurement (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    repeat = max(1, args.repeat)

    tmp = Path(tempfile.mkdtemp(prefix="bench-render-"))
    try:
        project = copy_project(tmp / "project")
        data = args.data.resolve() if args.data else project / "data"
        out = tmp / "_output"
        cold = run_build(project, data, out, args.renderer, "--no-cache")
        unchanged = [run_build(project, data, out, args.renderer) for _ in range(repeat)]
        edited, missing = [], []
        for number in range(1, repeat + 1):
            sentence = add_sentence(project, number)
            edited.append(run_build(project, data, out, args.renderer))
            if sentence not in (out / "report.html").read_text(encoding="utf-8"):
                missing.append(number)
        kept = [name for name in KEPT if not (out / RENDER_CACHE / name).is_file()]
        render = run_render(project, out, args.renderer)
        renderer_line = next((line for line in cold["stdout"].splitlines() if line.startswith("Renderer:")), "")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    print(renderer_line or "Renderer: (not printed)")
    print("\nper notebook (cold run):")
    print(f"  {'notebook':<28} {'seconds':>8}")
    for name, seconds in cold["executed"].items():
        print(f"  {name:<28} {seconds:8.1f}")
    print("\nbuild times (each a new process, as `make report`):")
    print(summary_line("cold (all notebooks executed, rendered)", [cold]))
    print(summary_line("warm command, nothing changed", unchanged))
    print(summary_line("warm command after a prose-only edit", edited, PROSE_EDIT_TARGET_S))
    print(summary_line("render only (python -m helpers.build.render)", [render]))
    reexecuted = sorted({name for run in unchanged + edited for name in run["executed"]})
    print(f"  notebooks re-executed in the warm runs: {', '.join(reexecuted) or 'none'} "
          f"({verdict(not reexecuted)}: a prose-only edit re-executes none)")
    if missing:
        print(f"  FAIL: the edited sentence is missing from report.html after edit(s) {missing}")
    if (args.renderer or "pandoc+typst") == "pandoc+typst":
        print(f"  kept between renders (tables, citations, prose sections read, in Typst and in HTML): "
              f"{verdict(not kept)}{': missing ' + ', '.join(kept) if kept else ''}")
    if args.keep:
        print(f"\nkept: {tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
