"""Adverse events in words, tables and a figure, from :class:`helpers.analyses.safety.SafetyAnalysis`.

Everything a reader sees of the safety section is made here: the main table and its footnote
(:func:`make_adverse_event_table`, :func:`adverse_event_table_footnote`), the table of events of special
interest (:func:`make_special_interest_table`; only when the analysis plan defines them), the bar
chart (:func:`plot_adverse_events`), the results-file payload with the prose strings ``safety.text.*``
(:func:`safety_results`) and, with a published comparison, the table beside the publication's
statement (:func:`make_published_safety_table`).

Arms are named by their labels from the study configuration; results keys keep the arm code
(non-alphanumerics -> "_") and add role keys ``..._reference`` / ``..._experimental``.
"""
from __future__ import annotations

import math
import textwrap
from typing import Mapping

import pandas as pd

from helpers.report.formatting import results_key as arm_key
from helpers.analyses.safety import LEVELS, SafetyAnalysis
from helpers.report.formatting import format_count, format_n_pct, format_p, join_words
from helpers.report.response import (NOT_APPLICABLE, arm_labels, arm_palette, not_estimable_text,
                                     published_statements, rule_text, significance_text, test_label)
from helpers.stats.types import NotEstimable, TestResult

__all__ = [
    "ANY_EVENT", "SPECIAL_MARK", "LEVEL_TEXT", "special_any_label", "make_adverse_event_table",
    "adverse_event_table_footnote", "make_special_interest_table", "special_interest_footnote",
    "display_special_interest_table", "plot_adverse_events", "safety_results",
    "make_published_safety_table", "display_published_safety_table",
    "GRADE_ROW_LABELS", "safety_rule_text", "make_safety_summary_table", "safety_summary_footnote",
    "display_safety_summary_table", "grades_results",
]

#: Label of the summary row of patients with any event.
ANY_EVENT = "Any TRAE"
#: Marker appended to a term of special interest in the main table and the figure.
SPECIAL_MARK = "†"
LEVEL_TEXT = {"any_grade": "any grade", "grade3plus": "grade ≥ 3"}
#: Opacity of the bars of each level in the figure: light for any grade, full for grade >= 3 (drawn over it).
LEVEL_ALPHA = {"any_grade": 0.35, "grade3plus": 1.0}


def special_any_label(result: SafetyAnalysis) -> str:
    """Label of the summary row of events of special interest ("Any immune-related AE")."""
    label = result.special_interest.label if result.special_interest else ""
    return f"Any {label} AE" if label else "Any AE of special interest"


def _row_label(result: SafetyAnalysis, row: pd.Series, mark: bool = True) -> str:
    if row["kind"] == "any":
        return ANY_EVENT
    if row["kind"] == "special":
        return special_any_label(result)
    return str(row["term"]) + (f" {SPECIAL_MARK}" if mark and bool(row["special"]) else "")


def _count_cell(k, n: int) -> str:
    return NOT_APPLICABLE if k is None or k is pd.NA or (isinstance(k, float) and math.isnan(k)) else format_n_pct(int(k), n)


def _test_cell(result: SafetyAnalysis, row: pd.Series, level: str) -> str:
    test = result.test(row, level)
    if isinstance(test, NotEstimable):
        return not_estimable_text(test)
    return format_p(test.p)


def _display(result: SafetyAnalysis, rows: pd.DataFrame, study, mark: bool = True) -> pd.DataFrame:
    arms, n = list(result.arms), result.n
    labels = arm_labels(arms, study)
    out = pd.DataFrame({"Adverse event": [_row_label(result, r, mark) for _, r in rows.iterrows()]})
    for arm in arms:
        out[f"{labels[arm]} (N = {format_count(n[arm])}): any grade"] = [_count_cell(k, n[arm]) for k in rows[f"any_grade:{arm}"]]
        out[f"{labels[arm]}: grade ≥ 3"] = [_count_cell(k, n[arm]) for k in rows[f"grade3plus:{arm}"]]
    out["P, any grade"] = [_test_cell(result, r, "any_grade") for _, r in rows.iterrows()]
    out["P, grade ≥ 3"] = [_test_cell(result, r, "grade3plus") for _, r in rows.iterrows()]
    return out


