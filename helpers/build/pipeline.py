"""``make report``: validate the data, execute the notebooks, render the supplement.

Everything is built in a staging folder next to ``_output/`` and swapped into place only when every
step succeeded, so bad input or a failing cell leaves the last good ``_output/`` untouched.

Data that passed validation are recorded in ``validated-data.json`` (a digest of the data files and of
the validating code, the patient and rule counts); a build on the same data with the same code takes
the record instead of validating again, so a build after a prose-only change loads neither pandas
nor the data. The record also keeps the study section of results.json made from those data (its
wording, helpers.report.study, imports pandas), taken while the facts and the run settings are the same.

Containment: an analysis that cannot be estimated for a statistical reason (no events in an arm,
non-convergence, separation, an arm emptied by trimming, ...) shows "not estimable: <reason>" in its
table or figure and the rest builds. The build ends with the list of what was not estimated
(:func:`not_estimated`: every labelled output and results value that reads "not estimable: <reason>"),
stored in ``build.json`` (``not_estimated``), and exits 0; with ``--strict`` (``make report STRICT=1``)
such a build is refused instead: nothing is written and the exit status is 3. An unexpected
exception in a cell is a bug, not a statistical limit: the build stops with status 1 naming the
notebook, the cell and the error, and the output folder is left as it was.

Exit status: 0 built; 1 a step failed (a notebook cell, rendering); 2 the data are invalid (nothing
read beyond validation); 3 ``--strict`` and something was not estimated.

Usage::

    python -m helpers.build.pipeline [--data FOLDER] [--output FOLDER] [--no-cache] [--to html,pdf,docx]
                               [--renderer quarto|pandoc+typst] [--no-render] [--strict]
"""
from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import re
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from helpers.config import PROJECT_ROOT, SUPPRESS_ENV, data_dir, output_dir
from helpers.build.execute import NotebookExecutionError, data_digest, execute_notebooks, helpers_digest, list_notebooks


class PipelineError(RuntimeError):
    """A step of the report pipeline failed; the message says which and why."""


class NotEstimatedError(PipelineError):
    """``strict`` build: some analyses were not estimable; ``items`` lists them (see :func:`not_estimated`)."""

    def __init__(self, items: list[str]):
        self.items = list(items)
        super().__init__(f"{len(self.items)} result(s) not estimated (strict build):\n"
                         + "\n".join(f"  - {item}" for item in self.items))


#: "not estimable: <reason in words>" as helpers.report.formatting.format_not_estimable writes it (a reason
#: starts with a letter: "replicates not estimable: 0, 6" in a note is a count, not a result)
_NOT_ESTIMABLE = re.compile(r"not estimable: ([A-Za-z][^|.;)\n<>\"\\]*)", re.I)


def _output_texts(cell) -> list[str]:
    texts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            texts.append(str(output.get("text", "")))
        for mime in ("text/markdown", "text/plain", "text/html"):
            value = output.get("data", {}).get(mime)
            if value:
                texts.append(value if isinstance(value, str) else "".join(value))
    return texts


