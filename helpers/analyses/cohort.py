"""What the data are: input files, patients and events per arm, parts present, missing values.

Typed results for notebook 01 and the ``data`` and ``arms`` sections of the results file; the
tables and sentences are made by :mod:`helpers.report.cohort`. Only aggregates leave this module:
no patient identifiers, no dates (calendar years at most).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import pandas as pd

__all__ = ["PARTS", "InputFile", "GroupSummary", "CohortSummary", "MissingRow", "parts_present",
           "input_files", "summarise_cohort", "missing_values"]

#: The optional parts of a study, in the order the cohort section names them.
PARTS = ("pfs", "response", "safety", "exposure", "replication")
OVERALL = "Overall"


@dataclass(frozen=True)
class InputFile:
    """An input file: name, number of data rows (None for configuration files) and SHA-256."""

    name: str
    rows: Optional[int]
    sha256: str


@dataclass(frozen=True)
class GroupSummary:
    """Patients, events and exposure of one arm (or ``Overall``).

    pfs_events / with_adverse_event are None when the part is absent; exposures {name: (median,
    minimum, maximum)} of each cycle count (cycles); start_years (first, last) calendar year.
    """

    code: str
    label: str
    description: str
    n: int
    os_events: int
    alive: int
    pfs_events: Optional[int] = None
    with_adverse_event: Optional[int] = None
    exposures: dict = field(default_factory=dict)
    start_years: tuple = ()


@dataclass(frozen=True)
class CohortSummary:
    """The cohort: the arms (reference first) and overall, which parts are present, the exposures' labels."""

    arms: tuple
    overall: GroupSummary
    parts: dict
    exposure_labels: dict = field(default_factory=dict)

    @property
    def reference(self) -> GroupSummary:
        return self.arms[0]

    @property
    def experimental(self) -> GroupSummary:
        return self.arms[-1]


@dataclass(frozen=True)
class MissingRow:
    """Missing values of one patient-level column: overall and per arm, with the rule that allows them.

    rule : "required", "missing_means" (with ``meaning``), "required_when" (with ``condition``:
    (column label, value)) or "optional".
    """

    variable: str
    label: str
    rule: str
    missing: dict
    n: dict
    meaning: str = ""
    condition: tuple = ()


def parts_present(study: Any) -> dict[str, bool]:
    """{part: present} for the optional parts (``study.has``; earlier Study objects by their columns)."""
    if callable(getattr(study, "has", None)):
        return {p: bool(study.has(p)) for p in PARTS}
    cols = study.patients.columns
    folder = getattr(study, "folder", None)
    return {"pfs": "pfs_months" in cols and "progression_date" in cols,
            "response": "best_response" in cols,
            "safety": getattr(study, "adverse_events", None) is not None,
            "exposure": getattr(study, "cycles", None) is not None,
            "replication": folder is not None and (folder / "published.yaml").exists()}


def input_files(study: Any) -> list[InputFile]:
    """The input files with their data rows (cohort, adverse events, cycles) and SHA-256."""
    rows = {"cohort": len(study.patients),
            "adverse_events": None if study.adverse_events is None else len(study.adverse_events),
            "treatment_cycles": None if study.cycles is None else len(study.cycles)}
    return [InputFile(name, rows.get(name.rsplit(".", 1)[0]), digest) for name, digest in study.sources.items()]


def _arm_meta(study: Any, code: str) -> tuple[str, str]:
    config = study.config
    label = config.arm_label(code) if callable(getattr(config, "arm_label", None)) else code
    description = (config.arm_description(code) if callable(getattr(config, "arm_description", None)) else "")
    return str(label), str(description or "")


def _exposure_labels(study: Any) -> dict[str, str]:
    exposures = getattr(study.dictionary, "exposures", None)
    if exposures is None:   # earlier dictionary shape
        derived = study.dictionary.get("derived", {}) if hasattr(study.dictionary, "get") else {}
        exposures = {n: s for n, s in derived.items() if str(s.get("unit")) == "cycles"}
        return {n: str(s.get("label", n)) for n, s in exposures.items() if n in study.patients}
    return {n: str(getattr(e, "label", n)) for n, e in exposures.items() if n in study.patients}