# ----------------------------------------------------------------------------- tables
def make_adverse_event_table(result: SafetyAnalysis, study=None) -> pd.DataFrame:
    """Main table: the "Any TRAE" row (any grade and grade >= 3), then every term reaching the plan's
    ``min_term_percent`` (any grade, in at least one arm), by decreasing overall frequency.

    Cells are n (%) of all patients of the arm; terms of special interest carry :data:`SPECIAL_MARK`.
    """
    counts = result.counts
    rows = counts[(counts["kind"] == "any") | result.listed()]
    return _display(result, rows.reset_index(drop=True), study)


def safety_rule_text(rule: str) -> str:
    """The test of every row in words."""
    return "Fisher's exact test" if rule == "fisher" else rule_text(rule)


def _rule_sentence(result: SafetyAnalysis) -> str:
    return (f"P: two-sided; every row, summary and term alike, uses the same test: "
            f"{safety_rule_text(result.rule)}. When no patient (or every patient) had the event only one "
            f"table is possible and P = 1, as Fisher's exact test gives.")


def _grading(result: SafetyAnalysis) -> str:
    return f"CTCAE v{result.ctcae_version}" if result.ctcae_version else "recorded"


def adverse_event_table_footnote(result: SafetyAnalysis, study=None) -> str:
    """Footnote of :func:`make_adverse_event_table`, from the conventions the counts used."""
    mark = ""
    si = result.special_interest
    if si is not None and result.counts["special"].any():
        mark = f" {SPECIAL_MARK} {si.label or 'special-interest'} term"
        if si.arms is not None:
            labels = arm_labels(result.arms, study)
            counted = [labels[a] for a in result.arms if si.counted_in(a)]
            mark += (f", counted as {si.label or 'special-interest'} only in {_join(counted)}; in the other "
                     "arm it is an ordinary adverse event (see the table of events of special interest)")
        mark += "."
    return (f"n (%) of all patients of the arm (patients without any adverse event count as none); each "
            f"patient counted once per term at the worst {_grading(result)} grade; grade ≥ 3 includes "
            f"grades 4 and 5. Terms listed: any-grade frequency >= {result.min_term_percent:g}% in at "
            f"least one arm, by decreasing overall frequency.{mark} {_rule_sentence(result)}")


def make_special_interest_table(result: SafetyAnalysis, study=None) -> pd.DataFrame | None:
    """Events of special interest: their summary row, then every such term (no frequency threshold);
    counts in arms where they are not counted read "not applicable". None when the plan defines none."""
    if result.special_interest is None:
        return None
    counts = result.counts
    rows = counts[counts["special"].astype(bool)].reset_index(drop=True)
    si = result.special_interest
    for arm in result.arms:
        if not si.counted_in(arm):
            for level in LEVELS:
                rows[f"{level}:{arm}"] = pd.array([pd.NA] * len(rows), dtype="Int64")
    tested = [a for a in result.arms if si.counted_in(a)]
    if len(tested) < 2:
        for level in LEVELS:
            rows[f"test:{level}"] = None
    return _display(result, rows, study, mark=False)


def special_interest_footnote(result: SafetyAnalysis, study=None) -> str:
    """Footnote of :func:`make_special_interest_table`."""
    si = result.special_interest
    where = ""
    if si is not None and si.arms is not None:
        labels = arm_labels(result.arms, study)
        counted = [labels[a] for a in result.arms if si.counted_in(a)]
        where = (f" Counted only in {_join(counted)}; elsewhere not applicable"
                 + (" and the arms are not compared." if len(counted) < 2 else "."))
    return (f"n (%) of all patients of the arm; each patient counted once per term at the worst "
            f"{_grading(result)} grade; every term of special interest listed, whatever its frequency."
            f"{where} {_rule_sentence(result)}")


def display_special_interest_table(result: SafetyAnalysis, study=None):
    """The special-interest table as Markdown for a notebook cell; None (no output, so the embed is
    left out) when the plan defines no events of special interest."""
    from helpers.report.formatting import show_table

    table = make_special_interest_table(result, study)
    return None if table is None else show_table(table, footnote=special_interest_footnote(result, study))