def not_estimated(folder: Path) -> list[str]:
    """What a build did not estimate: ``"<notebook>, <cell label>: not estimable: <reason>"`` for every
    labelled output of ``folder/notebooks/*.ipynb`` that says so, then ``"results.json <key>: ..."`` for
    every results value that starts with "not estimable" and is not already listed; in notebook order,
    each once."""
    from helpers.build.render import code_cells

    items: list[str] = []
    phrases: set[str] = set()
    for path in sorted((folder / "notebooks").glob("*.ipynb")):
        # the renderer's reading of the notebook (read once per build: the render reads the same file)
        for cell, options, number in code_cells(path):
            # a cell whose options do not parse is named by its number
            label = options.get("label") if isinstance(options, dict) else None
            for text in _output_texts(cell):
                for match in _NOT_ESTIMABLE.finditer(text):
                    phrase = f"not estimable: {match.group(1).strip()}"
                    item = f"{path.name}, {label or f'cell {number}'}: {phrase}"
                    if item not in items:
                        items.append(item)
                        phrases.add(phrase.lower())
    try:
        results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        results = {}

    def walk(node, key: str) -> None:
        if isinstance(node, dict):
            for k in sorted(node):
                walk(node[k], f"{key}.{k}" if key else str(k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{key}.{i}")
        elif isinstance(node, str) and node.lower().startswith("not estimable"):
            match = _NOT_ESTIMABLE.match(node)
            phrase = f"not estimable: {match.group(1).strip()}" if match else node.strip()
            if phrase.lower() not in phrases:
                items.append(f"results.json {key}: {phrase}")

    walk(results, "")
    return items


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
VALIDATION_NAME = "validated-data.json"


def run_settings() -> dict:
    """Settings read from the environment that change the outputs but not the code or the data.

    Stored as ``run-settings.json`` in the output folder; when they differ from the previous run's,
    every notebook is re-executed (the notebook cache key covers code and data only).
    """
    if not os.environ.get(SUPPRESS_ENV, "").strip():
        return {"suppress_below": 0}  # the default, known without importing helpers.report.formatting
    from helpers.report.formatting import suppression_threshold

    return {"suppress_below": suppression_threshold()}


#: Optional parts of a study; each switches notebooks (metadata ``supplement_requires``) and prose parts
#: (``<!-- part: NAME -->`` ... ``<!-- /part -->`` in report.qmd and sections/) on or off.
DATA_PARTS = ("pfs", "response", "safety", "exposure", "replication")
#: What each part of the data is, in the build's messages
PART_WORDS = {"pfs": "progression dates", "response": "best response", "safety": "adverse events file",
              "exposure": "treatment cycles file", "replication": "published.yaml"}
#: What the pipeline records of a build for the renderer (parts present, notebooks run, title)
BUILD_NAME = "build.json"
#: Notebook metadata key: the part(s) of the data a notebook needs (a name or a list of names)
REQUIRES = "supplement_requires"


@dataclass(frozen=True)
class ValidatedData:
    """What the pipeline needs to know of data that passed validation (from load_study or the record)."""

    folder: Path
    patients: int
    synthetic: bool
    rules_checked: int
    #: the parts present: the optional data parts (DATA_PARTS), the design ("randomised" or
    #: "observational") and "synthetic" when the data are synthetic
    parts: tuple[str, ...] = ()
    title: str | None = None
    #: facts of the study the prose quotes (see :func:`study_facts`)
    facts: dict | None = None


def study_facts(study) -> dict:
    """What the prose says of the study itself, from its configuration: title, setting, design, arm
    labels and sizes (written to the ``study`` section of results.json by the pipeline)."""
    config = study.config
    arms = [str(code) for code in config.arm_order]
    label = getattr(config, "arm_label", None)
    counts = study.patients["arm"].astype(str).value_counts()
    randomised = "randomised" in study_parts(study)
    return {"title": getattr(config, "title", None) or None,
            "setting": getattr(config, "setting", None) or None,
            "design": "randomised" if randomised else "observational",
            "synthetic": bool(config.synthetic),
            "arms": [{"code": code, "label": str(label(code)) if label else code, "n": int(counts.get(code, 0))}
                     for code in arms],
            "n_total": int(len(study.patients))}


def study_section(facts: dict) -> dict:
    """The ``study`` section of results.json: the facts and their wording for the prose
    (:func:`helpers.report.study.study_text`)."""
    from helpers.report.study import study_text

    return {**facts, "text": study_text(facts)}


def study_parts(study) -> tuple[str, ...]:
    """The parts a validated study holds, sorted: each of :data:`DATA_PARTS` for which ``study.has``
    is true, the design (``randomised`` or ``observational``) and ``synthetic`` if it is synthetic."""
    has = getattr(study, "has", None)
    if has is None:     # a Study without has(): infer from what was loaded
        columns = set(study.patients.columns)
        present = {"pfs": "pfs_months" in columns,
                   "response": "best_response" in columns,
                   "safety": getattr(study, "adverse_events", None) is not None,
                   "exposure": getattr(study, "cycles", None) is not None,
                   "replication": (Path(study.folder) / "published.yaml").exists()}
        has = present.__getitem__
    parts = {part for part in DATA_PARTS if has(part)}
    config = study.config
    randomised = getattr(config, "randomised", None)
    if randomised is None:
        randomised = str(getattr(config, "design", "") or "").lower().startswith("random")
    parts.add("randomised" if randomised else "observational")
    if config.synthetic:
        parts.add("synthetic")
    return tuple(sorted(parts))


def notebook_requires(path: Path) -> tuple[str, ...]:
    """The parts of the data a notebook needs (its metadata ``supplement_requires``), possibly none."""
    from helpers.build.render import read_notebook

    needs = read_notebook(path).metadata.get(REQUIRES) or ()
    return (needs,) if isinstance(needs, str) else tuple(needs)


def select_notebooks(notebooks: list[Path], parts: tuple[str, ...] | set[str]) -> tuple[list[Path], dict[Path, tuple[str, ...]]]:
    """Split ``notebooks`` into those to run and those skipped (with the parts they lack)."""
    run, skipped = [], {}
    for path in notebooks:
        lacking = tuple(part for part in notebook_requires(path) if part not in parts)
        if lacking:
            skipped[path] = lacking
        else:
            run.append(path)
    return run, skipped


def validation_key(folder: Path) -> str:
    """SHA-256 over the data files (and the folder's path) and the validating code: helpers/*.py, the
    data dictionary and requirements.txt (:func:`helpers.build.execute.helpers_digest`)."""
    return hashlib.sha256(f"{_data_digest(folder)}|{helpers_digest()}".encode()).hexdigest()


_DIGESTS: dict[tuple, str] = {}


def _data_digest(folder: Path) -> str:
    """:func:`helpers.build.execute.data_digest` of ``folder``, computed once per version of its files
    (the key holds each file's name, size and modification time): a build needs it twice, and it reads
    every data file (tens of megabytes for a registry-size cohort)."""
    folder = Path(folder)
    try:
        stamp = tuple((path.name, path.stat().st_size, path.stat().st_mtime_ns)
                      for path in sorted(folder.iterdir()) if path.is_file())
    except OSError:
        return data_digest(folder)
    key = (str(folder.resolve()), stamp)
    if key not in _DIGESTS:
        _DIGESTS.clear()
        _DIGESTS[key] = data_digest(folder)
    return _DIGESTS[key]


def _recorded_validation(out: Path, key: str) -> ValidatedData | None:
    try:
        record = json.loads((out / VALIDATION_NAME).read_text(encoding="utf-8"))
        if record.get("key") != key:
            return None
        return ValidatedData(Path(record["folder"]), int(record["patients"]), bool(record["synthetic"]),
                             int(record["rules_checked"]), tuple(record["parts"]), record.get("title"),
                             dict(record["facts"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def validate_data(data: Path, out: Path, use_record: bool = True) -> tuple[ValidatedData, dict | None, object]:
    """Validate ``data`` with :func:`helpers.data.load.load_study`, or take the record in ``out`` when it was
    made for the same data and code. Returns the summary, the record to store (None: store none) and
    the validated Study (None when the record was taken).

    Warnings of the validation are shown after it (under the filters in force); data that gave any
    warning are not recorded, so the warning is shown again on the next build. Raises
    CohortValidationError.
    """
    folder = Path(data).resolve()
    key = None
    if folder.is_dir():
        try:
            key = validation_key(folder)
        except OSError:
            key = None
    if use_record and key is not None:
        recorded = _recorded_validation(out, key)
        if recorded is not None and recorded.folder == folder:
            return recorded, {"key": key, **_record_fields(recorded)}, None
    from helpers.data.load import load_study

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study = load_study(folder)
    _show_again(caught)
    validated = ValidatedData(study.folder, len(study.patients), bool(study.config.synthetic),
                              getattr(study, "rules_checked", 0), study_parts(study),
                              getattr(study.config, "title", None) or None, study_facts(study))
    record = {"key": key, **_record_fields(validated)} if key is not None and not caught else None
    return validated, record, study


#: Key of the validation record that holds the study section of results.json made from its facts
STUDY_SECTION = "study_section"


def _study_section_key(facts: dict, settings: dict) -> str:
    return hashlib.sha256(json.dumps([facts, settings], sort_keys=True, default=str).encode()).hexdigest()


def _recorded_study_section(out: Path, record: dict | None, facts: dict, settings: dict) -> dict | None:
    """The study section stored in the validation record of ``out`` (:func:`study_section` of the same
    facts under the same settings), when that record is ``record`` (same data, same code: its key
    covers helpers/, so the wording is what :func:`study_section` would write); else None."""
    if record is None:
        return None
    try:
        stored = json.loads((out / VALIDATION_NAME).read_text(encoding="utf-8"))
        cached = stored.get(STUDY_SECTION) or {}
        if stored.get("key") == record.get("key") and cached.get("of") == _study_section_key(facts, settings) \
                and isinstance(cached.get("section"), dict):
            return cached["section"]
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _record_fields(validated: ValidatedData) -> dict:
    return {"folder": str(validated.folder), "patients": validated.patients, "synthetic": validated.synthetic,
            "rules_checked": validated.rules_checked, "parts": list(validated.parts), "title": validated.title,
            "facts": validated.facts}


def _show_again(caught: list[warnings.WarningMessage]) -> None:
    """Emit warnings caught (with every filter set to "always") again under the filters in force, as if
    they came from where they were raised; a repeated message from the same place is emitted once."""
    modules = {getattr(m, "__file__", None): name for name, m in list(sys.modules.items())}
    seen = set()
    for w in caught:
        where = (str(w.message), w.category, w.filename, w.lineno)
        if where not in seen:
            seen.add(where)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, module=modules.get(w.filename))


def _previous_settings(out: Path) -> dict | None:
    try:
        return json.loads((out / SETTINGS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def build_report(data: Path, out: Path, *, use_cache: bool = True, render: bool = True,
                 formats: tuple[str, ...] = ("html", "pdf", "docx"), renderer: str | None = None,
                 progress=print, strict: bool = False) -> dict:
    """Run the whole pipeline; return a summary dict (``not_estimated``: :func:`not_estimated`).

    Raises CohortValidationError, PipelineError naming the notebook and cell of an unexpected error,
    or (``strict``) NotEstimatedError when something was not estimated; the output folder is then
    left as it was."""
    started = time.perf_counter()
    # validates first: bad data stop here, before anything is written
    validated, validation_record, loaded = validate_data(data, out, use_record=use_cache)
    study = validated
    optional = [part for part in DATA_PARTS if part in validated.parts]
    progress(f"Data: {study.folder} ({study.patients} patients, "
             f"{'SYNTHETIC' if study.synthetic else 'non-synthetic'}); all {study.rules_checked} rules passed; "
             f"parts present: {', '.join(optional) or 'none of ' + ', '.join(DATA_PARTS)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.staging")
    if staging.exists():
        shutil.rmtree(staging)
    settings = run_settings()
    if use_cache and _previous_settings(out) != settings:
        use_cache = False  # e.g. small-cell suppression switched on or off: cached notebooks are stale
    data_key = _data_digest(validated.folder)
    if use_cache and _previous_build(out).get("data") != data_key:
        # other data: every notebook runs again anyway, and sections of the results file written by
        # a notebook that these data do not run must not survive
        use_cache = False
    fresh = not (out.exists() and use_cache)
    if not fresh:
        shutil.copytree(out, staging, ignore=_not_carried_over(out, render), copy_function=_link_or_copy)
    else:
        staging.mkdir(parents=True)
    (staging / SETTINGS_NAME).write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    section = None
    if validated.facts:
        # the study section (its wording imports pandas: half a second) is taken from the record of the
        # same data and code when it was made from the same facts and settings
        section = _recorded_study_section(out, validation_record, validated.facts, settings) if loaded is None else None
        if section is None:
            section = study_section(validated.facts)
        if validation_record is not None:
            validation_record = {**validation_record, STUDY_SECTION: {"of": _study_section_key(validated.facts, settings),
                                                                     "section": section}}
    (staging / VALIDATION_NAME).unlink(missing_ok=True)
    if validation_record is not None:
        (staging / VALIDATION_NAME).write_text(json.dumps(validation_record, indent=2, sort_keys=True) + "\n",
                                               encoding="utf-8")
    try:
        if loaded is None and fresh and hasattr(_data_load(), "cache_study"):
            loaded = _data_load().load_study(validated.folder)   # fresh staging: the notebooks need the study
        if loaded is not None:
            _cache_study(loaded, staging)
        # The kernels read the cached study: this process (and the workers it forks to run them) need not
        # keep a registry's patients in memory while the notebooks run.
        loaded = None
        gc.collect()
        notebooks, skipped = select_notebooks(list_notebooks(), validated.parts)
        for path, lacking in skipped.items():
            (staging / "notebooks" / path.name).unlink(missing_ok=True)
            (staging / "notebooks" / f"{path.stem}.html").unlink(missing_ok=True)
            progress(f"{path.name}: not executed (the data have no "
                     f"{' and no '.join(PART_WORDS.get(part, part) for part in lacking)})")
        build = {"data": data_key, "parts": list(validated.parts), "title": validated.title,
                 "notebooks": [path.name for path in notebooks]}
        (staging / BUILD_NAME).write_text(json.dumps(build, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if section is not None:
            from helpers.build.results import save_results

            save_results("study", section, staging)
        executed = execute_notebooks(notebooks, study.folder, staging, use_cache=use_cache,
                                     progress=progress)
        missing_results = not_estimated(staging)
        build["not_estimated"] = missing_results
        (staging / BUILD_NAME).write_text(json.dumps(build, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if strict and missing_results:
            raise NotEstimatedError(missing_results)
        info = None
        if render:
            from helpers.build.render import RenderError, render_report

            try:
                info = render_report(PROJECT_ROOT, staging, formats, renderer)
            except RenderError as exc:
                raise PipelineError(f"rendering failed: {exc}") from None
            progress(f"Renderer: {info.renderer} ({info.detail})")
            if info.missing_values:
                progress(f"Note: {len(info.missing_values)} value(s) quoted in the prose were not estimated for "
                         "this cohort and read 'not estimated for this cohort': "
                         + ", ".join(info.missing_values) + " (edit the prose in sections/ to suit)")
        _swap_into_place(staging, out)
    except NotebookExecutionError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise PipelineError(f"notebook execution failed: {exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    files = [out / p.name for p in info.files] if info else []
    return {"executed": executed, "renderer": info.renderer if info else None, "files": files,
            "missing_values": list(info.missing_values) if info else [],
            "not_estimated": missing_results,
            "seconds": time.perf_counter() - started}


def _link_or_copy(source: str, target: str) -> None:
    """``shutil.copytree``'s ``copy_function`` for the staging copy: the validated study's pickle
    (``.cache/``, tens of megabytes for a registry-size cohort) is hard-linked, every other file
    copied. Safe because helpers.data.load.cache_study replaces that file (a new file renamed into
    place) and never rewrites it; notebooks and figures are rewritten in place, so they are copied."""
    if Path(source).parent.name == ".cache" and not source.endswith(".tmp"):
        try:
            os.link(source, target)
            return
        except OSError:
            pass
    shutil.copy2(source, target)


def _not_carried_over(out: Path, render: bool):
    """``shutil.copytree``'s ``ignore`` for copying the last output ``out`` into the staging folder:
    the report files (``report.html``, ``.pdf``, ``.docx`` at the top) are made again; the notebooks'
    HTML pages are kept when the build renders (the renderer reuses the page of a notebook that did
    not change, :func:`helpers.build.render.write_notebook_pages`), else dropped with the report."""
    from helpers.build.render import NOTEBOOK_PAGES, PAGES_RECORD

    top, pages = Path(out), Path(out) / NOTEBOOK_PAGES

    def ignore(folder: str, names: list[str]) -> set[str]:
        here = Path(folder)
        if here == top:
            return {name for name in names if name.endswith((".html", ".pdf", ".docx"))}
        if here == pages and not render:
            return {name for name in names if name.endswith(".html") or name == PAGES_RECORD}
        return set()
    return ignore


def _previous_build(out: Path) -> dict:
    try:
        return json.loads((out / BUILD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _data_load():
    from helpers.data import load

    return load


def _cache_study(study, folder: Path) -> None:
    """Store the validated study in the output folder for the notebooks' ``open_study(data_dir,
    output_dir)`` (:func:`helpers.data.load.cache_study`), so no notebook validates the data again."""
    from helpers.data import load

    cache = getattr(load, "cache_study", None)
    if cache is not None:
        cache(study, folder)


def _is_validation_error(exc: BaseException) -> bool:
    """True for helpers.data.load.CohortValidationError (that module is loaded only when data are validated,
    and it necessarily was when one is raised)."""
    data_module = sys.modules.get("helpers.data.load")
    return data_module is not None and isinstance(exc, data_module.CohortValidationError)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the supplement: validate, execute notebooks, render.")
    parser.add_argument("--data", type=Path, default=None, help="cohort folder (default: data/)")
    parser.add_argument("--output", type=Path, default=None, help="output folder (default: _output/)")
    parser.add_argument("--no-cache", action="store_true", help="re-execute every notebook")
    parser.add_argument("--no-render", action="store_true", help="execute notebooks only")
    parser.add_argument("--to", default="html,pdf,docx", help="formats, comma-separated")
    parser.add_argument("--renderer", default=None, choices=("quarto", "pandoc+typst"))
    parser.add_argument("--strict", action="store_true",
                        help="refuse a build in which something was not estimable (exit status 3)")
    args = parser.parse_args(argv)
    # warnings (e.g. ignored unknown columns) as one plain line each, without source lines
    warnings.formatwarning = lambda message, category, *rest, **kw: f"WARNING ({category.__name__}): {message}\n"
    data = (args.data or data_dir()).resolve()
    out = (args.output or output_dir()).resolve()
    try:
        summary = build_report(data, out, use_cache=not args.no_cache, render=not args.no_render,
                               formats=tuple(f for f in args.to.split(",") if f), renderer=args.renderer,
                               strict=args.strict)
    except NotEstimatedError as exc:
        print(f"ERROR: {exc}\nNothing was written; {out} is unchanged.", file=sys.stderr)
        return 3
    except (PipelineError, ValueError) as exc:
        print(f"ERROR: {exc}\nNothing was written; {out} is unchanged.", file=sys.stderr)
        return 2 if _is_validation_error(exc) else 1
    for path in summary["files"]:
        print(f"  wrote {path}")
    if summary.get("not_estimated"):
        print(f"Not estimated for these data ({len(summary['not_estimated'])}; `--strict` refuses such a build):")
        for item in summary["not_estimated"]:
            print(f"  - {item}")
    print(f"Done in {summary['seconds']:.1f} s; results in {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
