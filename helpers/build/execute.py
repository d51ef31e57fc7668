"""Execute the analysis notebooks with Jupyter (nbclient), with progress and a cache.

A notebook is re-executed only when its cells, the helpers package, the input data or the settings
changed (a SHA-256 cache key stored in the executed notebook's metadata). A notebook that reads the
results file of the others (``load_results(``, metadata ``supplement_runs_last``) runs after all
others, and its key also covers ``results.json`` as that notebook left it, plus the other files it
reads (:data:`RUNS_LAST_INPUTS`): it is re-executed whenever another notebook changed a result, and
not after a change of the prose only. Execution stops at the first failing cell and reports the
notebook, the cell and the error.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from helpers.config import DATA_ENV, OUTPUT_ENV, PROJECT_ROOT
from helpers.build.results import RESULTS_NAME

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
CACHE_KEY = "supplement_cache_key"
#: Set to 1 in the kernels (unless already set): notebooks run side by side, and notebook 07's bootstrap
#: uses worker processes; OpenBLAS threads that wait for a busy core make the many small matrix
#: products of the Cox fits many times slower (scripts/benchmark_scale.py).
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
RUNS_LAST = "supplement_runs_last"
#: Notebook metadata: the notebook's relative cost (default 1). Notebooks start in decreasing cost, so that
#: the longest ones do not start last and leave a core idle at the end (a registry-size build).
COST = "supplement_cost"

#: Files a runs-last notebook reads besides results.json, as glob patterns relative to the project
#: root (see helpers/analyses/reproduction.py): the paper's numbers (``data/published.yaml``, else the shared
#: copy next to the repository) and the R versions recorded with the golden values.
RUNS_LAST_INPUTS = ("data/published.yaml", "tests/reference/*.json")

#: Tag of the cell that holds a notebook's parameters (papermill's convention; also Quarto's ``-P``)
PARAMETERS_TAG = "parameters"
#: Tag of the cell the executor inserts after it, setting the parameters of this build
INJECTED_TAG = "injected-parameters"


class _Nbformat:
    """The ``nbformat`` module, imported on first use: a build that executes no notebook (a prose-only
    edit) reads notebooks with :func:`read_notebook` and never pays for its import (jsonschema,
    traitlets: 0.1-0.2 s of a warm build's start)."""

    def __getattr__(self, name):
        import nbformat

        return getattr(nbformat, name)


nbformat = _Nbformat()


class NotebookExecutionError(RuntimeError):
    """A cell of a notebook failed; the message names the notebook, the cell and the error."""


@dataclass
class ExecutedNotebook:
    path: Path
    output: Path
    seconds: float
    cached: bool


def list_notebooks(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """Analysis notebooks in paper order (file names start with their section number)."""
    return sorted(p for p in folder.glob("[0-9][0-9]-*.ipynb"))


def _code_digest(nb: nbformat.NotebookNode) -> str:
    text = "\n\x00".join(f"{c.cell_type}:{c.source}" for c in nb.cells)
    return hashlib.sha256(text.encode()).hexdigest()


#: Modules that only render the executed notebooks: a change to them re-renders, it does not re-execute.
RENDER_ONLY = ("helpers/build/render.py", "helpers/build/typeset.py", "helpers/build/docx_style.py",
               "helpers/build/html_style.py")


class _Node(dict):
    """A notebook's JSON object with attribute access, as ``nbformat.NotebookNode`` (a dict too)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value

    def __delattr__(self, key):
        try:
            del self[key]
        except KeyError:
            raise AttributeError(key) from None


def _rejoin(bundle: dict) -> None:
    """A mime bundle's text stored as a list of lines, joined (JSON types left alone), in place."""
    for key, value in list(bundle.items()):
        json_mime = key == "application/json" or (key.startswith("application/") and key.endswith("+json"))
        if not json_mime and isinstance(value, list) and all(isinstance(line, str) for line in value):
            bundle[key] = "".join(value)


def read_notebook(path: Path | str):
    """``nbformat.read(path, as_version=4)`` without the JSON-schema check (which only logs; compiling
    the schema and checking large executed notebooks costs a warm build about half a second).

    A version-4 notebook (all of this project's) is read without nbformat: the JSON's objects become
    dicts with attribute access (as ``nbformat.NotebookNode``), multi-line text is joined and the
    transient keys are dropped, as nbformat's v4 reader does (``rejoin_lines``, ``strip_transient``;
    tests/test_execute_reader.py compares the two on every notebook). Other versions go through
    nbformat (with conversion to version 4).
    """
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    try:
        nb = json.loads(text, object_hook=_Node)
    except ValueError:
        nb = None
    if not isinstance(nb, dict) or nb.get("nbformat", 1) != 4 or not isinstance(nb.get("cells"), list) \
            or not isinstance(nb.get("metadata"), dict):
        return nbformat.convert(nbformat.reader.reads(text), 4)
    for key in ("orig_nbformat", "orig_nbformat_minor", "signature"):
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        if "source" in cell and isinstance(cell.source, list):
            cell.source = "".join(cell.source)
        for attachment in cell.get("attachments", {}).values():
            _rejoin(attachment)
        if cell.get("cell_type", None) == "code":
            for output in cell.get("outputs", []):
                kind = output.get("output_type", "")
                if kind in {"execute_result", "display_data"}:
                    _rejoin(output.get("data", {}))
                elif kind and isinstance(output.get("text", ""), list):
                    output.text = "".join(output.text)
        cell.get("metadata", {}).pop("trusted", None)
    return nb


def helpers_digest(root: Path = PROJECT_ROOT) -> str:
    """SHA-256 over every helpers/**/*.py file (except the renderer's, :data:`RENDER_ONLY`), the data
    dictionary and requirements (sorted by path)."""
    digest = hashlib.sha256()
    paths = [p for p in sorted((root / "helpers").rglob("*.py"))
             if p.relative_to(root).as_posix() not in RENDER_ONLY] + [root / "data" / "dictionary.yaml",
                                                                      root / "requirements.txt"]
    for path in paths:
        if path.exists():
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def data_digest(data_dir: Path) -> str:
    digest = hashlib.sha256(str(data_dir.resolve()).encode())
    for path in sorted(data_dir.iterdir()):
        if path.is_file() and path.suffix in {".csv", ".xlsx", ".yaml"}:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_key(nb: nbformat.NotebookNode, data_dir: Path, env_digest: str, data_hash: str | None = None) -> str:
    """Cache key of a notebook: its code, the helpers (``env_digest``) and the data (``data_hash``, computed
    from ``data_dir`` when not given)."""
    data_hash = data_hash if data_hash is not None else data_digest(data_dir)
    return hashlib.sha256(f"{_code_digest(nb)}|{env_digest}|{data_hash}".encode()).hexdigest()


def results_digest(output_dir: Path) -> str:
    """SHA-256 of ``output_dir/results.json`` (its bytes: save_results writes sorted keys), or
    ``"absent"`` when there is no results file."""
    try:
        return hashlib.sha256((Path(output_dir) / RESULTS_NAME).read_bytes()).hexdigest()
    except FileNotFoundError:
        return "absent"


def runs_last_inputs_digest(root: Path = PROJECT_ROOT) -> str:
    """SHA-256 over the files of :data:`RUNS_LAST_INPUTS` that exist (name and bytes, sorted by path)
    and the Python version (printed in the colophon)."""
    digest = hashlib.sha256(sys.version.encode())
    for pattern in RUNS_LAST_INPUTS:
        for path in sorted(root.glob(pattern)):
            if path.is_file():
                digest.update(pattern.encode() + b"\x00" + path.name.encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def runs_last_key(key: str, output_dir: Path, inputs_digest: str) -> str:
    """Cache key of a runs-last notebook: its ordinary ``key`` (cells, helpers, data) combined with
    the other files it reads and the current ``results.json`` of ``output_dir``.

    Stored after the runs-last notebooks wrote their own sections, so it matches on the next build
    exactly when no result changed since (the results file is byte-identical).
    """
    return hashlib.sha256(f"{key}|{inputs_digest}|{results_digest(output_dir)}".encode()).hexdigest()


def runs_last(nb: nbformat.NotebookNode) -> bool:
    """True for a notebook that reads the other notebooks' results (metadata ``supplement_runs_last``,
    or a call of ``load_results(``): it runs after all others, and its cache key covers results.json
    (see :func:`runs_last_key`)."""
    return bool(nb.metadata.get(RUNS_LAST)) or "load_results(" in "".join(c.source for c in nb.cells)


def inject_parameters(nb: nbformat.NotebookNode, parameters: dict) -> nbformat.NotebookNode:
    """Insert a code cell tagged ``injected-parameters`` that sets ``parameters`` (papermill style).

    The cell goes right after the first cell tagged ``parameters`` (whose defaults it overrides), or
    at the top when the notebook has none; an injected cell left from an earlier run is replaced.
    Values are written with ``repr`` (paths as strings). Returns ``nb`` (modified in place).
    """
    nb.cells = [c for c in nb.cells if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    lines = ["# Parameters of this build (inserted by helpers.build.execute)"]
    for name, value in parameters.items():
        lines.append(f"{name} = {str(value)!r}" if isinstance(value, Path) else f"{name} = {value!r}")
    cell = nbformat.v4.new_code_cell("\n".join(lines))
    cell.metadata["tags"] = [INJECTED_TAG]
    if nb.get("nbformat_minor", 0) >= 5:
        cell["id"] = INJECTED_TAG      # a fixed id: two builds write identical notebooks
    else:
        cell.pop("id", None)           # notebooks before format 4.5 have no cell ids
    at = next((i + 1 for i, c in enumerate(nb.cells)
               if PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])), 0)
    nb.cells.insert(at, cell)
    return nb


def _execute_one(path: Path, target: Path, key: str, timeout: int, parameters: dict | None = None) -> float:
    """Execute one notebook into ``target``; returns seconds. Runs in a worker process."""
    from nbclient import NotebookClient  # imported here: a build without execution does not need it
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    if parameters:
        inject_parameters(nb, parameters)
    started = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}},
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])   # no start-up chatter
    try:
        client.execute()
    except CellExecutionError as exc:
        failing = _failing_cell(nb)
        label = _cell_label(failing[1])
        raise NotebookExecutionError(
            f"{path.name}, cell {failing[0]}{f' ({label})' if label else ''} failed:\n{failing[1]}\n"
            f"--- error ---\n{_short_error(exc)}") from None
    nb.metadata[CACHE_KEY] = key
    nbformat.write(nb, target)
    return time.perf_counter() - started