def _group(study: Any, frame: pd.DataFrame, code: str, label: str, description: str, parts: dict,
           exposures: dict) -> GroupSummary:
    n = len(frame)
    with_ae = None
    if parts["safety"] and study.ae_worst is not None:
        with_ae = int(study.ae_worst[study.ae_worst["patient_id"].isin(set(frame["patient_id"]))]["patient_id"].nunique())
    exp = {}
    for name in exposures:
        x = pd.to_numeric(frame[name], errors="coerce").dropna()
        exp[name] = (float(x.median()), float(x.min()), float(x.max())) if len(x) else (None, None, None)
    years = ()
    if "start_year" in frame and n:
        years = (int(frame["start_year"].min()), int(frame["start_year"].max()))
    return GroupSummary(code=code, label=label, description=description, n=n,
                        os_events=int(frame["os_event"].sum()), alive=int((frame["os_event"] == 0).sum()),
                        pfs_events=int(frame["pfs_event"].sum()) if parts["pfs"] and "pfs_event" in frame else None,
                        with_adverse_event=with_ae, exposures=exp, start_years=years)


def summarise_cohort(study: Any) -> CohortSummary:
    """Patients, deaths, progression events, adverse events and exposure per arm and overall."""
    parts = parts_present(study)
    exposures = _exposure_labels(study) if parts["exposure"] else {}
    p = study.patients
    arms = []
    for code in study.config.arm_order:
        label, description = _arm_meta(study, code)
        arms.append(_group(study, p[p["arm"].astype(str) == code], code, label, description, parts, exposures))
    overall = _group(study, p, OVERALL, OVERALL, "", parts, exposures)
    return CohortSummary(arms=tuple(arms), overall=overall, parts=parts, exposure_labels=exposures)


def _cohort_columns(study: Any) -> dict:
    d = study.dictionary
    try:
        return dict(d["files"]["cohort"]["columns"])
    except (KeyError, TypeError):
        return {}


def missing_values(study: Any) -> list[MissingRow]:
    """Missing values of every patient-level column of the cohort file (identifier excepted)."""
    columns = _cohort_columns(study)
    p = study.patients
    arms = [str(a) for a in study.config.arm_order]
    arm = p["arm"].astype(str)
    n = {OVERALL: len(p), **{a: int((arm == a).sum()) for a in arms}}
    out = []
    for name, spec in columns.items():
        if name == "patient_id" or name not in p:
            continue
        missing = p[name].isna()
        row = {"missing": {OVERALL: int(missing.sum()), **{a: int((missing & (arm == a)).sum()) for a in arms}}}
        if spec.get("missing_means"):
            out.append(MissingRow(name, spec.get("label", name), "missing_means", n=n,
                                  meaning=str(spec["missing_means"]), **row))
        elif spec.get("required"):
            out.append(MissingRow(name, spec.get("label", name), "required", n=n, **row))
        elif spec.get("required_when"):
            other, _, value = str(spec["required_when"]).partition("==")
            other = other.strip()
            other_label = columns.get(other, {}).get("label", other)
            value = value.strip()
            if other == "arm":
                value = _arm_meta(study, value)[0]
            out.append(MissingRow(name, spec.get("label", name), "required_when", n=n,
                                  condition=(other_label, value), **row))
        else:
            out.append(MissingRow(name, spec.get("label", name), "optional", n=n, **row))
    return out


def cohort_overview(study: Any) -> pd.DataFrame:
    """Deprecated alias of :func:`helpers.report.cohort.cohort_overview_table` (kept for tests/test_leaks.py)."""
    from helpers.report.cohort import cohort_overview_table

    return cohort_overview_table(study)
