"""Treatment-related adverse events (TRAEs, CTCAE v5.0) by arm.

Layout: validate and reduce to one worst grade per patient and term (:func:`worst_grades`) ->
count and test (:func:`tabulate_trae`) -> tables (:func:`make_trae_table`, :func:`make_irae_table`,
:func:`make_published_safety_table`), figure (:func:`plot_trae_butterfly`) and results payload
(:func:`summarise_safety`).

Conventions
-----------
* A patient counts once per term, at the worst grade recorded for that term (several rows of one
  term are allowed). "Grade >= 3" = grades 3, 4 and 5.
* Denominator: all patients of the arm; patients without any adverse event count as having none.
* Terms are used as recorded (surrounding white space removed); the table lists them by decreasing
  overall any-grade frequency (then grade >= 3 frequency, then alphabetically).
* P per term: two-sided Fisher's exact test on the 2 x 2 table arm x (event, no event), as R
  ``fisher.test(x)$p.value``. When no patient (or every patient) had the event only one table is
  possible and P = 1, as R's fisher.test (chi-square is undefined there). The summary rows (any TRAE, any grade >= 3 TRAE, any immune-related AE) use
  :func:`helpers.stats.contingency.test_association` with the chosen rule (default the Table 1 rule).
* Immune-related adverse events: a term is flagged when it is on :data:`IRAE_TERMS` (case-
  insensitive; "Rash" also covers its CTCAE variants such as "Rash maculo-papular") or contains
  "immune" (e.g. "Immune-mediated hepatitis", "Autoimmune disorder"). The flag marks a term of the
  immune-related kind; in the chemotherapy-only arm such events cannot be immune-mediated and are
  shown for comparison.
"""
from __future__ import annotations

import math
import re
import textwrap
import warnings
from typing import Iterable, Literal, Sequence

import numpy as np
import pandas as pd

from helpers.stats.contingency import fisher_exact_rxc, test_association
from helpers.report.formatting import format_n_pct, format_p
from helpers.analyses.response import _significance, load_published_statements

__all__ = [
    "IRAE_TERMS", "IRAE_MARK", "SafetyDataError", "is_immune_related", "worst_grades",
    "tabulate_trae", "make_trae_table", "make_irae_table", "trae_table_footnote",
    "plot_trae_butterfly", "summarise_safety", "make_published_safety_table",
    "ANY_TRAE", "ANY_IRAE",
]

#: Immune-related adverse event terms (CTCAE v5.0 wording, lower case) -> organ class. Sources: the
#: ASCO/NCCN guideline on immune-related adverse events (Schneider et al., J Clin Oncol
#: 2021;39:4073) for the organ classes, and reactive cutaneous capillary endothelial proliferation
#: (RCCEP), specific to camrelizumab (ESCORT-1st).
IRAE_TERMS: dict[str, str] = {
    "hypothyroidism": "endocrine", "hyperthyroidism": "endocrine", "thyroiditis": "endocrine",
    "adrenal insufficiency": "endocrine", "hypophysitis": "endocrine",
    "hypopituitarism": "endocrine", "type 1 diabetes mellitus": "endocrine",
    "pneumonitis": "pulmonary",
    "rash": "skin", "pruritus": "skin", "vitiligo": "skin", "bullous dermatitis": "skin",
    "stevens-johnson syndrome": "skin", "toxic epidermal necrolysis": "skin",
    "reactive cutaneous capillary endothelial proliferation": "skin", "rccep": "skin",
    "hepatitis": "hepatic", "autoimmune hepatitis": "hepatic",
    "colitis": "gastrointestinal", "enterocolitis": "gastrointestinal",
    "myocarditis": "cardiac", "pericarditis": "cardiac",
    "nephritis": "renal", "acute kidney injury": "renal",
    "myositis": "musculoskeletal", "arthritis": "musculoskeletal",
    "uveitis": "ocular",
    "encephalitis": "neurological", "myasthenia gravis": "neurological",
    "guillain-barre syndrome": "neurological", "peripheral motor neuropathy": "neurological",
}
#: Terms that also match their CTCAE sub-terms ("Rash maculo-papular", "Rash acneiform").
_PREFIX_TERMS = ("rash",)
#: Marker appended to an immune-related term in tables and the figure.
IRAE_MARK = "†"
ANY_TRAE = "Any TRAE"
ANY_IRAE = "Any immune-related AE"

