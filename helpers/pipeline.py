"""``make report``: validate the data, execute the notebooks, render the supplement.

Everything is built in a staging folder next to ``_output/`` and swapped into place only when every
step succeeded, so bad input or a failing cell leaves the last good ``_output/`` untouched.

Usage::

    python -m helpers.pipeline [--data FOLDER] [--output FOLDER] [--no-cache] [--to html,pdf,docx]
                               [--renderer quarto|pandoc+typst] [--no-render]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import warnings
from pathlib import Path

from helpers.config import PROJECT_ROOT, data_dir, output_dir
from helpers.data import CohortValidationError, load_study
from helpers.execute import NotebookExecutionError, execute_notebooks, list_notebooks


class PipelineError(RuntimeError):
    """A step of the report pipeline failed; the message says which and why."""


def _swap_into_place(staging: Path, target: Path) -> None:
    """Replace ``target`` by ``staging`` with two renames (the old folder is removed afterwards)."""
    retired = target.with_name(f".{target.name}.old")
    if retired.exists():
        shutil.rmtree(retired)
    if target.exists():
        target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired, ignore_errors=True)


SETTINGS_NAME = "run-settings.json"


def run_settings() -> dict:
    """Settings read from the environment that change the outputs but not the code or the data.

    Stored as ``run-settings.json`` in the output folder; when they differ from the previous run's,
    every notebook is re-executed (the notebook cache key covers code and data only).
    """
    from helpers.formatting import suppression_threshold

    return {"suppress_below": suppression_threshold()}


def _previous_settings(out: Path) -> dict | None:
    try:
        return json.loads((out / SETTINGS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def build_report(data: Path, out: Path, *, use_cache: bool = True, render: bool = True,
                 formats: tuple[str, ...] = ("html", "pdf", "docx"), renderer: str | None = None,
                 progress=print) -> dict:
    """Run the whole pipeline; return a summary dict. Raises CohortValidationError or PipelineError."""
    started = time.perf_counter()
    study = load_study(data)  # validates first: bad data stop here, before anything is written
    progress(f"Data: {study.folder} ({len(study.patients)} patients, "
             f"{'SYNTHETIC' if study.config.synthetic else 'non-synthetic'}); all {study.rules_checked} rules passed")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.staging")
    if staging.exists():
        shutil.rmtree(staging)
    settings = run_settings()
    if use_cache and _previous_settings(out) != settings:
        use_cache = False  # e.g. small-cell suppression switched on or off: cached notebooks are stale
    if out.exists() and use_cache:
        shutil.copytree(out, staging, ignore=shutil.ignore_patterns("*.html", "*.pdf", "*.docx"))
    else:
        staging.mkdir(parents=True)
    (staging / SETTINGS_NAME).write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    try:
        executed = execute_notebooks(list_notebooks(), study.folder, staging, use_cache=use_cache,
                                     progress=progress)
        info = None
        if render:
            from helpers.render import RenderError, render_report

            try:
                info = render_report(PROJECT_ROOT, staging, formats, renderer)
            except RenderError as exc:
                raise PipelineError(f"rendering failed: {exc}") from None
            progress(f"Renderer: {info.renderer} ({info.detail})")
        _swap_into_place(staging, out)
    except NotebookExecutionError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise PipelineError(f"notebook execution failed: {exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = [out / p.name for p in info.files] if info else []
    return {"executed": executed, "renderer": info.renderer if info else None, "files": files,
            "seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the supplement: validate, execute notebooks, render.")
    parser.add_argument("--data", type=Path, default=None, help="cohort folder (default: data/)")
    parser.add_argument("--output", type=Path, default=None, help="output folder (default: _output/)")
    parser.add_argument("--no-cache", action="store_true", help="re-execute every notebook")
    parser.add_argument("--no-render", action="store_true", help="execute notebooks only")
    parser.add_argument("--to", default="html,pdf,docx", help="formats, comma-separated")
    parser.add_argument("--renderer", default=None, choices=("quarto", "pandoc+typst"))
    args = parser.parse_args(argv)
    # warnings (e.g. ignored unknown columns) as one plain line each, without source lines
    warnings.formatwarning = lambda message, category, *rest, **kw: f"WARNING ({category.__name__}): {message}\n"
    data = (args.data or data_dir()).resolve()
    out = (args.output or output_dir()).resolve()
    try:
        summary = build_report(data, out, use_cache=not args.no_cache, render=not args.no_render,
                               formats=tuple(f for f in args.to.split(",") if f), renderer=args.renderer)
    except CohortValidationError as exc:
        print(f"ERROR: {exc}\nNothing was written; {out} is unchanged.", file=sys.stderr)
        return 2
    except (PipelineError, ValueError) as exc:
        print(f"ERROR: {exc}\nNothing was written; {out} is unchanged.", file=sys.stderr)
        return 1
    for path in summary["files"]:
        print(f"  wrote {path}")
    print(f"Done in {summary['seconds']:.1f} s; results in {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
