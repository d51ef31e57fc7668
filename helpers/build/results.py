"""The results file: one JSON document that every number quoted in prose comes from.

Each notebook writes its own top-level section with :func:`save_results`; the file is updated by an
atomic replace, so a notebook re-run by hand in JupyterLab refreshes only its part.
"""
from __future__ import annotations

import dataclasses
import enum
import fcntl
import json
import math
import os
import sys
import tempfile
from datetime import date, datetime
from pathlib import Path, PurePath
from typing import Any

from helpers.config import output_dir

RESULTS_NAME = "results.json"


def to_jsonable(value: Any) -> Any:
    """Convert numpy/pandas scalars and containers to plain JSON values; NaN and inf become None.

    Dataclass instances (the typed results of ``helpers.stats`` and ``helpers.analyses``) become dicts of
    their fields (``dataclasses.asdict``, recursively), enums their value, paths their text.
    """
    # numpy and pandas as already imported, never imported here: a value can only be a numpy or
    # pandas object when its library is loaded, and the pipeline writes the study section of a warm
    # build without either (importing pandas alone takes about half a second)
    np, pd = sys.modules.get("numpy"), sys.modules.get("pandas")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # fields one level at a time (not asdict's deep copy): a field may hold a DataFrame
        return {field.name: to_jsonable(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_jsonable(v) for v in value]
    if pd is not None and isinstance(value, pd.DataFrame):
        return to_jsonable(value.to_dict(orient="records"))
    if pd is not None and isinstance(value, pd.Series):
        return to_jsonable(value.to_dict())
    if isinstance(value, bool) or (np is not None and isinstance(value, np.bool_)):
        return bool(value)
    if np is not None and isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float) or (np is not None and isinstance(value, np.floating)):
        value = float(value)
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, (datetime, date)) or (pd is not None and isinstance(value, pd.Timestamp)):
        raise TypeError("dates are patient-level data and never enter the results file")
    if pd is not None and (value is pd.NA or value is pd.NaT):
        return None
    return value


def results_path(out_dir: Path | None = None) -> Path:
    return Path(out_dir or output_dir()) / RESULTS_NAME


def load_results(out_dir: Path | None = None) -> dict:
    """Read the results file; an empty dict when it does not exist yet."""
    path = results_path(out_dir)
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def save_results(section: str, payload: Any, out_dir: Path | None = None) -> Path:
    """Replace one top-level ``section`` of the results file, keeping the others.

    Written to a temporary file in the same folder and renamed into place, so a reader never sees a
    half-written file; an exclusive lock serialises notebooks that run in parallel. Keys are sorted so two runs on the same data give identical bytes.
    """
    path = results_path(out_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    section_value = to_jsonable(payload)
    with open(path.parent / ".results.lock", "w") as lock:   # notebooks may run in parallel
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = load_results(path.parent)
        results[section] = section_value
        text = json.dumps(results, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
        fd, tmp = tempfile.mkstemp(prefix=".results-", suffix=".json", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return path


def get_result(results: dict, dotted: str) -> Any:
    """Look up ``"os.median.<arm>.estimate"`` in a results dict; KeyError names the missing part."""
    node: Any = results
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(f"results.json has no '{dotted}' (stopped at '{part}')")
    return node
