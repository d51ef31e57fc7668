"""Adverse events by arm: patients with each term at any grade and at grade >= 3, by worst grade.

Study and analysis plan in, typed results out (:class:`SafetyAnalysis`); no English here: the tables,
figure and sentences are made by :mod:`helpers.report.safety`.

Layout: validate and reduce to one worst grade per patient and term (:func:`worst_grades`) -> count
and test (:func:`count_adverse_events`) -> the section's result (:func:`analyse_safety`,
:func:`analyse_safety_tables`).

Conventions
-----------
* A patient counts once per term, at the worst grade recorded for that term (several rows of one
  term are allowed). "Grade >= 3" = grades 3, 4 and 5. R: ``aggregate(grade ~ patient_id + term,
  data = ae, FUN = max)``.
* Denominator: all patients of the arm; patients without any adverse event count as having none.
* Terms are used as recorded (runs of white space collapsed, surrounding white space removed); the
  term rows are sorted by decreasing overall any-grade frequency (then grade >= 3 frequency, then
  alphabetically).
* One test for every row (summary rows and terms alike), chosen by the plan's ``safety.test_rule``:
  ``fisher`` (default): two-sided Fisher's exact test on the 2 x 2 table arm x (event, no event), as R
  ``fisher.test(x)$p.value``; ``cochran`` / ``modern``: the rule of
  :func:`helpers.stats.contingency.test_association`. When no patient (or every patient) had the
  event only one table is possible and P = 1, as R's fisher.test (chi-square is undefined there).
  Test names are the short names of :class:`~helpers.stats.types.TestResult` ("pearson", "yates",
  "fisher").
* Summary by highest grade (:func:`summarise_grades`): patients whose worst grade over all terms is
  3, 4 or 5 (each patient counted once, at the highest grade); grade 5 events are the treatment-related
  deaths. With the optional column ``action`` (``none``, ``dose_reduced``, ``interrupted``,
  ``discontinued``): patients with at least one event that led to each action.
* Events of special interest (optional, analysis plan ``safety.special_interest``): a configured list
  of terms (e.g. the immune-related events of one drug class; see :class:`SpecialInterest`), counted
  only in the arms the configuration lists; in the other arms the count is not applicable (None) and
  the arms are compared only when at least two arms are listed. Without the configuration there are
  no such rows.
"""
from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence

import numpy as np
import pandas as pd

from helpers.analyses.response import study_arms
from helpers.stats.contingency import fisher_exact_rxc, test_association
from helpers.stats.types import NotEstimable, TestResult

__all__ = [
    "SafetyDataError", "SpecialInterest", "SafetyAnalysis", "DEFAULT_CHOICES", "LEVELS",
    "worst_grades", "count_adverse_events", "listed_terms", "analyse_safety_tables", "analyse_safety",
    "ACTIONS", "GRADE_ROWS", "summarise_grades",
]

#: Severity levels counted per term: any grade, and grade >= ``severe_grade`` (3).
LEVELS: tuple[str, ...] = ("any_grade", "grade3plus")
#: The choices of the analysis plan's ``safety`` block and their defaults (analysis.yaml).
DEFAULT_CHOICES: dict = {"test_rule": "fisher", "min_term_percent": 10, "ctcae_version": "5.0",
                         "special_interest": None}

Rule = Literal["fisher", "cochran", "modern", "paper"]
#: Values of the optional adverse-event column ``action`` that modify the treatment, in table order.
ACTIONS: tuple[str, ...] = ("discontinued", "dose_reduced", "interrupted")
#: Rows of :func:`summarise_grades`: any grade, grade >= 3, highest grade 3, 4, 5, then the actions.
GRADE_ROWS: tuple[str, ...] = ("any_grade", "grade3plus", "grade_3", "grade_4", "grade_5")
#: ``test:<level>`` of a row whose arms cannot be compared because an arm has no patients.
NOT_ESTIMABLE = "not_estimable"