# ----------------------------------------------------------------------------- figure
def plot_adverse_events(result: SafetyAnalysis, study=None, include_any: bool = True):
    """Grouped horizontal bar chart (seaborn): percent of the patients of each arm with each listed
    term, a light bar for any grade and a dark bar for grade >= 3, one colour per arm (by position, as
    the Kaplan-Meier figures). Terms as in :func:`make_adverse_event_table`, most frequent on top.
    Returns the Figure (detached from pyplot)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.patches import Patch

    from helpers.report.figures import COLUMN_WIDTH_IN, arm_hatch, fit_to_width, style_context

    arms, n = list(result.arms), result.n
    labels = arm_labels(arms, study)
    palette = arm_palette(arms)
    mask = result.listed()
    if include_any:
        mask = mask | (result.counts["kind"] == "any")
    rows = result.counts[mask].reset_index(drop=True)
    names = [textwrap.fill(_row_label(result, r), 34) for _, r in rows.iterrows()]
    long = []
    for name, (_, r) in zip(names, rows.iterrows()):
        for arm in arms:
            for level in LEVELS:
                k = r[f"{level}:{arm}"]
                long.append({"term": name, "arm": labels[arm], "level": level,
                             "percent": 100.0 * float(k) / n[arm] if n[arm] and not pd.isna(k) else 0.0})
    data = pd.DataFrame(long, columns=["term", "arm", "level", "percent"])
    hue_order = [labels[a] for a in arms]
    colours = [palette[a] for a in arms]
    with style_context():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN * 1.9, 1.0 + 0.3 * max(len(rows), 1)))
        for level, alpha in LEVEL_ALPHA.items():
            sns.barplot(data=data[data["level"] == level], y="term", x="percent", hue="arm", order=names,
                        hue_order=hue_order, palette=colours, orient="h", errorbar=None, ax=ax,
                        alpha=alpha, saturation=1.0, linewidth=0, legend=False)
        # containers: any grade per arm, then grade >= 3 per arm (arm order); hatch the experimental arm
        for k, container in enumerate(ax.containers):
            for bar in container:
                bar.set_hatch(arm_hatch(k % len(arms)))
                bar.set_edgecolor("white")
        top = float(data["percent"].max()) if len(data) else 0.0
        ax.set_xlim(0, max(10.0, 10 * math.ceil(top / 10)))
        ax.set_xlabel("Patients of the arm with the adverse event (%)")
        ax.set_ylabel("")
        ax.tick_params(axis="y", length=0)
        # swatches drawn like the bars: each arm's colour and hatching, light for any grade, full for
        # grade >= 3 (one legend column per arm)
        handles = [Patch(facecolor=palette[a], alpha=alpha, edgecolor="white", linewidth=0, hatch=arm_hatch(i),
                         label=f"{labels[a]} (n = {format_count(n[a])}), {LEVEL_TEXT[level]}")
                   for i, a in enumerate(arms) for level, alpha in LEVEL_ALPHA.items()]
        ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
        sns.despine(ax=ax)
        fit_to_width(fig)   # the term labels inside the figure: it prints at the width set here
    plt.close(fig)
    return fig


# ----------------------------------------------------------------------------- results payload
def _join(items: list) -> str:
    return join_words([str(i) for i in items])


def _lower_first(term: str) -> str:
    return term if term[:2].isupper() else term[:1].lower() + term[1:]


def _level_payload(result: SafetyAnalysis, row: pd.Series, level: str) -> dict:
    n = result.n
    out: dict = {}
    for arm in result.arms:
        k = row[f"{level}:{arm}"]
        applicable = not pd.isna(k)
        out[arm] = {"k": int(k) if applicable else None, "n": n[arm],
                    "rate": int(k) / n[arm] if applicable and n[arm] else None,
                    "percent": 100.0 * int(k) / n[arm] if applicable and n[arm] else None}
    test = result.test(row, level)
    ok = isinstance(test, TestResult)
    out["p"] = test.p if ok else None
    out["test"] = test_label(test)
    out["test_key"] = test.test if ok else None
    out["statistic"] = test.statistic if ok else None
    return out


def _significance(result: SafetyAnalysis, row: pd.Series, level: str, alpha: float) -> str:
    test = result.test(row, level)
    return significance_text(test.p, alpha) if isinstance(test, TestResult) else NOT_APPLICABLE


def safety_results(result: SafetyAnalysis, study=None, published: Mapping[str, str] | None = None,
                   alpha: float = 0.05) -> dict:
    """Payload of the ``safety`` section of results.json.

    Keys: ``any_grade`` and ``grade3plus`` ({arm: {k, n, rate, percent}, p, test, statistic}: patients
    with at least one event / at least one grade >= 3 event), ``terms`` (every term: {term,
    special_interest, irae, listed, any_grade, grade3plus}), ``rule``, ``min_term_percent``,
    ``n_terms``, ``n_terms_listed``, ``ctcae_version``, ``arms``; with events of special interest
    ``special_interest`` ({label, terms, arms, any_grade, grade3plus}; k None where not applicable) and
    its former name ``irae``; with a published comparison ``published``; and ``text`` (ready-formatted
    strings for prose, per arm code and per role ``_reference`` / ``_experimental``).
    """
    arms = list(result.arms)
    n = result.n
    labels = arm_labels(arms, study)
    roles = dict(zip(arms, ("reference", "experimental")))
    any_row = result.summary_row("any")
    special_row = result.summary_row("special")
    listed = result.listed()
    term_rows = result.term_rows()
    terms = [{"term": r["term"], "special_interest": bool(r["special"]), "irae": bool(r["special"]),
              "listed": bool(listed.loc[i]),
              "any_grade": _level_payload(result, r, "any_grade"),
              "grade3plus": _level_payload(result, r, "grade3plus")}
             for i, r in term_rows.iterrows()]
    payload: dict = {
        "any_grade": _level_payload(result, any_row, "any_grade"),
        "grade3plus": _level_payload(result, any_row, "grade3plus"),
        "terms": terms, "rule": result.rule, "min_term_percent": result.min_term_percent,
        "n_terms": len(terms), "n_terms_listed": int(listed.sum()), "ctcae_version": result.ctcae_version,
        "arms": {"reference": arms[0], "experimental": arms[1] if len(arms) > 1 else None},
    }
    text: dict[str, str] = {}

    def per_arm(name: str, arm: str, value: str) -> None:
        text[f"{name}_{arm_key(arm)}"] = value
        if arm in roles:
            text[f"{name}_{roles[arm]}"] = value

    for level in LEVELS:
        for arm in arms:
            per_arm(level, arm, _count_cell(any_row[f"{level}:{arm}"], n[arm]))
        text[f"{level}_p"] = _test_cell(result, any_row, level)
        text[f"{level}_test"] = test_label(result.test(any_row, level))
        text[f"{level}_significance"] = _significance(result, any_row, level, alpha)
    for arm in arms:
        per_arm("n", arm, format_count(n[arm]))
    text["n_terms"] = format_count(len(terms))
    text["n_terms_listed"] = format_count(int(listed.sum()))
    text["min_term_percent"] = f"{result.min_term_percent:g}%"
    cite = " [@ctcae5]" if str(result.ctcae_version or "").startswith("5") else ""   # the version in references.bib
    text["grading"] = (f"version {result.ctcae_version} of the Common Terminology Criteria for Adverse Events{cite}"
                       if result.ctcae_version else "the grades recorded in the data")
    text["test_rule"] = safety_rule_text(result.rule)
    if len(term_rows):
        top = term_rows.iloc[0]
        text["most_common_term"] = str(top["term"])
        text["most_common_term_percent"] = f"{top['any_grade_total_percent']:.1f}%"
    else:
        text["most_common_term"] = "none"
        text["most_common_term_percent"] = "0.0%"
    text["terms_sentence"] = _terms_sentence(result, term_rows, listed)

    si = result.special_interest
    if si is not None and special_row is not None:
        special_terms = term_rows.loc[term_rows["special"].astype(bool), "term"].tolist()
        block = {"label": si.label, "terms": special_terms,
                 "arms": list(si.arms) if si.arms is not None else arms,
                 "any_grade": _level_payload(result, special_row, "any_grade"),
                 "grade3plus": _level_payload(result, special_row, "grade3plus")}
        payload["special_interest"] = block
        payload["irae"] = {"any_grade": block["any_grade"], "grade3plus": block["grade3plus"]}
        recorded = ", ".join(_lower_first(t) for t in special_terms) or "none"
        for prefix in ("special", "irae"):
            for level in LEVELS:
                for arm in arms:
                    per_arm(f"{prefix}_{level}", arm, _count_cell(special_row[f"{level}:{arm}"], n[arm]))
                text[f"{prefix}_{level}_p"] = _test_cell(result, special_row, level)
                text[f"{prefix}_{level}_significance"] = _significance(result, special_row, level, alpha)
            text[f"{prefix}_terms"] = recorded
        text["special_label"] = si.label
    text["special_interest_sentence"] = _special_sentence(result, special_row, labels)
    text["special_interest_method"] = _special_method(result, labels)

    if published is None:
        statements = published_statements(study)
        published = {"trae": statements["trae"]} if statements is not None else None
    if published is not None:
        p_any = payload["any_grade"]["p"]
        differs = p_any is not None and p_any < alpha
        payload["published"] = {"statement": published.get("trae", ""), "alpha": alpha,
                                "significant": bool(differs),
                                "agrees": "no: incidence differs significantly" if differs else "yes"}
        text["published"] = payload["published"]["statement"]
        text["agrees"] = payload["published"]["agrees"]
    if result.grades is not None:
        grades = grades_results(result, study)
        payload["grades"] = grades
        payload["actions"] = grades.pop("actions")
        text.update(grades.pop("text"))
    payload["text"] = text
    return payload


def _terms_sentence(result: SafetyAnalysis, term_rows: pd.DataFrame, listed: pd.Series) -> str:
    """"Of 14 distinct terms, 13 reached the listing threshold; the most frequent was Anaemia, in 76.2%
    of all patients." (or that no adverse event was recorded)."""
    if not len(term_rows):
        return "No adverse event was recorded."
    top = term_rows.iloc[0]
    return (f"Of {format_count(len(term_rows))} distinct term{'s' if len(term_rows) != 1 else ''}, "
            f"{format_count(int(listed.sum()))} "
            f"reached the listing threshold of {result.min_term_percent:g}% in at least one arm; the most "
            f"frequent was {_lower_first(str(top['term']))}, in {top['any_grade_total_percent']:.1f}% of "
            f"all patients.")


