"""What the data are: input files, patients and events per arm, parts present, missing values.

Typed results for notebook 01 and the ``data`` and ``arms`` sections of the results file; the
tables and sentences are made by :mod:`helpers.report.cohort`. Only aggregates leave this module:
no patient identifiers, no dates (calendar years at most).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import pandas as pd

from helpers.data.load import agent_codes

__all__ = ["PARTS", "InputFile", "GroupSummary", "CohortSummary", "MissingRow", "parts_present",
           "input_files", "summarise_cohort", "missing_values",
           "COHORT_DEFAULTS", "LOST_TO_FOLLOWUP_MONTHS", "lost_to_followup", "FlowCounts", "PatientFlow",
           "patient_flow", "DispositionArm", "Disposition", "last_cycle_dates", "treatment_ongoing",
           "summarise_disposition", "CountSummary", "ExposureClass", "ExposureArm", "Exposure",
           "summarise_exposure", "DeathsArm", "Deaths", "summarise_deaths"]

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



# ============================================================================= patient flow, disposition,
# exposure and deaths (STROBE item 13; the DST01, EXT01 and DTHT01 layouts of the oncology TLG catalog)

#: Choices of the plan's ``cohort`` block and their defaults (analysis.yaml).
COHORT_DEFAULTS: dict = {"ongoing_window_days": 42, "cycle_interval_days": 21, "death_window_days": 30,
                         "cycle_bins": [[1, 2], [3, 4], [5, 6], [7, None]]}
#: Default of the plan's ``survival.lost_to_followup_months``.
LOST_TO_FOLLOWUP_MONTHS = 3.0


def _days_per_month(study: Any) -> float:
    return float(getattr(study.config, "days_per_month", 365.25 / 12))


def _cutoff(study: Any) -> pd.Timestamp:
    return pd.Timestamp(study.config.cutoff_date)


def lost_to_followup(patients: pd.DataFrame, cutoff, months: float = LOST_TO_FOLLOWUP_MONTHS,
                     days_per_month: float = 365.25 / 12) -> pd.Series:
    """Boolean per patient: alive and last seen more than ``months`` before the data cut-off.

    ``(cutoff - last_followup_date)`` in days / ``days_per_month`` > ``months`` and no death date.
    R: ``is.na(death_date) & as.numeric(cutoff - last_followup_date) / 30.4375 > 3``.
    """
    gap = (pd.Timestamp(cutoff) - pd.to_datetime(patients["last_followup_date"])).dt.days / days_per_month
    return (patients["os_event"] == 0) & (gap > float(months))


def _arm_frames(study: Any) -> list[tuple[str, pd.DataFrame]]:
    p = study.patients
    return [(str(code), p[p["arm"].astype(str) == str(code)]) for code in study.config.arm_order]


@dataclass(frozen=True)
class FlowCounts:
    """The boxes of the patient-flow diagram for one arm (or ``Overall``); None where the data lack the part.

    n : patients analysed; response_evaluable : best response other than not evaluable (None without
    response data); with_adverse_event : patients with at least one adverse-event record (None
    without adverse-event data); dead, alive, lost : vital status at the cut-off (lost: alive and
    last seen more than ``PatientFlow.lost_months`` before it; included in ``alive``).
    """

    code: str
    n: int
    dead: int
    alive: int
    lost: int
    response_evaluable: Optional[int] = None
    with_adverse_event: Optional[int] = None


@dataclass(frozen=True)
class PatientFlow:
    """Patient flow (STROBE item 13): excluded patients by reason, then per arm the counts of
    :class:`FlowCounts`. ``excluded`` is None when the data folder has no ``excluded.csv``."""

    arms: tuple
    overall: FlowCounts
    lost_months: float
    excluded: Optional[tuple] = None      # ((reason, n), ...)
    n_excluded: Optional[int] = None


def _flow_counts(study: Any, code: str, frame: pd.DataFrame, parts: dict, lost_months: float) -> FlowCounts:
    dead = int(frame["os_event"].sum())
    lost = int(lost_to_followup(frame, _cutoff(study), lost_months, _days_per_month(study)).sum())
    evaluable = None
    if parts["response"] and "best_response" in frame:
        evaluable = int((frame["best_response"].notna() & (frame["best_response"].astype(str) != "NE")).sum())
    with_ae = None
    if parts["safety"] and study.adverse_events is not None:
        with_ae = int(frame["patient_id"].isin(set(study.adverse_events["patient_id"])).sum())
    return FlowCounts(code=code, n=len(frame), dead=dead, alive=len(frame) - dead, lost=lost,
                      response_evaluable=evaluable, with_adverse_event=with_ae)


def patient_flow(study: Any, lost_months: float = LOST_TO_FOLLOWUP_MONTHS, excluded: Any = None) -> PatientFlow:
    """Counts of the patient-flow diagram, from the data (STROBE item 13).

    Parameters
    ----------
    study : helpers.data.load.Study
    lost_months : float
        A patient alive at the cut-off and last seen more than this many months before it is lost to
        follow-up (the plan's ``survival.lost_to_followup_months``, default 3).
    excluded : DataFrame, optional
        ``patient_id``, ``reason`` of the patients excluded before analysis (default: the data
        folder's ``excluded.csv`` read by :func:`helpers.data.excluded.read_excluded`, None when absent).
    """
    if excluded is None and getattr(study, "folder", None) is not None:
        from helpers.data.excluded import read_excluded

        excluded = read_excluded(study.folder)
    parts = parts_present(study)
    arms = tuple(_flow_counts(study, code, frame, parts, lost_months) for code, frame in _arm_frames(study))
    overall = _flow_counts(study, OVERALL, study.patients, parts, lost_months)
    reasons = n_excluded = None
    if excluded is not None:
        counts = excluded["reason"].fillna("").astype(str).str.strip().replace("", "reason not recorded")
        counts = counts.value_counts(sort=False)
        reasons = tuple((str(r), int(k)) for r, k in sorted(counts.items(), key=lambda x: (-x[1], x[0])))
        n_excluded = int(len(excluded))
    return PatientFlow(arms=arms, overall=overall, lost_months=float(lost_months), excluded=reasons,
                       n_excluded=n_excluded)


# ----------------------------------------------------------------------------- disposition
@dataclass(frozen=True)
class DispositionArm:
    """Disposition of one arm at the cut-off.

    ongoing / discontinued : treatment status (None without treatment cycles; with cycles every
    patient is one or the other; a patient without any cycle counts as discontinued);
    reasons : ((reason, n), ...) of the discontinued patients when the cohort file has
    ``end_of_treatment_reason`` ("" = not recorded), else None; dead, in_followup, lost : vital
    status (dead + in_followup + lost = n).
    """

    code: str
    n: int
    dead: int
    in_followup: int
    lost: int
    ongoing: Optional[int] = None
    discontinued: Optional[int] = None
    reasons: Optional[tuple] = None


@dataclass(frozen=True)
class Disposition:
    """Per arm :class:`DispositionArm`, with the rules that made them (days, months)."""

    arms: tuple
    ongoing_window_days: float
    lost_months: float
    has_cycles: bool
    has_reasons: bool


def last_cycle_dates(study: Any) -> pd.Series:
    """Date of each patient's last administered cycle (index patient_id; NaT without cycles)."""
    if study.cycles is None:
        return pd.Series(pd.NaT, index=study.patients["patient_id"])
    last = study.cycles.groupby("patient_id")["cycle_date"].max()
    return study.patients["patient_id"].map(last).set_axis(study.patients["patient_id"])


def treatment_ongoing(study: Any, window_days: float = 42) -> Optional[pd.Series]:
    """Boolean per patient (index patient_id): treatment ongoing at the cut-off = alive, last cycle
    within ``window_days`` of the cut-off (cutoff - last cycle <= window) and no end-of-treatment
    reason recorded. None without treatment cycles. R: ``is.na(death_date) & cutoff - last_cycle <= 42``."""
    if study.cycles is None:
        return None
    p = study.patients.set_index("patient_id")
    last = last_cycle_dates(study)
    gap = (_cutoff(study) - pd.to_datetime(last)).dt.days
    ongoing = (p["os_event"] == 0) & gap.le(float(window_days)).fillna(False)
    if "end_of_treatment_reason" in p:
        reason = p["end_of_treatment_reason"].fillna("").astype(str).str.strip()
        ongoing &= reason == ""
    return ongoing.astype(bool)


def summarise_disposition(study: Any, choices: Optional[dict] = None,
                          lost_months: float = LOST_TO_FOLLOWUP_MONTHS) -> Disposition:
    """Disposition per arm (DST01-like): treatment ongoing or discontinued (with reasons when
    recorded), dead, alive in follow-up, lost to follow-up. ``choices``: the plan's ``cohort`` block
    (``ongoing_window_days``, default 42)."""
    c = {**COHORT_DEFAULTS, **dict(choices or {})}
    window = float(c["ongoing_window_days"])
    ongoing = treatment_ongoing(study, window)
    p = study.patients
    has_reasons = "end_of_treatment_reason" in p
    lost_all = lost_to_followup(p, _cutoff(study), lost_months, _days_per_month(study))
    arms = []
    for code, frame in _arm_frames(study):
        ids = frame["patient_id"]
        dead = int(frame["os_event"].sum())
        lost = int(lost_all.loc[frame.index].sum())
        on = off = reasons = None
        if ongoing is not None:
            on = int(ongoing.loc[ids].sum())
            off = len(frame) - on
        if has_reasons:
            stopped = frame if ongoing is None else frame[~ongoing.loc[ids].to_numpy()]
            reason = stopped["end_of_treatment_reason"].fillna("").astype(str).str.strip()
            if ongoing is None:
                reason = reason[reason != ""]
            k = reason.value_counts()
            reasons = tuple((str(r), int(n)) for r, n in sorted(k.items(), key=lambda x: (x[0] == "", -x[1], x[0])))
        arms.append(DispositionArm(code=code, n=len(frame), dead=dead, in_followup=len(frame) - dead - lost,
                                   lost=lost, ongoing=on, discontinued=off, reasons=reasons))
    return Disposition(arms=tuple(arms), ongoing_window_days=window, lost_months=float(lost_months),
                       has_cycles=ongoing is not None, has_reasons=has_reasons)


# ----------------------------------------------------------------------------- exposure
@dataclass(frozen=True)
class CountSummary:
    """Summary of a count or duration over ``n`` patients: median, minimum, maximum, mean, SD (n - 1)."""

    n: int
    median: Optional[float]
    minimum: Optional[float]
    maximum: Optional[float]
    mean: Optional[float]
    sd: Optional[float]


def _summary(x: pd.Series) -> CountSummary:
    x = pd.to_numeric(x, errors="coerce").dropna().astype(float)
    if not len(x):
        return CountSummary(0, None, None, None, None, None)
    return CountSummary(n=int(len(x)), median=float(x.median()), minimum=float(x.min()), maximum=float(x.max()),
                        mean=float(x.mean()), sd=float(x.std(ddof=1)) if len(x) > 1 else None)


@dataclass(frozen=True)
class ExposureClass:
    """Cycles of one agent class in one arm: ``cycles`` over the patients of the arm (0 for a patient
    who received none), ``bins`` ((label bounds (low, high|None), patients), ...) and ``none`` (patients
    with no cycle). ``applicable`` False: the class is not given in the arm (dictionary ``arms``)."""

    agent_class: str
    label: str
    applicable: bool
    cycles: Optional[CountSummary] = None
    bins: tuple = ()
    none: int = 0


@dataclass(frozen=True)
class ExposureArm:
    """Exposure of one arm: per agent class, and the duration of treatment (months) over the patients
    with at least one cycle."""

    code: str
    n: int
    treated: int
    classes: tuple
    duration_months: CountSummary


@dataclass(frozen=True)
class Exposure:
    """Exposure per arm (EXT01-like), with its rules: duration of treatment = (last cycle - first cycle
    + ``cycle_interval_days``) / days per month, any agent class."""

    arms: tuple
    cycle_interval_days: float
    days_per_month: float
    bins: tuple


def _bin_counts(counts: pd.Series, bins) -> tuple:
    out = []
    for low, high in bins:
        hit = counts >= low if high is None else (counts >= low) & (counts <= high)
        out.append(((int(low), None if high is None else int(high)), int(hit.sum())))
    return tuple(out)


def summarise_exposure(study: Any, choices: Optional[dict] = None) -> Optional[Exposure]:
    """Cycles per agent class (median, range, mean, SD; patients by number of cycles) and duration of
    treatment per arm; None without treatment cycles.

    Conventions: cycles per patient count the rows of the cycles table of the class (0 for a patient
    of the arm with none); the class is summarised only in the arms the dictionary's exposure lists
    (every arm when it lists none). Duration of treatment (months) = (last - first cycle date, any
    class, + ``cycle_interval_days``) / 30.4375, over the patients with at least one cycle. R:
    ``tapply(n, arm, median)``, ``range``, ``mean``, ``sd``.
    """
    if study.cycles is None:
        return None
    c = {**COHORT_DEFAULTS, **dict(choices or {})}
    interval = float(c["cycle_interval_days"])
    bins = tuple((int(b[0]), None if b[1] is None else int(b[1])) for b in c["cycle_bins"])
    dpm = _days_per_month(study)
    cycles = study.cycles
    exposures = getattr(study.dictionary, "exposures", {}) or {}
    by_class = {}
    for e in exposures.values():
        by_class.setdefault(str(e.agent_class), e)
    # each cycle's class as a code into ``names`` (the classes as text; no string per cycle)
    codes, names = agent_codes(cycles["agent_class"])
    present = np.flatnonzero(np.bincount(codes, minlength=len(names)))
    classes = list(dict.fromkeys([*by_class, *sorted({names[i] for i in present})]))
    ids_all = cycles["patient_id"].to_numpy()
    per_class = {}                            # cycles per patient of each class
    for i in present:
        per_class.setdefault(names[i], []).append(ids_all[codes == i])
    per_class = {cls: pd.Series(np.concatenate(parts)).value_counts() for cls, parts in per_class.items()}
    span = cycles.groupby("patient_id")["cycle_date"].agg(["min", "max"])
    duration = ((span["max"] - span["min"]).dt.days + interval) / dpm
    arms = []
    for code, frame in _arm_frames(study):
        ids = frame["patient_id"]
        out = []
        for cls in classes:
            e = by_class.get(cls)
            label = str(getattr(e, "label", cls))
            given = e is None or not getattr(e, "arms", None) or code in [str(a) for a in e.arms]
            if not given:
                out.append(ExposureClass(cls, label, False))
                continue
            k = ids.map(per_class.get(cls, pd.Series(dtype=float))).fillna(0).astype(int)
            out.append(ExposureClass(cls, label, True, _summary(k), _bin_counts(k, bins), int((k == 0).sum())))
        treated = ids.isin(span.index)
        arms.append(ExposureArm(code=code, n=len(frame), treated=int(treated.sum()), classes=tuple(out),
                                duration_months=_summary(ids[treated].map(duration))))
    return Exposure(arms=tuple(arms), cycle_interval_days=interval, days_per_month=dpm, bins=bins)


# ----------------------------------------------------------------------------- deaths
@dataclass(frozen=True)
class DeathsArm:
    """Deaths of one arm: all; within ``window_days`` of the last administered cycle and later (None
    without cycles; a patient who died without any cycle counts in neither); treatment-related
    (patients with a grade 5 adverse event; None without adverse-event data)."""

    code: str
    n: int
    deaths: int
    within_window: Optional[int] = None
    after_window: Optional[int] = None
    no_cycle: Optional[int] = None
    treatment_related: Optional[int] = None


@dataclass(frozen=True)
class Deaths:
    arms: tuple
    window_days: float


def summarise_deaths(study: Any, choices: Optional[dict] = None) -> Deaths:
    """Deaths per arm (DTHT01-like). Within the window: 0 <= death date - last cycle date <= 30 days
    (plan ``cohort.death_window_days``). R: ``sum(death_date - last_cycle <= 30, na.rm = TRUE)``."""
    c = {**COHORT_DEFAULTS, **dict(choices or {})}
    window = float(c["death_window_days"])
    last = last_cycle_dates(study)
    grade5 = None
    events = study.adverse_events if study.adverse_events is not None else getattr(study, "ae_worst", None)
    if events is not None:
        col = "grade" if "grade" in events else "worst_grade"
        grade5 = set(events.loc[pd.to_numeric(events[col], errors="coerce") == 5, "patient_id"])
    arms = []
    for code, frame in _arm_frames(study):
        dead = frame[frame["os_event"] == 1]
        within = after = none = None
        if study.cycles is not None:
            gap = (pd.to_datetime(dead["death_date"]) - pd.to_datetime(dead["patient_id"].map(last))).dt.days
            none = int(gap.isna().sum())
            within = int((gap <= window).sum())
            after = int((gap > window).sum())
        related = None if grade5 is None else int(frame["patient_id"].isin(grade5).sum())
        arms.append(DeathsArm(code=code, n=len(frame), deaths=len(dead), within_window=within, after_window=after,
                              no_cycle=none, treatment_related=related))
    return Deaths(arms=tuple(arms), window_days=window)