class SafetyDataError(ValueError):
    """Adverse-event rows that cannot be analysed (unknown patient, grade outside 1-5, no term)."""


def _normalise(term: str) -> str:
    return re.sub(r"\s+", " ", str(term)).strip()


@dataclass(frozen=True)
class SpecialInterest:
    """Adverse events of special interest: which terms, and in which arms they are counted.

    Configured in the analysis plan (``safety.special_interest``), e.g.::

        special_interest:
          label: immune-related
          terms: [Hypothyroidism, Pneumonitis, Rash, ...]
          prefixes: [Rash]          # also "Rash maculo-papular", "Rash acneiform" (optional)
          contains: [immune]        # any term containing the word part (optional)
          arms: [CMT+ICI]           # counted in these arms only (optional; default every arm)

    Matching is case-insensitive on the normalised term.
    """

    label: str
    terms: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()
    arms: tuple[str, ...] | None = None

    @classmethod
    def from_plan(cls, block: Mapping | None) -> "SpecialInterest | None":
        """The plan's ``special_interest`` block as an object (None when absent or empty)."""
        if not block:
            return None
        arms = block.get("arms")
        return cls(label=str(block.get("label", "")),
                   terms=tuple(str(t) for t in block.get("terms") or ()),
                   prefixes=tuple(str(t) for t in block.get("prefixes") or ()),
                   contains=tuple(str(t) for t in block.get("contains") or ()),
                   arms=tuple(str(a) for a in arms) if arms else None)

    def matches(self, term: str) -> bool:
        """True when ``term`` is an event of special interest."""
        t = _normalise(term).lower()
        if t in {_normalise(s).lower() for s in self.terms}:
            return True
        if any(t == p.lower() or t.startswith(p.lower() + " ") for p in self.prefixes):
            return True
        return any(c.lower() in t for c in self.contains)

    def counted_in(self, arm: str) -> bool:
        """True when the events are counted in ``arm`` (every arm when no arms are listed)."""
        return self.arms is None or str(arm) in self.arms


# ----------------------------------------------------------------------------- validation
def worst_grades(adverse_events: pd.DataFrame, patients: pd.DataFrame,
                 arm_col: str = "arm") -> pd.DataFrame:
    """One row per patient and term with the worst grade and the patient's arm.

    Accepts raw rows (``patient_id``, ``term``, ``grade``) or already reduced ones (``worst_grade``
    instead of ``grade``, as ``study.ae_worst``). R: ``aggregate(grade ~ patient_id + term, FUN = max)``.

    Returns
    -------
    DataFrame
        ``patient_id``, ``arm`` (object), ``term``, ``worst_grade`` (int 1-5).

    Raises
    ------
    SafetyDataError
        Missing columns, patients absent from ``patients``, missing terms, or grades outside 1-5;
        the message lists the offending rows.
    """
    grade_col = "grade" if "grade" in adverse_events.columns else "worst_grade"
    missing = [c for c in ("patient_id", "term", grade_col) if c not in adverse_events.columns]
    if missing:
        raise SafetyDataError(f"adverse-event table lacks column(s) {missing}")
    for col in ("patient_id", arm_col):
        if col not in patients.columns:
            raise SafetyDataError(f"patient table lacks column {col!r}")
    ae = adverse_events[["patient_id", "term", grade_col]].rename(columns={grade_col: "grade"}).copy()
    problems = []
    unknown = ~ae["patient_id"].isin(set(patients["patient_id"]))
    if unknown.any():
        problems.append(f"patient_id not in the patient table in rows {list(ae.index[unknown][:10])} "
                        f"({sorted(set(ae.loc[unknown, 'patient_id'].astype(str)))[:10]})")
    no_term = ae["term"].isna() | (ae["term"].astype(str).str.strip() == "")
    if no_term.any():
        problems.append(f"missing term in rows {list(ae.index[no_term][:10])}")
    grade = pd.to_numeric(ae["grade"], errors="coerce")
    bad = grade.isna() | ~grade.isin([1, 2, 3, 4, 5])
    if bad.any():
        problems.append(f"grade not an integer 1-5 in rows {list(ae.index[bad][:10])}")
    if problems:
        raise SafetyDataError("adverse events: " + "; ".join(problems))
    ae["term"] = ae["term"].astype(str).map({t: _normalise(t) for t in ae["term"].astype(str).unique()})
    ae["grade"] = grade.astype(int)
    worst = ae.groupby(["patient_id", "term"], sort=True)["grade"].max().rename("worst_grade").reset_index()
    arm = patients.set_index("patient_id")[arm_col]
    worst.insert(1, "arm", worst["patient_id"].map(arm).astype(object))
    return worst