def execute_notebooks(notebooks: list[Path], data_dir: Path, output_dir: Path, *, use_cache: bool = True,
                      timeout: int = 900, jobs: int | None = None,
                      progress: Callable[[str], None] = print) -> list[ExecutedNotebook]:
    """Execute ``notebooks`` into ``output_dir/notebooks``, ``jobs`` at a time (default: CPU count, max 4).

    Each notebook receives ``data_dir`` and ``output_dir`` (absolute paths) in a cell tagged
    ``injected-parameters`` placed after its ``parameters`` cell (:func:`inject_parameters`); the
    kernels also see ``SUPPLEMENT_DATA=data_dir`` and ``SUPPLEMENT_OUTPUT=output_dir`` (kept for
    notebooks that read ``helpers.config.data_dir()``) and run with the notebook's folder as working
    directory. Notebooks that read the others' results (``load_results(``)
    run last, after all others finished; they are taken from the cache only together (all of them
    unchanged, results.json byte-identical to what they left, see :func:`runs_last_key`), else all
    re-executed. Raises NotebookExecutionError naming the first failing cell.
    """
    out_folder = output_dir / "notebooks"
    out_folder.mkdir(parents=True, exist_ok=True)
    env_digest = helpers_digest()
    data_hash = data_digest(Path(data_dir))     # once: a registry's files take a tenth of a second each time
    jobs = jobs or min(4, os.cpu_count() or 1)
    saved_env = {k: os.environ.get(k) for k in (DATA_ENV, OUTPUT_ENV, "MPLBACKEND", "PYTHONHASHSEED",
                                                 *BLAS_THREAD_VARIABLES)}
    os.environ.pop("MPLBACKEND", None)  # the kernel's inline backend stores figures as images
    os.environ.update({DATA_ENV: str(data_dir), OUTPUT_ENV: str(output_dir), "PYTHONHASHSEED": "0"})
    for variable in BLAS_THREAD_VARIABLES:   # kernels run side by side: one BLAS thread each
        os.environ.setdefault(variable, "1")
    done: dict[Path, ExecutedNotebook] = {}
    total = len(notebooks)

    def stored_key(target: Path) -> str | None:
        if not (use_cache and target.exists()):
            return None
        return read_notebook(target).metadata.get(CACHE_KEY)

    def run_wave(wave: list[tuple[int, Path, Path, str]]) -> None:
        from concurrent.futures import ProcessPoolExecutor, as_completed   # only when a notebook runs
        from multiprocessing import get_context

        with ProcessPoolExecutor(max_workers=min(jobs, len(wave)), mp_context=get_context("fork")) as pool:
            futures = {}
            for index, path, target, key in wave:
                progress(f"[{index}/{total}] {path.name}: executing ...")
                parameters = {"data_dir": str(Path(data_dir).resolve()), "output_dir": str(Path(output_dir).resolve())}
                futures[pool.submit(_execute_one, path, target, key, timeout, parameters)] = (index, path, target)
            for future in as_completed(futures):
                index, path, target = futures[future]
                try:
                    seconds = future.result()
                except NotebookExecutionError:
                    for other in futures:
                        other.cancel()
                    raise
                progress(f"[{index}/{total}] {path.name}: done in {seconds:.1f} s")
                done[path] = ExecutedNotebook(path, target, seconds, False)

    try:
        first: list[tuple[int, Path, Path, str]] = []
        last: list[tuple[int, Path, Path, str]] = []
        for index, path in enumerate(notebooks, 1):
            nb = read_notebook(path)
            key = cache_key(nb, data_dir, env_digest, data_hash)
            target = out_folder / path.name
            if runs_last(nb):
                last.append((index, path, target, key))
            elif stored_key(target) == key:
                progress(f"[{index}/{total}] {path.name}: unchanged, not re-executed")
                done[path] = ExecutedNotebook(path, target, 0.0, True)
            else:
                first.append((index, path, target, key))
        if first:
            run_wave(sorted(first, key=lambda item: -_cost(item[1])))
        if last:
            # results.json is final for these notebooks only now that the first wave has finished
            inputs = runs_last_inputs_digest()
            if all(stored_key(target) == runs_last_key(key, output_dir, inputs) for _, _, target, key in last):
                for index, path, target, _ in last:
                    progress(f"[{index}/{total}] {path.name}: unchanged, not re-executed")
                    done[path] = ExecutedNotebook(path, target, 0.0, True)
            else:
                run_wave(last)
                for _, _, target, key in last:  # key over the results file as these notebooks left it
                    executed = nbformat.read(target, as_version=4)
                    executed.metadata[CACHE_KEY] = runs_last_key(key, output_dir, inputs)
                    nbformat.write(executed, target)
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return [done[p] for p in notebooks]


def _cost(path: Path) -> float:
    """The notebook's relative cost (metadata ``supplement_cost``, default 1)."""
    try:
        return float(read_notebook(path).metadata.get(COST, 1))
    except (TypeError, ValueError):
        return 1.0


def _failing_cell(nb: nbformat.NotebookNode) -> tuple[int, str]:
    """Number (1-based, as in the committed notebook: the injected cell is not counted) and source of
    the first cell with an error output."""
    cells = [c for c in nb.cells if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    for number, cell in enumerate(cells, 1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return number, cell.source
    return 0, ""


def _short_error(exc: CellExecutionError) -> str:
    ename = getattr(exc, "ename", "") or ""
    evalue = getattr(exc, "evalue", "") or str(exc).splitlines()[-1]
    return f"{ename}: {evalue}".strip(": ")


def _cell_label(source: str) -> str | None:
    """The Quarto label of a cell (its ``#| label:`` option), if any: names the table or figure that
    failed in the build's message."""
    for line in source.splitlines():
        if not line.startswith("#|"):
            break
        key, _, value = line[2:].partition(":")
        if key.strip() == "label" and value.strip():
            return value.strip()
    return None
