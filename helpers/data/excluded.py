"""Patients excluded before analysis: the optional ``excluded.csv`` of a data folder.

``excluded.csv`` has one row per excluded patient, columns ``patient_id`` and ``reason`` (free text,
e.g. "no follow-up after the first visit"). The patients are not in ``cohort.csv``; the file only feeds
the patient-flow table (STROBE item 13). Comment lines starting with ``#`` are allowed, as in the
other data files.
"""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

__all__ = ["EXCLUDED_FILE", "ExcludedFileError", "read_excluded"]

EXCLUDED_FILE = "excluded.csv"


class ExcludedFileError(ValueError):
    """excluded.csv cannot be used: a required column is missing or a patient is listed twice."""


def read_excluded(folder: str | Path | None) -> pd.DataFrame | None:
    """The excluded patients (``patient_id``, ``reason``; empty reason = not recorded), or None when the
    folder has no ``excluded.csv``. Raises :class:`ExcludedFileError` naming the problem."""
    if folder is None:
        return None
    path = Path(folder) / EXCLUDED_FILE
    if not path.exists():
        return None
    lines = [line for line in path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
             if not line.startswith("#")]
    frame = pd.read_csv(io.StringIO("".join(lines)), dtype=str, keep_default_na=False)
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in ("patient_id", "reason") if c not in frame.columns]
    if missing:
        raise ExcludedFileError(f"{path.name}: missing {'column' if len(missing) == 1 else 'columns'} {missing}; expected patient_id, reason")
    frame = frame[["patient_id", "reason"]].apply(lambda s: s.str.strip())
    frame = frame[frame["patient_id"] != ""]
    duplicated = sorted(set(frame.loc[frame["patient_id"].duplicated(), "patient_id"]))
    if duplicated:
        raise ExcludedFileError(f"{path.name}: patient_id listed more than once: {duplicated[:10]}")
    return frame.reset_index(drop=True)
