"""Table 1 in words and Markdown: the display table, its note, the ``baseline`` results and prose strings.

Input: the typed :class:`helpers.analyses.baseline.BaselineTable` (and, in the replication part
only, a :class:`helpers.analyses.baseline.PublishedComparison`). Output: DataFrames shown as
Markdown pipe tables, the table note, and the ``baseline`` section of the results file with its
ready-formatted ``text`` strings (``{{< res baseline.text.* >}}`` in the prose).
"""
from __future__ import annotations

import math
from typing import Any, Optional

import pandas as pd

from helpers.analyses.baseline import (OVERALL, UNKNOWN, BaselineRow, BaselineTable, PublishedComparison)
from helpers.report.formatting import (count_of, format_count, format_p, in_sentence, number_words, plural,
                                      results_key, show_table, without_unit)
from helpers.report.formatting import join_words as _join
from helpers.stats.types import NotEstimable, TestResult

__all__ = [
    "TEST_LABELS",
    "RULE_DESCRIPTIONS",
    "INDENT",
    "baseline_frame",
    "baseline_note",
    "show_baseline",
    "published_counts_frame",
    "published_tests_frame",
    "corrections_note",
    "show_published_counts",
    "show_published_tests",
    "baseline_results",
]

#: Indent of level rows: non-breaking spaces survive Markdown pipe tables in every output format.
INDENT = "\u00a0" * 4
SMD_THRESHOLD = 0.1  # Austin 2009: |SMD| < 0.1 read as negligible imbalance

#: Test names in words (TestResult.test -> words).
TEST_LABELS = {
    "pearson": "Pearson chi-square",
    "yates": "Yates-corrected chi-square",
    "fisher": "Fisher's exact test",
    "fisher_freeman_halton": "Fisher-Freeman-Halton exact test",
    "fisher_freeman_halton_mc": ("Fisher-Freeman-Halton exact test, P by Monte Carlo from 100,000 seeded "
                                 "random tables with the observed margins (the table is too large to "
                                 "enumerate, and the "
                                 "smallest P this gives is 0.00001)"),
    "fisher_mc": ("Fisher's exact test, P by Monte Carlo from 100,000 seeded random tables with the "
                  "observed margins"),
    "wilcoxon": "Wilcoxon rank-sum test",
    "kruskal": "Kruskal-Wallis test",
}

#: The test-selection rules in words (the rule's machine name -> words).
RULE_DESCRIPTIONS = {
    "cochran": (
        "Cochran's criteria: 2 × 2 tables by Pearson chi-square when every expected count is ≥ 5, "
        "Yates-corrected chi-square when the smallest expected count is 1 to < 5, Fisher's exact test "
        "when it is < 1 (or n < 40); larger tables by the Fisher-Freeman-Halton exact test when any "
        "expected count is < 5, else Pearson chi-square"
    ),
    "modern": (
        "Fisher's exact test (exact for any r x c table) whenever any expected count is < 5, "
        "otherwise Pearson chi-square without continuity correction"
    ),
}

#: What the "Statistic" column holds, per test.
STATISTIC_MEANING = {
    "pearson": "chi-square",
    "yates": "chi-square",
    "fisher_freeman_halton": "the Fisher-Freeman-Halton statistic -2 ln(γ P)",
    "fisher_freeman_halton_mc": "the Fisher-Freeman-Halton statistic -2 ln(γ P)",
    "fisher": "none (-)",
    "wilcoxon": "W (Mann-Whitney U of the first arm)",
    "kruskal": "Kruskal-Wallis chi-square",
}

#: Why a test or SMD is missing, in words (NotEstimable.reason -> words).
REASONS = {
    "no_data_in_arm": "no data in one arm",
    "fewer_than_two_values": "fewer than two values in one arm",
    "single_level": "only one level observed",
    "zero_variance": "no variation within the arms",
    "singular": "the level proportions give no defined difference",
    "single_arm": "only one arm",
}

NO_DATA = "no data"


# ------------------------------------------------------------------------------------------
# cells