def _arm_order(patients: pd.DataFrame, arm_col: str, arm_order: Sequence[str] | None) -> list[str]:
    if arm_order is not None:
        return [str(a) for a in arm_order]
    if isinstance(patients[arm_col].dtype, pd.CategoricalDtype):
        return [str(a) for a in patients[arm_col].cat.categories]
    return sorted(patients[arm_col].astype(str).unique())


# ----------------------------------------------------------------------------- counting
def _test(table: np.ndarray, rule: str, per_term: bool = False) -> TestResult:
    """Between-arm test of one row, the same for summary rows and terms: Fisher's exact test
    (``rule`` "fisher") or the rule of :func:`helpers.stats.contingency.test_association`.
    ``per_term`` is kept for callers of earlier versions and has no effect."""
    k = table[:, 0]
    total = int(table.sum())
    if rule == "fisher" or k.sum() == 0 or k.sum() == total:
        # an empty margin (no patient or every patient with the event) admits one table only:
        # Fisher's P = 1, as R's fisher.test; chi-square is undefined there
        return TestResult(statistic=None, df=None, p=float(fisher_exact_rxc(table)), test="fisher")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = test_association(table, rule=rule)
    return TestResult(statistic=res.statistic, df=res.df, p=res.p, test=res.key)


def _row(term: str | None, kind: str, special: bool, any_k: dict, g3_k: dict, n: dict, rule: str,
         per_term: bool) -> dict:
    """One row from the number of patients with the event per arm (None: not applicable in the arm)."""
    arms = list(n)
    row: dict = {"term": term, "kind": kind, "special": special}
    for arm in arms:
        row[f"any_grade:{arm}"] = any_k[arm]
        row[f"grade3plus:{arm}"] = g3_k[arm]
    applicable = [a for a in arms if any_k[a] is not None]
    total = sum(n[a] for a in applicable)
    for level, counts in (("any_grade", any_k), ("grade3plus", g3_k)):
        row[f"{level}_total_percent"] = (100.0 * sum(int(counts[a]) for a in applicable) / total
                                         if total else math.nan)
    for level, counts in (("any_grade", any_k), ("grade3plus", g3_k)):
        tested = [a for a in applicable if n[a] > 0]
        if len(tested) < 2:
            res: TestResult | None = None
        else:
            table = np.array([[int(counts[a]), n[a] - int(counts[a])] for a in tested])
            res = _test(table, rule, per_term)
        row[f"p:{level}"] = res.p if res is not None else None
        # None: no comparison applies (fewer than two arms count the row); NOT_ESTIMABLE: an arm is empty
        row[f"test:{level}"] = res.test if res is not None else (NOT_ESTIMABLE if len(applicable) >= 2 else None)
        row[f"statistic:{level}"] = res.statistic if res is not None else None
        row[f"df:{level}"] = res.df if res is not None else None
    return row