Rule = Literal["paper", "modern"]


class SafetyDataError(ValueError):
    """Adverse-event rows that cannot be analysed (unknown patient, grade outside 1-5, no term)."""


def _normalise(term: str) -> str:
    return re.sub(r"\s+", " ", str(term)).strip()


def is_immune_related(term: str, irae_terms: Iterable[str] | None = None) -> bool:
    """True when ``term`` is an immune-related AE term (see the module docstring)."""
    t = _normalise(term).lower()
    listed = {s.lower() for s in (irae_terms if irae_terms is not None else IRAE_TERMS)}
    if t in listed or "immune" in t:
        return True
    return any(t.startswith(p + " ") for p in _PREFIX_TERMS if p in listed)


# ----------------------------------------------------------------------------- validation
def worst_grades(adverse_events: pd.DataFrame, patients: pd.DataFrame,
                 arm_col: str = "arm") -> pd.DataFrame:
    """One row per patient and term with the worst CTCAE grade and the patient's arm.

    Accepts raw rows (``patient_id``, ``term``, ``grade``) or already reduced ones
    (``worst_grade`` instead of ``grade``, as ``study.ae_worst``).

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
    ae["term"] = ae["term"].map({t: _normalise(t) for t in ae["term"].unique()})  # once per distinct term
    ae["grade"] = grade.astype(int)
    worst = ae.groupby(["patient_id", "term"], sort=True)["grade"].max().rename("worst_grade").reset_index()
    arm = patients.set_index("patient_id")[arm_col]
    worst.insert(1, "arm", worst["patient_id"].map(arm).astype(object))
    return worst


def _arm_order(patients: pd.DataFrame, arm_col: str, arm_order: Sequence[str] | None) -> list[str]:
    if isinstance(patients[arm_col].dtype, pd.CategoricalDtype):
        return [str(a) for a in patients[arm_col].cat.categories]
    if arm_order is not None:
        return list(arm_order)
    return sorted(patients[arm_col].astype(str).unique())


# ----------------------------------------------------------------------------- counting
def _row(term: str, kind: str, irae: bool, any_k: dict, g3_k: dict, n: dict, rule: str,
         per_term: bool) -> dict:
    """One table row from the number of patients with the event per arm (any grade, grade >= 3)."""
    arms = list(n)
    row = {"term": term, "kind": kind, "irae": irae}
    for arm in arms:
        row[f"any_grade:{arm}"] = int(any_k[arm])
        row[f"grade3plus:{arm}"] = int(g3_k[arm])
    total = sum(n.values())
    row["any_grade_total_percent"] = 100.0 * sum(int(any_k[a]) for a in arms) / total if total else math.nan
    row["grade3plus_total_percent"] = 100.0 * sum(int(g3_k[a]) for a in arms) / total if total else math.nan
    for level, counts in (("any_grade", any_k), ("grade3plus", g3_k)):
        k = [int(counts[a]) for a in arms]
        table = np.array([[k[i], n[a] - k[i]] for i, a in enumerate(arms)])
        if sum(k) == 0 or sum(k) == total or per_term:
            # an empty margin (no patient or every patient with the event) admits one table only:
            # Fisher's P = 1, as R's fisher.test; chi-square is undefined there
            p = fisher_exact_rxc(table)
            row[f"p:{level}"], row[f"test:{level}"] = p, "Fisher's exact test"
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = test_association(table, rule=rule)
            row[f"p:{level}"], row[f"test:{level}"] = res.p, res.test
            row[f"statistic:{level}"] = res.statistic
    return row


def tabulate_trae(patients: pd.DataFrame, adverse_events: pd.DataFrame, rule: Rule = "paper",
                  irae_terms: Iterable[str] | None = None, arm_col: str = "arm",
                  arm_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Patients with each TRAE per arm, any grade and grade >= 3, with P values.

    Parameters
    ----------
    patients : DataFrame
        All treated patients (``patient_id``, ``arm``); the denominators.
    adverse_events : DataFrame
        Raw AE rows (``patient_id``, ``term``, ``grade``) or worst grades (``worst_grade``).
    rule : {"paper", "modern"}
        Test rule of the summary rows (:func:`helpers.stats.contingency.test_association`); terms always
        use Fisher's exact test.
    irae_terms : iterable of str, optional
        Immune-related terms (default :data:`IRAE_TERMS`).

    Returns
    -------
    DataFrame
        One row per summary line (``kind`` "overall": :data:`ANY_TRAE`, :data:`ANY_IRAE`) and per
        term (``kind`` "term", sorted by decreasing overall frequency), with columns ``term``,
        ``kind``, ``irae``, ``any_grade:<arm>``, ``grade3plus:<arm>`` (patients), the overall
        percentages, ``p:any_grade``, ``test:any_grade``, ``p:grade3plus``, ``test:grade3plus``.
        ``attrs`` holds ``arms`` (reference first), ``n`` (patients per arm) and ``rule``.
    """
    arms = _arm_order(patients, arm_col, arm_order)
    worst = worst_grades(adverse_events, patients, arm_col)
    arm_of = patients.set_index("patient_id")[arm_col].astype(str)
    n = {arm: int((arm_of == arm).sum()) for arm in arms}
    terms = worst["term"].unique()
    irae_of = {t: is_immune_related(t, irae_terms) for t in terms}
    worst["irae"] = worst["term"].map(irae_of).astype(bool)
    worst["arm"] = worst["arm"].astype(str)

    def counts(frame: pd.DataFrame, threshold: int) -> dict:
        """Patients per arm with a worst grade >= ``threshold`` on any row of ``frame``."""
        ids = frame.loc[frame["worst_grade"] >= threshold, ["patient_id", "arm"]].drop_duplicates("patient_id")
        k = ids["arm"].value_counts()
        return {arm: int(k.get(arm, 0)) for arm in arms}

    rows = [_row(ANY_TRAE, "overall", False, counts(worst, 1), counts(worst, 3), n, rule, per_term=False),
            _row(ANY_IRAE, "overall", True, counts(worst[worst["irae"]], 1), counts(worst[worst["irae"]], 3),
                 n, rule, per_term=False)]
    # one row per patient and term: patients with the term = rows, counted per term and arm
    any_k = worst.groupby(["term", "arm"], sort=True).size()
    g3_k = worst[worst["worst_grade"] >= 3].groupby(["term", "arm"], sort=True).size()

    def per_arm(k: pd.Series, term: str) -> dict:
        return {arm: int(k.get((term, arm), 0)) for arm in arms}

    term_rows = [_row(term, "term", bool(irae_of[term]), per_arm(any_k, term), per_arm(g3_k, term), n, rule,
                      per_term=True)
                 for term in sorted(terms)]
    term_rows.sort(key=lambda r: (-r["any_grade_total_percent"], -r["grade3plus_total_percent"],
                                  r["term"].lower()))
    table = pd.DataFrame(rows + term_rows)
    table.attrs.update({"arms": arms, "n": n, "rule": rule})
    return table