def _special_method(result: SafetyAnalysis, labels: Mapping[str, str]) -> str:
    """Methods sentence on the events of special interest, from the plan's definition."""
    si = result.special_interest
    if si is None:
        return "The analysis plan defines no adverse events of special interest."
    parts = []
    if si.terms:
        parts.append("the terms " + _join(list(si.terms)))
    if si.prefixes:
        parts.append("the sub-terms of " + _join(list(si.prefixes)))
    if si.contains:
        parts.append("any term containing " + _join([f'"{c}"' for c in si.contains]))
    what = "; ".join(parts) if parts else "no terms"
    sentence = (f"The analysis plan defines {si.label or 'special-interest'} adverse events as {what} "
                f"(matched without regard to case).")
    if si.arms is not None:
        counted = [labels[a] for a in result.arms if si.counted_in(a)]
        other = [labels[a] for a in result.arms if not si.counted_in(a)]
        sentence += (f" They are counted only in {_join(counted)}; in {_join(other)} they are not applicable"
                     + (", so the arms are not compared." if len(counted) < 2 else "."))
    sentence += " Every such term is listed, whatever its frequency."
    return sentence


def _special_sentence(result: SafetyAnalysis, row: pd.Series | None, labels: Mapping[str, str]) -> str:
    """Results sentence on the events of special interest ("" when the plan defines none)."""
    si = result.special_interest
    if si is None or row is None:
        return ""
    terms = result.term_rows()
    recorded = terms.loc[terms["special"].astype(bool), "term"].tolist()
    label = si.label or "special-interest"
    if not recorded:
        return f"No {label} adverse event was recorded."
    counted = [a for a in result.arms if si.counted_in(a)]
    counts = _join([f"{_count_cell(row[f'any_grade:{a}'], result.n[a])} with {labels[a]}" for a in counted])
    severe = _join([f"{_count_cell(row[f'grade3plus:{a}'], result.n[a])}" for a in counted])
    sentence = (f"The {label} terms recorded were {_join([_lower_first(t) for t in recorded])}. The number "
                f"(%) of patients with at least one such event was {counts}, and at grade 3 or higher {severe}")
    if len(counted) >= 2:
        sentence += (f" (P = {_test_cell(result, row, 'any_grade')} and "
                     f"{_test_cell(result, row, 'grade3plus')})")
    return sentence + "."