#: An infinite SMD (a binary covariate perfectly separated by arm: no patient of one arm has the level
#: that every patient of the other has), in the table and the prose
INFINITE = "∞"


def _fmt(value: Optional[float], digits: int = 3, missing: str = "-") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    if isinstance(value, float) and math.isinf(value):
        return INFINITE if value > 0 else "-" + INFINITE
    return f"{value:.{digits}f}"


def _p(p: Optional[float]) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    return format_p(p, 3)


def _n_pct(n: int, denominator: int, digits: int) -> str:
    from helpers.report.formatting import format_n_pct

    return format_n_pct(n, denominator, digits)


def _header(table: BaselineTable, group: str) -> str:
    name = OVERALL if group == OVERALL else table.arm_labels.get(group, group)
    return f"{name} (n = {format_count(table.n[group])})"


def _label(row: BaselineRow) -> str:
    return f"{row.label} ({row.spec.unit})" if row.spec.unit and f"({row.spec.unit})" not in row.label else row.label


def _prose_label(row: BaselineRow) -> str:
    """A characteristic inside a sentence: lower case unless an acronym, without its unit in parentheses
    ("Age (years)" -> "age"), which would nest inside the sentence's own parentheses."""
    return in_sentence(without_unit(row.label))


def _test_letters(table: BaselineTable) -> dict[str, str]:
    letters: dict[str, str] = {}
    for r in table.rows:
        if isinstance(r.test, TestResult) and r.test.test not in letters:
            letters[r.test.test] = "abcdefghij"[len(letters)]
    return letters


def _continuous_cell(s, how: str, digits: int) -> str:
    if s.n == 0:
        return NO_DATA
    if how == "mean":
        return f"{s.mean:.{digits}f} ({_fmt(s.sd, digits)})"
    return f"{s.median:.{digits}f} [{s.q1:.{digits}f}, {s.q3:.{digits}f}]"


def baseline_frame(table: BaselineTable, digits: int = 1) -> pd.DataFrame:
    """Table 1 as a DataFrame of text cells.

    Columns: Characteristic, Overall and one per arm ("<label> (n = N)"; cells n (%) or median
    [IQR] / mean (SD)), Statistic (3 decimals; "-" without statistic), P (rounded to 3 decimals,
    "<0.001"), Test (footnote letter), Missing, SMD. Variable rows carry the test; indented level
    rows carry the counts; an "Unknown" row counts missing values (percent of all patients).
    """
    groups = table.groups
    headers = {g: _header(table, g) for g in groups}
    letters = _test_letters(table)
    out = []
    blank = {k: "" for k in ("Statistic", "P", "Test", "Missing", "SMD")}
    for r in table.rows:
        test = r.test if isinstance(r.test, TestResult) else None
        stat_digits = 1 if test is not None and test.test in ("wilcoxon", "kruskal") else 3
        common = {"Statistic": _fmt(None if test is None else test.statistic, stat_digits),
                  "P": _p(None if test is None else test.p),
                  "Test": letters.get(test.test, "-") if test is not None else "-",
                  "Missing": format_count(int(r.missing[OVERALL])), "SMD": _fmt(r.smd_value, 3)}
        if r.kind == "categorical":
            out.append({"Characteristic": _label(r), **{headers[g]: "" for g in groups}, **common})
            for lv in r.levels:
                cells = {headers[g]: (NO_DATA if lv.denominator[g] == 0 and g != OVERALL and table.n[g]
                                      else _n_pct(lv.n[g], lv.denominator[g], digits)) for g in groups}
                out.append({"Characteristic": f"{INDENT}{lv.label}", **cells, **blank})
        else:
            hows = ["median", "mean"] if table.continuous_summary == "both" else [table.continuous_summary]
            names = {"median": "median [IQR]", "mean": "mean (SD)"}
            if len(hows) == 1:
                out.append({"Characteristic": f"{_label(r)}, {names[hows[0]]}",
                            **{headers[g]: _continuous_cell(r.summaries[g], hows[0], digits) for g in groups},
                            **common})
            else:
                out.append({"Characteristic": _label(r), **{headers[g]: "" for g in groups}, **common})
                for how in ("mean", "median"):
                    out.append({"Characteristic": f"{INDENT}{names[how][0].upper()}{names[how][1:]}",
                                **{headers[g]: _continuous_cell(r.summaries[g], how, digits) for g in groups},
                                **blank})
        if r.unknown is not None:
            out.append({"Characteristic": f"{INDENT}{UNKNOWN}",
                        **{headers[g]: _n_pct(r.unknown.n[g], r.unknown.denominator[g], digits) for g in groups},
                        **blank})
    return pd.DataFrame(out, columns=["Characteristic", *headers.values(), "Statistic", "P", "Test", "Missing",
                                      "SMD"])