def _listed_terms(counts: pd.DataFrame, min_term_percent: float) -> pd.Series:
    """Terms whose any-grade frequency reaches ``min_term_percent`` in at least one arm."""
    n = counts.attrs["n"]
    pct = pd.concat([100 * counts[f"any_grade:{arm}"] / max(n[arm], 1) for arm in n], axis=1).max(axis=1)
    return (counts["kind"] == "term") & (pct >= min_term_percent)


# ----------------------------------------------------------------------------- tables
def _display(counts: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    arms, n = counts.attrs["arms"], counts.attrs["n"]
    out = pd.DataFrame({"Adverse event": [r.term + (f" {IRAE_MARK}" if r.irae and r.kind == "term" else "")
                                          for r in rows.itertuples()]})
    for arm in arms:
        out[f"{arm} (n = {n[arm]}): any grade"] = [format_n_pct(k, n[arm]) for k in rows[f"any_grade:{arm}"]]
        out[f"{arm}: grade ≥ 3"] = [format_n_pct(k, n[arm]) for k in rows[f"grade3plus:{arm}"]]
    out["P, any grade"] = [format_p(p) for p in rows["p:any_grade"]]
    out["P, grade ≥ 3"] = [format_p(p) for p in rows["p:grade3plus"]]
    return out


def make_trae_table(counts: pd.DataFrame, min_term_percent: float = 10.0) -> pd.DataFrame:
    """TRAE table: the "Any TRAE" row (any grade and grade >= 3), then every term reaching
    ``min_term_percent`` (any grade, in at least one arm), by decreasing overall frequency.

    Cells are n (%) of all patients of the arm; immune-related terms carry :data:`IRAE_MARK`.
    """
    rows = counts[(counts["term"] == ANY_TRAE) | _listed_terms(counts, min_term_percent)]
    return _display(counts, rows.reset_index(drop=True))


def make_irae_table(counts: pd.DataFrame) -> pd.DataFrame:
    """Immune-related AE table: "Any immune-related AE", then every immune-related term (no
    frequency threshold)."""
    rows = counts[counts["irae"]]
    out = _display(counts, rows.reset_index(drop=True))
    out["Adverse event"] = out["Adverse event"].str.replace(f" {IRAE_MARK}", "", regex=False)
    return out


def trae_table_footnote(counts: pd.DataFrame, min_term_percent: float | None = 10.0,
                        mark: bool = True) -> str:
    """Footnote of the TRAE tables, from the same conventions the counts used.

    ``min_term_percent=None`` omits the listing rule (the irAE table lists every term); ``mark``
    explains the immune-related marker.
    """
    rule = counts.attrs.get("rule", "paper")
    rule_text = {"paper": "the Table 1 rule (Pearson chi-square if every expected count is >= 5, "
                          "Yates-corrected chi-square if the smallest is 1 to < 5, Fisher's exact test "
                          "if it is < 1 or n < 40)",
                 "modern": "Fisher's exact test if any expected count is < 5, else Pearson chi-square"}[rule]
    listed = (f" Terms listed: any-grade frequency >= {min_term_percent:g}% in at least one arm, by "
              f"decreasing overall frequency." if min_term_percent is not None else "")
    return (f"n (%) of all patients of the arm (patients without any adverse event count as none); each "
            f"patient counted once per term at the worst CTCAE v5.0 grade; grade ≥ 3 includes grades 4 and "
            f"5.{listed}{f' {IRAE_MARK} immune-related term.' if mark else ''} P: two-sided; per term Fisher's exact test; "
            f"summary rows by {rule_text}; when no patient (or every patient) had the event only one table "
            f"is possible and P = 1 (Fisher's exact test, as R's fisher.test).")


# ----------------------------------------------------------------------------- figure
def plot_trae_butterfly(counts: pd.DataFrame, min_term_percent: float = 10.0, include_any: bool = True):
    """Diverging bar chart of TRAE frequency per term: reference arm to the left, experimental arm
    to the right; a light bar for any grade and a dark inner bar for grade >= 3 (percent of the
    arm). Terms as in :func:`make_trae_table`, most frequent on top. Returns the Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from helpers.report.figures import COLUMN_WIDTH_IN, arm_colour, style_context

    arms, n = counts.attrs["arms"], counts.attrs["n"]
    if len(arms) != 2:
        raise ValueError(f"a butterfly chart needs two arms, got {arms}")
    mask = _listed_terms(counts, min_term_percent)
    if include_any:
        mask = mask | (counts["term"] == ANY_TRAE)
    rows = counts[mask].reset_index(drop=True)
    labels = [textwrap.fill(r.term, 34) + (f" {IRAE_MARK}" if r.irae and r.kind == "term" else "")
              for r in rows.itertuples()]
    y = np.arange(len(rows))[::-1]
    with style_context():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN * 1.9, 0.9 + 0.22 * len(rows)))
        for side, (arm, sign) in enumerate(zip(arms, (-1, 1))):
            colour = arm_colour(arm, side)
            any_pct = 100 * rows[f"any_grade:{arm}"] / max(n[arm], 1)
            g3_pct = 100 * rows[f"grade3plus:{arm}"] / max(n[arm], 1)
            ax.barh(y, sign * any_pct, height=0.75, color=colour, alpha=0.35, linewidth=0)
            ax.barh(y, sign * g3_pct, height=0.45, color=colour, linewidth=0)
        ax.axvline(0, color="black", linewidth=0.6)
        ax.set_yticks(y)
        ax.set_yticklabels(labels)
        limit = 10 * math.ceil(max(1.0, (100 * rows[[f"any_grade:{a}" for a in arms]] /
                                          [max(n[a], 1) for a in arms]).to_numpy().max()) / 10)
        ax.set_xlim(-limit, limit)
        ticks = np.arange(-limit, limit + 1, 20 if limit > 50 else 10)
        ax.set_xticks(ticks)
        ax.set_xticklabels([f"{abs(t):.0f}" for t in ticks])
        ax.set_xlabel("Patients with the adverse event (%)")
        for arm, x, ha in ((arms[0], -limit, "left"), (arms[1], limit, "right")):
            ax.text(x, len(rows) - 0.3, f"{arm} (n = {n[arm]})", ha=ha, va="bottom",
                    color=arm_colour(arm, arms.index(arm)), fontweight="bold")
        handles = [Patch(facecolor="grey", alpha=0.35, label="Any grade"),
                   Patch(facecolor="grey", label="Grade ≥ 3")]
        ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2)
        ax.set_ylim(-0.7, len(rows) + 0.4)
        ax.spines["left"].set_visible(False)
        ax.tick_params(axis="y", length=0)
    return fig


# ----------------------------------------------------------------------------- results and published
def _arm_key(arm: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in str(arm)).strip("_")


def _level_payload(row: pd.Series, level: str, arms: list[str], n: dict) -> dict:
    out = {arm: {"k": int(row[f"{level}:{arm}"]), "n": n[arm],
                 "rate": row[f"{level}:{arm}"] / n[arm] if n[arm] else None,
                 "percent": 100.0 * row[f"{level}:{arm}"] / n[arm] if n[arm] else None} for arm in arms}
    p = row[f"p:{level}"]
    out["p"] = None if p is None or (isinstance(p, float) and math.isnan(p)) else float(p)
    out["test"] = row[f"test:{level}"]
    stat = row.get(f"statistic:{level}")
    out["statistic"] = None if stat is None or (isinstance(stat, float) and math.isnan(stat)) else stat
    return out


def summarise_safety(counts: pd.DataFrame, min_term_percent: float = 10.0, published: dict | None = None,
                     alpha: float = 0.05) -> dict:
    """Payload of the ``safety`` section of results.json.

    Keys: ``any_grade`` and ``grade3plus`` ({arm: {k, n, percent}, p, test, statistic}: patients with
    at least one TRAE / at least one grade >= 3 TRAE), ``irae`` (same for immune-related terms),
    ``terms`` (every term: {term, irae, listed, any_grade, grade3plus}), ``rule``,
    ``min_term_percent``, ``published`` (agreement with the abstract) and ``text`` (formatted
    strings; arm names as in ``CMT_ICI``).
    """
    arms, n = counts.attrs["arms"], counts.attrs["n"]
    overall = counts.set_index("term")
    any_row, irae_row = overall.loc[ANY_TRAE], overall.loc[ANY_IRAE]
    listed = _listed_terms(counts, min_term_percent)
    terms = [{"term": r["term"], "irae": bool(r["irae"]), "listed": bool(listed.loc[i]),
              "any_grade": _level_payload(r, "any_grade", arms, n),
              "grade3plus": _level_payload(r, "grade3plus", arms, n)}
             for i, r in counts[counts["kind"] == "term"].iterrows()]
    payload = {
        "any_grade": _level_payload(any_row, "any_grade", arms, n),
        "grade3plus": _level_payload(any_row, "grade3plus", arms, n),
        "irae": {"any_grade": _level_payload(irae_row, "any_grade", arms, n),
                 "grade3plus": _level_payload(irae_row, "grade3plus", arms, n)},
        "terms": terms, "rule": counts.attrs.get("rule"), "min_term_percent": min_term_percent,
        "n_terms": len(terms), "n_terms_listed": int(listed.sum()),
        "ctcae_version": "5.0",
    }
    if published is None:
        published = load_published_statements()
    p_any = payload["any_grade"]["p"]
    differs = p_any is not None and p_any < alpha
    agrees = "no: incidence differs significantly" if differs else "yes"
    payload["published"] = {"statement": published.get("trae", ""), "alpha": alpha,
                            "significant": bool(differs), "agrees": agrees}
    text: dict[str, str] = {}
    for level in ("any_grade", "grade3plus"):
        for arm in arms:
            text[f"{level}_{_arm_key(arm)}"] = format_n_pct(payload[level][arm]["k"], n[arm])
            text[f"irae_{level}_{_arm_key(arm)}"] = format_n_pct(payload["irae"][level][arm]["k"], n[arm])
        text[f"{level}_p"] = format_p(payload[level]["p"])
        text[f"{level}_test"] = payload[level]["test"]
        text[f"irae_{level}_p"] = format_p(payload["irae"][level]["p"])
        text[f"{level}_significance"] = _significance(payload[level]["p"], alpha)
        text[f"irae_{level}_significance"] = _significance(payload["irae"][level]["p"], alpha)
    text["n_terms"] = str(len(terms))
    irae_terms = counts.loc[(counts["kind"] == "term") & counts["irae"], "term"].tolist()
    text["irae_terms"] = ", ".join(t[0].lower() + t[1:] if not t.isupper() else t for t in irae_terms) or "none"
    text["n_terms_listed"] = str(int(listed.sum()))
    text["min_term_percent"] = f"{min_term_percent:g}%"
    term_rows = counts[counts["kind"] == "term"]
    if len(term_rows):
        top = term_rows.iloc[0]
        text["most_common_term"] = top["term"]
        text["most_common_term_percent"] = f"{top['any_grade_total_percent']:.1f}%"
    text["published"] = payload["published"]["statement"]
    text["agrees"] = payload["published"]["agrees"]
    payload["text"] = text
    return payload


def make_published_safety_table(summary: dict) -> pd.DataFrame:
    """Published statement on TRAE incidence beside the reproduced any-grade and grade >= 3 rates."""
    arms = [k for k in summary["any_grade"] if k not in ("p", "test", "statistic")]
    rows = []
    for level, label in (("any_grade", "Any TRAE"), ("grade3plus", "Grade ≥ 3 TRAE")):
        res = summary[level]
        ours = "; ".join(f"{arm} {format_n_pct(res[arm]['k'], res[arm]['n'])}" for arm in arms)
        ours += f"; P = {format_p(res['p'])} ({res['test']})"
        if level == "any_grade":
            statement = summary["published"]["statement"] or "not available"
            agrees = summary["published"]["agrees"]
        else:
            statement = "not reported"
            agrees = "(not compared)"
        rows.append([label, statement, ours, agrees])
    return pd.DataFrame(rows, columns=["Endpoint", "Published (abstract)", "Reproduced, n (%)", "Agrees"])