# ----------------------------------------------------------------------------- published comparison
def make_published_safety_table(result: SafetyAnalysis, study=None,
                                published: Mapping[str, str] | None = None) -> pd.DataFrame | None:
    """The publication's statement on adverse-event incidence beside the reproduced any-grade and
    grade >= 3 rates; None without a published comparison."""
    payload = safety_results(result, study, published)
    if "published" not in payload:
        return None
    labels = arm_labels(result.arms, study)
    rows = []
    for level, label in (("any_grade", ANY_EVENT), ("grade3plus", "Grade ≥ 3 TRAE")):
        res = payload[level]
        ours = "; ".join(f"{labels[arm]} {_count_cell(res[arm]['k'], res[arm]['n'])}" for arm in result.arms)
        ours += f"; P = {format_p(res['p'])} ({res['test']})"
        if level == "any_grade":
            statement = payload["published"]["statement"] or "not available"
            agrees = payload["published"]["agrees"]
        else:
            statement, agrees = "not reported", "(not compared)"
        rows.append([label, statement, ours, agrees])
    return pd.DataFrame(rows, columns=["Endpoint", "Published (abstract)", "Reproduced, n (%)", "Agrees"])


def display_published_safety_table(result: SafetyAnalysis, study=None):
    """The published-comparison table as Markdown for a notebook cell; None (no output) without one."""
    from helpers.report.formatting import show_table

    table = make_published_safety_table(result, study)
    return None if table is None else show_table(table, align="llll")