def _not_computed(table: BaselineTable) -> list[str]:
    """One sentence per variable without a test or SMD, naming why."""
    out = []
    for r in table.rows:
        missing = [w for w, v in (("test", r.test), ("SMD", r.smd)) if isinstance(v, NotEstimable)]
        if not missing or (missing == ["test"] and r.test.reason == "single_level"):
            continue
        reason = r.test.reason if isinstance(r.test, NotEstimable) else r.smd.reason
        arms = [table.arm_labels.get(a, a) for a in table.arms
                if (r.kind == "categorical" and r.levels and sum(lv.n[a] for lv in r.levels) == 0)
                or (r.kind != "categorical" and r.summaries[a].n < 2)]
        where = f" ({', '.join(arms)})" if arms else ""
        out.append(f"{r.label}: no {' and no '.join(missing)}, {REASONS.get(reason, reason.replace('_', ' '))}"
                   f"{where}")
    return out


def baseline_note(table: BaselineTable) -> str:
    """The table's note: test letters, what the Statistic column holds, percentages, SMD, gaps."""
    letters = _test_letters(table)
    tests = "; ".join(f"^{letter}^ {TEST_LABELS.get(name, name)}" for name, letter in letters.items())
    meaning = "; ".join(f"{STATISTIC_MEANING[name]} for ^{letter}^"
                        for name, letter in letters.items() if name in STATISTIC_MEANING)
    summaries = {"median": "median [IQR]", "mean": "mean (SD)",
                 "both": "mean (SD) and median [IQR]"}[table.continuous_summary]
    has_unknown = any(r.unknown is not None for r in table.rows)
    has_continuous = any(r.kind != "categorical" for r in table.rows)
    text = (f"Values are n (%), percentages of the known values"
            + (f", or {summaries}" if has_continuous else "") + ". "
            + ("Unknown: patients with the value missing, percent of all patients of the column. "
               if has_unknown else "")
            + (f"Tests: {tests}. " if tests else "")
            + f"Test selection: {RULE_DESCRIPTIONS[table.rule]}"
            + ("; continuous variables by the "
               + ("Wilcoxon rank-sum test" if len(table.arms) == 2 else "Kruskal-Wallis test")
               if has_continuous else "") + ". "
            + (f"Statistic: {meaning}. " if meaning else "")
            + "P two-sided, rounded to three decimals. Missing: patients with the value missing. "
            + "SMD: standardised mean difference between arms (categorical: Yang and Dalton multinomial SMD; "
            + "continuous: difference in means over the pooled SD); "
            + f"|SMD| < {SMD_THRESHOLD} is conventionally read as negligible imbalance.")
    gaps = _not_computed(table)
    if gaps:
        text += " Not computed: " + "; ".join(gaps) + "."
    return text


def show_baseline(table: BaselineTable, digits: int = 1):
    """Table 1 as Markdown with its note (one call in notebook 02)."""
    return show_table(baseline_frame(table, digits), footnote=baseline_note(table))


# ------------------------------------------------------------------------------------------
# replication part