def count_adverse_events(patients: pd.DataFrame, adverse_events: pd.DataFrame, rule: Rule = "fisher",
                         special_interest: SpecialInterest | None = None, arm_col: str = "arm",
                         arm_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Patients with each adverse event per arm, any grade and grade >= 3, with P values.

    Parameters
    ----------
    patients : DataFrame
        All treated patients (``patient_id``, ``arm``); the denominators.
    adverse_events : DataFrame
        Raw rows (``patient_id``, ``term``, ``grade``) or worst grades (``worst_grade``).
    rule : {"fisher", "cochran", "modern"}  ("paper": former name of "cochran")
        Test of every row (summary rows and terms): Fisher's exact test, or the rule of
        :func:`helpers.stats.contingency.test_association`.
    special_interest : SpecialInterest, optional
        Events of special interest; without it there is no ``"special"`` row and no term is flagged.
    arm_order : sequence of str, optional
        Arm codes, reference first (default: the Categorical order of the arm column).

    Returns
    -------
    DataFrame
        One row per summary line (``kind`` "any": patients with any event; ``kind`` "special": with any
        event of special interest, only with ``special_interest``; ``term`` None) and per term (``kind``
        "term", sorted by decreasing overall frequency), with columns ``term``, ``kind``, ``special``
        (flag), ``any_grade:<arm>``, ``grade3plus:<arm>`` (patients; None where not applicable), the
        overall percentages ``any_grade_total_percent``, ``grade3plus_total_percent`` (of the patients
        of the applicable arms), and per level ``p:<level>``, ``test:<level>`` (short test name),
        ``statistic:<level>``, ``df:<level>`` (None where no test applies: fewer than two arms count
        the row; ``test`` is :data:`NOT_ESTIMABLE` when an arm has no patients). ``attrs`` holds ``arms``
        (reference first), ``n`` (patients per arm) and ``rule``.
    """
    arms = _arm_order(patients, arm_col, arm_order)
    worst = worst_grades(adverse_events, patients, arm_col)
    arm_of = patients.set_index("patient_id")[arm_col].astype(str)
    n = {arm: int((arm_of == arm).sum()) for arm in arms}
    terms = worst["term"].unique()
    special_of = {t: bool(special_interest is not None and special_interest.matches(t)) for t in terms}
    worst["special"] = worst["term"].map(special_of).astype(bool)
    worst["arm"] = worst["arm"].astype(str)

    def counts(frame: pd.DataFrame, threshold: int, only: SpecialInterest | None = None) -> dict:
        """Patients per arm with a worst grade >= ``threshold`` on any row of ``frame``."""
        ids = frame.loc[frame["worst_grade"] >= threshold, ["patient_id", "arm"]].drop_duplicates("patient_id")
        k = ids["arm"].value_counts()
        return {arm: (int(k.get(arm, 0)) if only is None or only.counted_in(arm) else None) for arm in arms}

    rows = [_row(None, "any", False, counts(worst, 1), counts(worst, 3), n, rule, per_term=False)]
    if special_interest is not None:
        sub = worst[worst["special"]]
        rows.append(_row(None, "special", True, counts(sub, 1, special_interest),
                         counts(sub, 3, special_interest), n, rule, per_term=False))
    # one row per patient and term: patients with the term = rows, counted per term and arm
    any_k = worst.groupby(["term", "arm"], sort=True).size()
    g3_k = worst[worst["worst_grade"] >= 3].groupby(["term", "arm"], sort=True).size()

    def per_arm(k: pd.Series, term: str) -> dict:
        return {arm: int(k.get((term, arm), 0)) for arm in arms}

    term_rows = [_row(term, "term", special_of[term], per_arm(any_k, term), per_arm(g3_k, term), n, rule,
                      per_term=True)
                 for term in sorted(terms)]
    term_rows.sort(key=lambda r: (-r["any_grade_total_percent"], -r["grade3plus_total_percent"],
                                  r["term"].lower()))
    table = pd.DataFrame(rows + term_rows)
    for arm in arms:
        for level in LEVELS:
            table[f"{level}:{arm}"] = table[f"{level}:{arm}"].astype("Int64")   # <NA>: not applicable
    table.attrs.update({"arms": arms, "n": n, "rule": rule})
    return table


def listed_terms(counts: pd.DataFrame, min_term_percent: float) -> pd.Series:
    """Boolean mask of the term rows whose any-grade frequency reaches ``min_term_percent`` (percent)
    in at least one arm."""
    n = counts.attrs["n"]
    pct = pd.concat([100 * counts[f"any_grade:{arm}"].astype(float) / max(n[arm], 1) for arm in n],
                    axis=1).max(axis=1)
    return (counts["kind"] == "term") & (pct >= min_term_percent)


# ----------------------------------------------------------------------------- the section's result
@dataclass(frozen=True)
class SafetyAnalysis:
    """Everything the safety section reports, with the choices that made it.

    Attributes
    ----------
    arms : arm codes, reference first
    n : arm -> patients (the denominators)
    counts : DataFrame of :func:`count_adverse_events`
    rule : test-selection rule of the summary rows
    min_term_percent : a term is listed in the main table when its any-grade frequency reaches this
        percentage in at least one arm
    special_interest : SpecialInterest or None
    ctcae_version : grading version (e.g. "5.0")
    """

    arms: tuple[str, ...]
    n: dict[str, int]
    counts: pd.DataFrame
    rule: str
    min_term_percent: float
    special_interest: SpecialInterest | None = None
    ctcae_version: str = "5.0"
    caveats: tuple = field(default_factory=tuple)
    #: DataFrame of :func:`summarise_grades` (None for results of earlier versions)
    grades: pd.DataFrame | None = None

    def summary_row(self, kind: str = "any") -> pd.Series | None:
        """The summary row ``"any"`` or ``"special"`` (None when absent)."""
        rows = self.counts[self.counts["kind"] == kind]
        return rows.iloc[0] if len(rows) else None

    def term_rows(self) -> pd.DataFrame:
        """Every term row, most frequent first."""
        return self.counts[self.counts["kind"] == "term"]

    def listed(self) -> pd.Series:
        """Boolean mask (over ``counts``) of the terms listed in the main table."""
        return listed_terms(self.counts, self.min_term_percent)

    def test(self, row: pd.Series, level: str) -> TestResult | NotEstimable:
        """The between-arm test of a row at ``level`` ("any_grade" or "grade3plus")."""
        if _nan(row[f"test:{level}"]):
            return NotEstimable("test", "not_applicable")
        if row[f"test:{level}"] == NOT_ESTIMABLE:
            return NotEstimable("test", "empty_arm")
        stat, df = row[f"statistic:{level}"], row[f"df:{level}"]
        return TestResult(statistic=None if _nan(stat) else float(stat), df=None if _nan(df) else df,
                          p=None if _nan(row[f"p:{level}"]) else float(row[f"p:{level}"]),
                          test=str(row[f"test:{level}"]))


def _nan(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def analyse_safety_tables(patients: pd.DataFrame, adverse_events: pd.DataFrame, *,
                          arm_order: Sequence[str] | None = None, rule: Rule = "cochran",
                          min_term_percent: float = 10.0, special_interest: SpecialInterest | None = None,
                          ctcae_version: str = "5.0", arm_col: str = "arm") -> SafetyAnalysis:
    """The safety analysis of a patient table and an adverse-event table (see
    :func:`count_adverse_events` for the parameters)."""
    counts = count_adverse_events(patients, adverse_events, rule, special_interest, arm_col, arm_order)
    arms = tuple(counts.attrs["arms"])
    unknown = [a for a in (special_interest.arms or ()) if a not in arms] if special_interest else []
    if unknown:
        raise SafetyDataError(f"special_interest.arms: {unknown} not among the study's arms {list(arms)}")
    grades = summarise_grades(patients, adverse_events, rule, arm_col, list(arms))
    return SafetyAnalysis(arms=arms, n=dict(counts.attrs["n"]), counts=counts, rule=rule,
                          min_term_percent=float(min_term_percent), special_interest=special_interest,
                          ctcae_version=str(ctcae_version), grades=grades)


def analyse_safety(study, choices: Mapping | None = None) -> SafetyAnalysis:
    """The safety section's result for a validated study and the plan's ``safety`` choices.

    Parameters
    ----------
    study : helpers.data.load.Study
        ``patients`` (denominators) and ``adverse_events`` (or ``ae_worst``); arms from ``study.config``.
    choices : mapping, optional
        The ``safety`` block of analysis.yaml: ``test_rule`` ("fisher" | "cochran" | "modern"), ``min_term_percent``
        (percent), ``ctcae_version``, ``special_interest`` (see :class:`SpecialInterest`; none by
        default). Missing keys take :data:`DEFAULT_CHOICES`.
    """
    c = {**DEFAULT_CHOICES, **dict(choices or {})}
    events = study.adverse_events if study.adverse_events is not None else study.ae_worst
    if events is None:
        events = pd.DataFrame({"patient_id": [], "term": [], "grade": []})

    return analyse_safety_tables(study.patients, events, arm_order=study_arms(study.config),
                                 rule=c["test_rule"], min_term_percent=float(c["min_term_percent"]),
                                 special_interest=SpecialInterest.from_plan(c["special_interest"]),
                                 ctcae_version=str(c["ctcae_version"]))


# ----------------------------------------------------------------------------- summary by highest grade
def summarise_grades(patients: pd.DataFrame, adverse_events: pd.DataFrame, rule: Rule = "fisher",
                     arm_col: str = "arm", arm_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Patients per arm by highest grade over all terms, and with events that changed the treatment.

    Rows (``kind``): ``any_grade`` (any event), ``grade3plus`` (worst grade >= 3), ``grade_3``,
    ``grade_4``, ``grade_5`` (worst grade exactly 3, 4, 5; grade 5 = treatment-related death), then,
    only when ``adverse_events`` has the optional column ``action``, ``action_discontinued``,
    ``action_dose_reduced``, ``action_interrupted`` (patients with at least one event that led to it;
    an empty action is not recorded and counts as none). Columns ``k:<arm>`` (patients), ``p``,
    ``test``, ``statistic``, ``df`` (one test for every row: see :func:`_test`). ``attrs``: ``arms``,
    ``n``, ``rule``, ``has_actions``.

    R: ``w <- aggregate(grade ~ patient_id, ae, max)``; ``table(arm, w$grade == 4)``;
    ``fisher.test(x)$p.value``.
    """
    arms = _arm_order(patients, arm_col, arm_order)
    arm_of = patients.set_index("patient_id")[arm_col].astype(str)
    n = {arm: int((arm_of == arm).sum()) for arm in arms}
    grade_col = "grade" if "grade" in adverse_events.columns else "worst_grade"
    ae = adverse_events.copy()
    ae["_grade"] = pd.to_numeric(ae[grade_col], errors="coerce")
    worst = ae.groupby("patient_id")["_grade"].max()
    sets: dict[str, set] = {
        "any_grade": set(worst.index),
        "grade3plus": set(worst.index[worst >= 3]),
        **{f"grade_{g}": set(worst.index[worst == g]) for g in (3, 4, 5)},
    }
    has_actions = "action" in ae.columns
    if has_actions:
        action = ae["action"].astype(object).where(ae["action"].notna(), "").astype(str).str.strip()
        for a in ACTIONS:
            sets[f"action_{a}"] = set(ae.loc[action == a, "patient_id"])
    rows = []
    for kind, ids in sets.items():
        k = {arm: int(arm_of[arm_of.index.isin(ids)].eq(arm).sum()) for arm in arms}
        row: dict = {"kind": kind, **{f"k:{arm}": k[arm] for arm in arms}}
        tested = [a for a in arms if n[a] > 0]
        if len(tested) < 2:
            res = None
        else:
            res = _test(np.array([[k[a], n[a] - k[a]] for a in tested]), rule)
        row.update({"p": res.p if res else None,
                    "test": res.test if res else (NOT_ESTIMABLE if len(arms) >= 2 else None),
                    "statistic": res.statistic if res else None, "df": res.df if res else None})
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs.update({"arms": arms, "n": n, "rule": rule, "has_actions": has_actions})
    return table