# ----------------------------------------------------------------------------- summary by highest grade
#: Row labels of the safety summary (kinds of :func:`helpers.analyses.safety.summarise_grades`).
GRADE_ROW_LABELS = {
    "any_grade": "Any adverse event",
    "grade3plus": "Any adverse event of grade 3 or higher",
    "grade_3": "Highest grade 3",
    "grade_4": "Highest grade 4",
    "grade_5": "Grade 5 (treatment-related death)",
    "action_discontinued": "Adverse event leading to discontinuation",
    "action_dose_reduced": "Adverse event leading to dose reduction",
    "action_interrupted": "Adverse event leading to interruption",
}


def _grade_test(row: pd.Series) -> TestResult | NotEstimable:
    test = row["test"]
    if test is None or (isinstance(test, float) and math.isnan(test)):
        return NotEstimable("test", "not_applicable")
    if test == "not_estimable":
        return NotEstimable("test", "empty_arm")
    stat = row["statistic"]
    return TestResult(statistic=None if stat is None or pd.isna(stat) else float(stat),
                      df=None if row["df"] is None or pd.isna(row["df"]) else row["df"],
                      p=None if row["p"] is None or pd.isna(row["p"]) else float(row["p"]), test=str(test))


def make_safety_summary_table(result: SafetyAnalysis, study=None) -> pd.DataFrame | None:
    """Safety summary (AET01-like): patients with any event, with grade >= 3, by highest grade 3, 4
    and 5 (treatment-related deaths) and, when the data record the action taken, with events leading to
    discontinuation, dose reduction or interruption; n (%) per arm (N in the header) and P."""
    grades = result.grades
    if grades is None:
        return None
    arms, n = list(result.arms), result.n
    labels = arm_labels(arms, study)
    out = pd.DataFrame({"": [GRADE_ROW_LABELS.get(k, k) for k in grades["kind"]]})
    for arm in arms:
        out[f"{labels[arm]} (N = {format_count(n[arm])})"] = [format_n_pct(int(k), n[arm]) for k in grades[f"k:{arm}"]]
    out["P"] = [(format_p(t.p) if isinstance(t, TestResult) else not_estimable_text(t))
                for t in (_grade_test(r) for _, r in grades.iterrows())]
    return out