def published_counts_frame(comparison: PublishedComparison) -> pd.DataFrame:
    """Reproduced and published counts side by side, one row per published level.

    Columns: Characteristic, Level, "<group> reproduced" / "<group> published" per published
    group, Mismatch ("Yes"/"No"; "n/a" where no numbers are published), Differs in, Note (printed
    value of a corrected cell).
    """
    c = comparison.counts
    out = []
    for (label, level), cells in c.groupby(["label", "level"], sort=False):
        rec: dict[str, Any] = {"Characteristic": label, "Level": level}
        by_group = cells.set_index("group")
        for g in comparison.groups:
            rec[f"{g} reproduced"] = by_group["reproduced"].get(g)
            rec[f"{g} published"] = by_group["published"].get(g)
        if not cells["compared"].any():
            rec["Mismatch"], rec["Differs in"], rec["Note"] = "n/a", "", "numbers not published"
        else:
            differs = [g for g, r in by_group.iterrows() if r["reproduced"] != r["published"]]
            rec["Mismatch"] = "Yes" if differs else "No"
            rec["Differs in"] = ", ".join(differs)
            rec["Note"] = "; ".join(f"{g}: printed {_count_cell(r['printed'])}, corrected to {_count_cell(r['published'])}"
                                    for g, r in by_group.iterrows() if r["corrected"])
        out.append(rec)
    frame = pd.DataFrame(out, dtype=object)
    if "Differs in" in frame and (frame["Differs in"].fillna("") == "").all():
        frame = frame.drop(columns="Differs in")      # no level differs: an empty column says nothing
    return frame


def published_tests_frame(comparison: PublishedComparison) -> pd.DataFrame:
    """Reproduced and published statistic and P per variable, at three decimals."""
    out = []
    for _, t in comparison.tests.iterrows():
        test = t["test"] if isinstance(t["test"], TestResult) else None
        out.append({"Characteristic": t["label"],
                    "Test": "" if test is None else TEST_LABELS.get(test.test, test.test),
                    "Statistic reproduced": _fmt(None if test is None else test.statistic, 3),
                    "Statistic published": _fmt(t["published_statistic"], 3),
                    "P reproduced": _p(None if test is None else test.p),
                    "P published": _p(t["published_p"]),
                    "Mismatch": ("n/a" if not t["compared"] else
                                 "No" if t["statistic_matches"] and t["p_matches"] else "Yes")})
    return pd.DataFrame(out)


def corrections_note(comparison: PublishedComparison) -> str:
    """The corrections applied to printed cells, in the words of the data."""
    return " ".join(f"{c.variable}, {c.column}: {c.reason}" for c in comparison.corrections if c.reason)


def _count_cell(value: Any) -> Any:
    """A published or reproduced count of the comparison table with its thousands separator (for display;
    :func:`published_counts_frame` keeps the numbers); a missing value stays None (an empty cell)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return format_count(value)


def _no_comparison():
    from IPython.display import Markdown

    return Markdown("No published values to compare with.")


def show_published_counts(comparison: Optional[PublishedComparison]):
    """Published vs reproduced counts as Markdown (replication part; a one-line note without a comparison)."""
    if comparison is None:
        return _no_comparison()
    frame = published_counts_frame(comparison)
    counts = [c for c in frame.columns if c.endswith((" reproduced", " published"))]
    frame[counts] = frame[counts].apply(lambda column: column.map(_count_cell)).astype(object)
    return show_table(frame, footnote=corrections_note(comparison) or None)


def show_published_tests(comparison: Optional[PublishedComparison]):
    """Published vs reproduced tests as Markdown (replication part; a one-line note without a comparison)."""
    if comparison is None:
        return _no_comparison()
    return show_table(published_tests_frame(comparison))


# ------------------------------------------------------------------------------------------
# results file


def _num(x: Any) -> Any:
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return x
    if math.isnan(f) or math.isinf(f):
        return None
    return int(x) if isinstance(x, int) or (hasattr(x, "dtype") and "int" in str(x.dtype)) else f


def _rows_sentence(table: BaselineTable) -> str:
    parts = []
    for r in table.rows:
        if r.kind == "categorical" and r.levels:
            parts.append(f"{r.label} ({' / '.join(lv.label for lv in r.levels)})")
        else:
            parts.append(_label(r))
    return _join(parts)


def _row_result(r: BaselineRow, published: set) -> dict:
    test = r.test if isinstance(r.test, TestResult) else None
    rec: dict[str, Any] = {
        "label": r.label, "kind": r.kind,
        "test": TEST_LABELS.get(test.test, test.test) if test else "no test",
        "test_key": test.test if test else "none",
        "statistic": _num(test.statistic) if test else None,
        "df": _num(test.df) if test else None,
        "p": _num(test.p) if test else None,
        "p_text": _p(test.p if test else None),
        "min_expected": _num(r.min_expected),
        "missing": int(r.missing[OVERALL]),
        "missing_by_arm": {k: int(v) for k, v in r.missing.items() if k != OVERALL},
        "smd": _num(r.smd_value),
        "smd_text": _fmt(r.smd_value, 3),
        "not_computed": {w: v.reason for w, v in (("test", r.test), ("smd", r.smd)) if isinstance(v, NotEstimable)},
        "published_row": r.label in published,
    }
    if r.kind == "categorical":
        rec["levels"] = {lv.code: {g: {"n": int(lv.n[g]), "percent": _num(lv.percent(g))} for g in lv.n}
                         for lv in r.levels}
        rec["level_labels"] = {lv.code: lv.label for lv in r.levels}
    else:
        rec["summary"] = {g: {k: _num(getattr(s, k)) for k in ("n", "mean", "sd", "median", "q1", "q3", "min", "max")}
                          for g, s in r.summaries.items()}
    if r.unknown is not None:
        rec["unknown"] = {g: int(n) for g, n in r.unknown.n.items()}
    return rec


def baseline_results(table: BaselineTable, comparison: Optional[PublishedComparison] = None,
                     randomised: Optional[bool] = None) -> dict:
    """The ``baseline`` section of the results file.

    Keys: ``rule`` and ``rule_description``; ``arms``; ``n`` per group; ``order`` (variables in
    table order); ``rows`` {variable: {label, kind, test, test_key, statistic, df, p, p_text,
    min_expected, missing, smd, levels {level: {group: {n, percent}}} or summary {group: {...}}}};
    ``tests_used``; ``comparison`` (replication part only); ``text`` (strings for the prose).
    ``randomised`` (study.config.randomised) chooses the wording of the interpretation sentences.
    """
    published_labels = set() if comparison is None else set(comparison.tests["label"])
    rows = {r.variable: _row_result(r, published_labels) for r in table.rows}
    tested = [r for r in table.rows if isinstance(r.test, TestResult) and r.test.p is not None]
    with_smd = [r for r in table.rows if r.smd_value is not None]
    min_row = min(tested, key=lambda r: r.test.p) if tested else None
    max_row = max(with_smd, key=lambda r: r.smd_value) if with_smd else None
    above = [r for r in with_smd if r.smd_value >= SMD_THRESHOLD]
    ref, exp = (table.arms[0], table.arms[1]) if len(table.arms) >= 2 else (table.arms[0], None)
    continuous = [r for r in table.rows if r.kind != "categorical"]
    summaries = {"median": "median [interquartile range], with quartiles by linear interpolation",
                 "mean": "mean (standard deviation)",
                 "both": "mean (standard deviation) and median [interquartile range], with quartiles by linear "
                         "interpolation"}[table.continuous_summary]
    text = {
        "rule": RULE_DESCRIPTIONS[table.rule],
        "n_rows": format_count(len(table.rows)),
        "n_published_rows": format_count(len(published_labels & {r.label for r in table.rows})),
        "n_overall": format_count(table.n[OVERALL]),
        **{f"n_{results_key(a)}": format_count(table.n[a]) for a in table.arms},
        "n_reference": format_count(table.n[ref]),
        "n_experimental": format_count(table.n[exp]) if exp else "-",
        "n_p_below_005": format_count(sum(r.test.p < 0.05 for r in tested)),
        "p_below_005_sentence": count_of(sum(r.test.p < 0.05 for r in tested), len(table.rows), "characteristics",
                                         ("had", "had")) + " P < 0.05",
        "min_p": _p(min_row.test.p) if min_row else "-",
        "min_p_variable": _prose_label(min_row) if min_row else "-",
        "max_smd": _fmt(max_row.smd_value, 3) if max_row else "-",
        "max_smd_variable": _prose_label(max_row) if max_row else "-",
        "n_smd_above_01": format_count(len(above)),
        "smd_above_01_variables": ", ".join(_label(r) for r in above) or "none",
        "smd_above_01_sentence": (
            f"{number_words(len(above)).capitalize()} {plural(len(above), 'characteristic')} had an absolute "
            f"standardised mean difference of at least {SMD_THRESHOLD:g} ({_join([_prose_label(r) for r in above])})"
            if above else f"No characteristic had an absolute standardised mean difference of at least "
                          f"{SMD_THRESHOLD:g}"),
        "rows_sentence": _rows_sentence(table),
        "continuous_sentence": (f"{_join([_label(r) for r in continuous])} as {summaries}"
                                if continuous else "no continuous characteristics"),
        "continuous_test": ("Wilcoxon rank-sum test" if len(table.arms) == 2 else "Kruskal-Wallis test"),
        "not_computed": "; ".join(_not_computed(table)) or "none",
        "design_caveat": (
            "The arms were formed at random, so any imbalance is due to chance, which the tests describe."
            if randomised else
            "The arms were not formed at random, so a P value cannot show whether they are comparable."),
        "imbalance_sentence": (
            "In a randomised comparison such imbalances arise by chance." if randomised else
            "Imbalances of this kind are what the confounding analyses address, because the arms were not "
            "formed at random."),
    }
    out = {
        "rule": table.rule,
        "rule_description": RULE_DESCRIPTIONS[table.rule],
        "arms": list(table.arms),
        "arm_labels": dict(table.arm_labels),
        "n": dict(table.n),
        "order": [r.variable for r in table.rows],
        "rows": rows,
        "tests_used": list(dict.fromkeys(TEST_LABELS.get(r.test.test, r.test.test) for r in table.rows
                                         if isinstance(r.test, TestResult))),
        "continuous_summary": table.continuous_summary,
        "text": text,
    }
    if comparison is not None:
        mismatched = comparison.level_mismatches
        out["comparison"] = {
            "levels_compared": comparison.levels_compared,
            "level_mismatches": int(len(mismatched)),
            "mismatched_rows": [f"{r['label']}: {r['level']}" for _, r in mismatched.iterrows()],
            "tests_compared": comparison.tests_compared,
            "test_mismatches": comparison.test_mismatches,
            "corrections": corrections_note(comparison),
        }
        text["n_level_mismatches"] = format_count(len(mismatched))
        text["n_levels_compared"] = format_count(comparison.levels_compared)
        text["n_test_mismatches"] = format_count(comparison.test_mismatches)
        text["n_tests_compared"] = format_count(comparison.tests_compared)
        text["level_mismatch_sentence"] = count_of(int(len(mismatched)), comparison.levels_compared,
                                                   "published level counts", ("differs", "differ"))
        text["test_mismatch_sentence"] = count_of(comparison.test_mismatches, comparison.tests_compared,
                                                  "published statistics and P values", ("differs", "differ"))
        tests = comparison.tests.set_index("label")
        for i, c in enumerate(comparison.corrections):
            values = {
                "correction": f"{c.variable}, {c.column}: {c.reason}" if c.reason else f"{c.variable}, {c.column}",
                "printed": " and ".join(f"{lv} {format_count(n)}" for lv, n in c.printed.items()),
                "corrected": " and ".join(f"{lv} {format_count(n)}" for lv, n in c.corrected.items()),
                "variable": c.variable, "column": c.column, "reason": c.reason,
            }
            if c.variable in tests.index:
                values["published_statistic"] = _fmt(tests.loc[c.variable, "published_statistic"], 3)
                values["published_p"] = _p(tests.loc[c.variable, "published_p"])
            for name, value in values.items():
                text[f"{results_key(c.key)}_{name}"] = value
                if i == 0:
                    text[f"correction_{name}"] = value
    return out