def safety_summary_footnote(result: SafetyAnalysis, study=None) -> str:
    actions = bool(result.grades is not None and result.grades.attrs.get("has_actions"))
    return (f"n (%) of all patients of the arm. Highest grade: each patient counted once, at the worst "
            f"{_grading(result)} grade over all terms; grade 5 (fatal) events are the treatment-related "
            f"deaths." + (" Action: patients with at least one event after which the treatment was "
                          "discontinued, reduced in dose or interrupted, as recorded." if actions else "")
            + f" {_rule_sentence(result)}")


def display_safety_summary_table(result: SafetyAnalysis, study=None):
    """The safety summary as Markdown for a notebook cell (None for results without it)."""
    from helpers.report.formatting import show_table

    table = make_safety_summary_table(result, study)
    if table is None:
        return None
    return show_table(table, align="l" + "r" * (len(table.columns) - 1),
                      footnote=safety_summary_footnote(result, study))


def grades_results(result: SafetyAnalysis, study=None) -> dict:
    """``safety.grades`` ({"3"|"4"|"5": {arm: {k, n, percent}, p, test}}), ``actions`` (the same per
    action, {} without the column) and prose strings (``text``)."""
    grades = result.grades
    arms, n = list(result.arms), result.n
    roles = dict(zip(arms, ("reference", "experimental")))
    out: dict = {}
    actions: dict = {}
    text: dict[str, str] = {}
    for _, row in grades.iterrows():
        kind = row["kind"]
        test = _grade_test(row)
        entry = {arm: {"k": int(row[f"k:{arm}"]), "n": n[arm],
                       "percent": 100.0 * int(row[f"k:{arm}"]) / n[arm] if n[arm] else None} for arm in arms}
        entry.update({"p": test.p if isinstance(test, TestResult) else None, "test": test_label(test)})
        if kind.startswith("grade_"):
            out[kind.removeprefix("grade_")] = entry
        elif kind.startswith("action_"):
            actions[kind.removeprefix("action_")] = entry
        else:
            continue
        name = kind
        for arm in arms:
            value = format_n_pct(int(row[f"k:{arm}"]), n[arm])
            text[f"{name}_{arm_key(arm)}"] = value
            if arm in roles:
                text[f"{name}_{roles[arm]}"] = value
        text[f"{name}_p"] = format_p(test.p) if isinstance(test, TestResult) else not_estimable_text(test)
    out["actions"] = actions
    deaths = [int(k) for k in grades.loc[grades["kind"] == "grade_5", [f"k:{a}" for a in arms]].iloc[0]]
    text["grades_sentence"] = _grades_sentence(result, study)
    text["actions_sentence"] = _actions_sentence(result, study)
    out["treatment_related_deaths"] = dict(zip(arms, deaths))
    out["text"] = text
    return out


def _grades_sentence(result: SafetyAnalysis, study=None) -> str:
    g = result.grades.set_index("kind")
    labels = arm_labels(result.arms, study)

    def cells(kind):
        return _join([f"{format_n_pct(int(g.loc[kind, f'k:{a}']), result.n[a])} with {labels[a]}"
                      for a in result.arms])

    deaths = sum(int(g.loc["grade_5", f"k:{a}"]) for a in result.arms)
    out = (f"By highest grade, grade 3 was the worst event of {cells('grade_3')}, and grade 4 of "
           f"{cells('grade_4')}. ")
    out += ("No treatment-related death (grade 5 event) was recorded." if deaths == 0 else
            f"Treatment-related deaths (grade 5 events): {cells('grade_5')}.")
    return out


def _actions_sentence(result: SafetyAnalysis, study=None) -> str:
    if not result.grades.attrs.get("has_actions"):
        return ("The data do not record the action taken with the treatment, so discontinuation and "
                "dose-reduction rates are not reported.")
    g = result.grades.set_index("kind")
    labels = arm_labels(result.arms, study)
    parts = []
    for action, words in (("discontinued", "discontinuation"), ("dose_reduced", "dose reduction"),
                          ("interrupted", "interruption")):
        kind = f"action_{action}"
        cells = _join([f"{format_n_pct(int(g.loc[kind, f'k:{a}']), result.n[a])} with {labels[a]}"
                       for a in result.arms])
        parts.append(f"to {words} in {cells}")
    return "Adverse events led " + "; ".join(parts) + "."
