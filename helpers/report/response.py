"""Tumour response in words, tables and a figure, from :class:`helpers.analyses.response.ResponseAnalysis`.

Everything a reader sees of the response section is made here: the table and its footnote
(:func:`make_response_table`, :func:`response_table_footnote`), the bar chart
(:func:`plot_response`), the results-file payload with the prose strings ``response.text.*``
(:func:`response_results`) and, with a published comparison, the table beside the publication's
statements (:func:`make_published_response_table`).

Arms are named by their labels from the study configuration (``study.config.arm_label(code)``; the
code when no label is configured). Results keys keep the arm code (non-alphanumerics -> "_") and add
role keys ``..._reference`` / ``..._experimental`` for generic prose.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from helpers.analyses.response import ENDPOINTS, RESPONSE_CATEGORIES, RateComparison, ResponseAnalysis
from helpers.report.formatting import results_key as arm_key
from helpers.report.formatting import (format_ci, format_count, format_n_pct, format_not_estimable, format_number,
                                       format_p)
from helpers.stats.types import Estimate, NotEstimable, TestResult

__all__ = [
    "CATEGORY_LABELS", "ENDPOINT_LABELS", "ENDPOINT_SHORT", "DENOMINATOR_TEXT", "DIFFERENCE_METHOD_TEXT",
    "TEST_LABELS", "arm_labels", "arm_palette", "not_estimable_text", "test_label",
    "rule_text", "significance_text", "published_statements", "make_response_table",
    "response_table_footnote", "plot_response", "response_results", "published_response_agreement",
    "make_published_response_table", "display_published_response_table",
]

CATEGORY_LABELS = {"CR": "Complete response (CR)", "PR": "Partial response (PR)",
                   "SD": "Stable disease (SD)", "PD": "Progressive disease (PD)",
                   "NE": "Not evaluable (NE)"}
ENDPOINT_LABELS = {"orr": "Objective response rate (CR + PR)",
                   "dcr": "Disease control rate (CR + PR + SD)"}
ENDPOINT_SHORT = {"orr": "ORR", "dcr": "DCR"}
#: Denominator code -> wording used in tables and text.
DENOMINATOR_TEXT = {"all": "all treated patients (NE counted as non-responders)",
                    "evaluable": "patients evaluable for response (NE excluded)"}
DIFFERENCE_METHOD_TEXT = {"newcombe": "Newcombe hybrid score interval (Wilson limits, no continuity correction)",
                          "wald": "Wald interval (no continuity correction)"}
ODDS_RATIO_METHOD_TEXT = "conditional maximum-likelihood estimate with exact conditional CI"
RATE_CI_METHOD_TEXT = "exact Clopper-Pearson"
#: Short test names (TestResult.test) -> words.
TEST_LABELS = {"pearson": "Pearson chi-square", "yates": "Yates-corrected chi-square",
               "fisher": "Fisher's exact test", "fisher_freeman_halton": "Fisher-Freeman-Halton exact test"}
#: Test-selection rules -> words (the rule of the baseline table, or the modern one).
RULE_TEXT = {"cochran": "Cochran's criteria [@cochran1954]: Pearson chi-square if every expected count is ≥ 5, "
                        "Yates-corrected chi-square if the smallest is 1 to < 5, Fisher's exact test "
                        "if it is < 1 or n < 40",
             "modern": "Fisher's exact test if any expected count is < 5, else Pearson chi-square"}
NOT_APPLICABLE = "not applicable"


# ----------------------------------------------------------------------------- shared wording
def _config(study):
    """The StudyConfig of a Study (or a config itself, or None)."""
    return getattr(study, "config", study)


def arm_labels(arms: Sequence[str], study=None) -> dict[str, str]:
    """Arm code -> label from the study configuration (``config.arm_label``); the code otherwise."""
    config = _config(study)
    label = getattr(config, "arm_label", None)
    out = {}
    for arm in arms:
        try:
            out[arm] = str(label(arm)) if callable(label) else str(arm)
        except (KeyError, ValueError):
            out[arm] = str(arm)
    return out


def arm_palette(arms: Sequence[str]) -> dict[str, str]:
    """Colour of each arm by its position (reference first), as the Kaplan-Meier figures use
    (:func:`helpers.report.figures.arm_colour`)."""
    from helpers.report.figures import arm_colour

    return {arm: arm_colour(i) for i, arm in enumerate(arms)}


def not_estimable_text(result: NotEstimable) -> str:
    """"not estimable: <reason in words>"."""
    if result.reason == "not_applicable":
        return NOT_APPLICABLE
    return format_not_estimable(result)


def test_label(test: TestResult | NotEstimable | None) -> str:
    """The test's name in words ("Pearson chi-square"); "not applicable" without a test."""
    if not isinstance(test, TestResult):
        return NOT_APPLICABLE
    return TEST_LABELS.get(test.test, test.test)


def _p_text(test: TestResult | NotEstimable | None) -> str:
    if isinstance(test, NotEstimable):
        return not_estimable_text(test)
    if test is None:
        return NOT_APPLICABLE
    return format_p(test.p)


def rule_text(rule: str) -> str:
    """The test-selection rule in words ("paper" is the former name of "cochran")."""
    return RULE_TEXT.get({"paper": "cochran"}.get(rule, rule), str(rule))


def significance_text(p: float | None, alpha: float = 0.05) -> str:
    """"statistically significant at the two-sided 5% level" or "not statistically significant ..."."""
    level = f"{100 * alpha:g}%"
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "not tested"
    return (f"statistically significant at the two-sided {level} level" if p < alpha
            else f"not statistically significant at the two-sided {level} level")


def published_statements(study) -> dict[str, str] | None:
    """The publication's statements on ORR, DCR and adverse events ({"orr", "dcr", "trae"}) from the
    study's ``published.yaml`` (``abstract`` block); None without a published comparison."""
    published = getattr(study, "published", None)
    if not published:
        return None
    abstract = published.get("abstract", {}) or {}
    return {key: str(abstract.get(key, "") or "") for key in ("orr", "dcr", "trae")}


def _randomised(study) -> bool:
    config = _config(study)
    value = getattr(config, "randomised", None)
    if value is None:
        value = str(getattr(config, "design", "") or "").lower().startswith("random")
    return bool(value)


# ----------------------------------------------------------------------------- cells
def _signed(value: float, digits: int = 1) -> str:
    """A signed number with a typographic minus ("−3.2"), "–" when missing."""
    return format_number(value, digits, "–").replace("-", "−")


def _signed_ci(lower: float, upper: float, digits: int = 1) -> str:
    """"−18.8 to 38.3": limits joined by "to", since a dash is ambiguous with negative limits."""
    return f"{_signed(lower, digits)} to {_signed(upper, digits)}"


def _level(level: float) -> str:
    return f"{int(round(100 * level))}%"


def _rate_cell(comp: RateComparison, arm: str) -> str:
    rate = comp.rate[arm]
    if isinstance(rate, NotEstimable):
        return f"{format_count(comp.k[arm])}/{format_count(comp.n[arm])}, {not_estimable_text(rate)}"
    return (f"{format_count(comp.k[arm])}/{format_count(comp.n[arm])}, {format_number(100 * rate.value, 1, '–')} "
            f"({format_ci(100 * rate.lower, 100 * rate.upper, 1, '–')})")


def _difference_cell(comp: RateComparison) -> str:
    d = comp.difference
    if isinstance(d, NotEstimable):
        return not_estimable_text(d)
    return f"{_signed(100 * d.value)} ({_signed_ci(100 * d.lower, 100 * d.upper)})"


def _odds_ratio_cell(comp: RateComparison) -> str:
    o = comp.odds_ratio
    if isinstance(o, NotEstimable):
        return not_estimable_text(o)
    return f"{format_number(o.value, 2)} ({format_ci(o.lower, o.upper, 2)})"


def _rate_text(rate: Estimate | NotEstimable) -> str:
    """"40.2% (95% CI 29.9–51.3)"."""
    if isinstance(rate, NotEstimable):
        return not_estimable_text(rate)
    return (f"{format_number(100 * rate.value, 1, '–')}% ({_level(rate.level)} CI "
            f"{format_ci(100 * rate.lower, 100 * rate.upper, 1, '–')})")


# ----------------------------------------------------------------------------- table
def make_response_table(result: ResponseAnalysis, study=None) -> pd.DataFrame:
    """Best overall response per arm, then ORR and DCR with CIs and between-arm statistics.

    Rows: CR, PR, SD, PD, NE as n (%) of all patients of the arm; ORR and DCR with the chosen
    denominator as "k/n, % (95% CI)"; when ``result.sensitivity_rows`` the same two rows with the
    other denominator. Columns: one per arm (label and n), difference (experimental - reference,
    percentage points, CI), odds ratio (CI), P and the test that produced it.
    """
    arms = list(result.arms)
    labels = arm_labels(arms, study)
    level = _level(result.level)
    columns = (["Response"] + [f"{labels[arm]} (n = {format_count(result.n[arm])})" for arm in arms]
               + [f"Difference, % points ({level} CI)", f"Odds ratio ({level} CI)", "P", "Test"])
    rows = []
    for cat in RESPONSE_CATEGORIES:
        rows.append([CATEGORY_LABELS[cat]] + [format_n_pct(result.category_count(arm, cat), result.n[arm])
                                              for arm in arms] + ["", "", "", ""])
    blocks = [(result.denominator, result.main)]
    if result.sensitivity_rows:
        blocks.append((result.sensitivity_denominator, result.sensitivity))
    for denom, comparisons in blocks:
        for endpoint, comp in comparisons.items():
            label = f"{ENDPOINT_SHORT[endpoint]}, k/n, % ({level} CI)"
            if denom != result.denominator:
                label = f"{ENDPOINT_SHORT[endpoint]}, {denom} patients only (sensitivity)"
            elif denom == "evaluable":
                label += ", evaluable patients"
            rows.append([label] + [_rate_cell(comp, arm) for arm in arms]
                        + [_difference_cell(comp), _odds_ratio_cell(comp), _p_text(comp.test),
                           test_label(comp.test)])
    return pd.DataFrame(rows, columns=columns)


def response_table_footnote(result: ResponseAnalysis, study=None) -> str:
    """Footnote of :func:`make_response_table`, generated from the methods of the result."""
    ref, exp = result.arms
    labels = arm_labels(result.arms, study)
    return (f"Categories: n (%) of all patients of the arm. ORR = CR + PR; DCR = CR + PR + SD; "
            f"denominator: {DENOMINATOR_TEXT[result.denominator]}. Rate CIs: {RATE_CI_METHOD_TEXT}. "
            f"Difference: {labels[exp]} minus {labels[ref]}, "
            f"{DIFFERENCE_METHOD_TEXT[result.difference_method]}. Odds ratio ({labels[exp]} vs "
            f"{labels[ref]}): {ODDS_RATIO_METHOD_TEXT}. P: two-sided, test chosen by "
            f"{rule_text(result.rule)}; the test is named in each row.")


# ----------------------------------------------------------------------------- figure
def plot_response(result: ResponseAnalysis, study=None):
    """Grouped bar chart (seaborn) of the best overall response: percent of the patients of each arm
    per category, one colour per arm (by position, as the Kaplan-Meier figures); the legend gives each
    arm's n, ORR and DCR (main denominator). Returns the Figure (detached from pyplot)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from matplotlib.patches import Patch

    from helpers.report.figures import COLUMN_WIDTH_IN, FONT_SMALL_PT, arm_hatch, style_context

    arms = list(result.arms)
    labels = arm_labels(arms, study)
    palette = arm_palette(arms)

    def legend_label(arm: str) -> str:
        parts = [f"{labels[arm]} (n = {format_count(result.n[arm])})"]
        for ep in ENDPOINTS:
            rate = result.main[ep].rate[arm]
            if isinstance(rate, Estimate):
                parts.append(f"{ENDPOINT_SHORT[ep]} {100 * rate.value:.0f}%")
        return parts[0] + (": " + ", ".join(parts[1:]) if len(parts) > 1 else "")

    data = result.counts.assign(
        category=result.counts["category"].astype(str),
        arm_name=result.counts["arm"].astype(str).map(legend_label),
        percent=result.counts["percent"].fillna(0.0))
    hue_order = [legend_label(arm) for arm in arms]
    with style_context():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN * 1.45, 2.4))
        sns.barplot(data=data, x="category", y="percent", hue="arm_name", order=list(RESPONSE_CATEGORIES),
                    hue_order=hue_order, palette=[palette[a] for a in arms], errorbar=None, ax=ax,
                    saturation=1.0, linewidth=0)
        for i, container in enumerate(ax.containers):   # one container per arm, in the arm order
            for bar in container:
                bar.set_hatch(arm_hatch(i))
                bar.set_edgecolor("white")
            ax.bar_label(container, fmt="%.0f", fontsize=FONT_SMALL_PT, padding=1.5)
        ax.set_xlabel("Best overall response")
        ax.set_ylabel("Patients of the arm (%)")
        top = float(np.nanmax(data["percent"])) if len(data) else 0.0
        ax.set_ylim(0, max(10.0, 10 * math.ceil((top + 6) / 10)))
        # swatches drawn like the bars: the arm's colour and hatching
        handles = [Patch(facecolor=palette[a], edgecolor="white", linewidth=0, hatch=arm_hatch(i),
                         label=legend_label(a)) for i, a in enumerate(arms)]
        ax.legend(handles=handles, title=None, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False,
                  ncol=1)
        sns.despine(ax=ax)
    plt.close(fig)
    return fig


# ----------------------------------------------------------------------------- results payload
def _estimate_payload(est: Estimate | NotEstimable) -> dict:
    if isinstance(est, NotEstimable):
        return {"estimate": None, "lower": None, "upper": None, "not_estimable": est.reason}
    return {"estimate": est.value, "lower": est.lower, "upper": est.upper}


def _comparison_payload(comp: RateComparison, labels: Mapping[str, str]) -> dict:
    """{arm: {k, n, rate, lower, upper}, p, test, difference, odds_ratio, ...} (today's keys)."""
    out: dict = {}
    for arm in comp.arms:
        rate = comp.rate[arm]
        ok = isinstance(rate, Estimate)
        out[arm] = {"k": comp.k[arm], "n": comp.n[arm], "rate": rate.value if ok else None,
                    "lower": rate.lower if ok else None, "upper": rate.upper if ok else None}
    test = comp.test
    ref, exp = comp.arms
    out.update({
        "endpoint": comp.endpoint, "denominator": comp.denominator,
        "reference_arm": ref, "experimental_arm": exp,
        "rate_ci_method": RATE_CI_METHOD_TEXT,
        "p": comp.p, "test": test_label(test), "test_key": test.test if isinstance(test, TestResult) else None,
        "statistic": test.statistic if isinstance(test, TestResult) else None,
        "df": test.df if isinstance(test, TestResult) else None,
        "min_expected": comp.min_expected, "rule": comp.rule,
        "difference": {**_estimate_payload(comp.difference),
                       "method": DIFFERENCE_METHOD_TEXT.get(getattr(comp.difference, "method", ""), ""),
                       "direction": f"{labels[exp]} minus {labels[ref]}"},
        "odds_ratio": {**_estimate_payload(comp.odds_ratio), "method": ODDS_RATIO_METHOD_TEXT,
                       "direction": f"{labels[exp]} vs {labels[ref]}"},
    })
    return out


def published_response_agreement(result: ResponseAnalysis, statements: Mapping[str, str],
                                 alpha: float = 0.05) -> dict:
    """Does each endpoint reproduce "significantly higher with the experimental arm"?

    Returns {endpoint: {statement, higher, significant, alpha, agrees}} with ``agrees`` "yes",
    "no: higher but not significant" or "no: not higher".
    """
    out = {}
    for ep, comp in result.main.items():
        r_ref, r_exp = (comp.rate[a] for a in comp.arms)
        higher = (isinstance(r_ref, Estimate) and isinstance(r_exp, Estimate) and r_exp.value > r_ref.value)
        significant = comp.p is not None and comp.p < alpha
        agrees = "yes" if (higher and significant) else (
            "no: higher but not significant" if higher else "no: not higher")
        out[ep] = {"statement": statements.get(ep, ""), "higher": bool(higher),
                   "significant": bool(significant), "alpha": alpha, "agrees": agrees}
    return out


def response_results(result: ResponseAnalysis, study=None, published: Mapping[str, str] | None = None,
                     alpha: float = 0.05) -> dict:
    """Payload of the ``response`` section of results.json.

    Keys: ``orr``, ``dcr`` (main denominator: {arm: {k, n, rate, lower, upper}, p, test, difference,
    odds_ratio, ...}), ``sensitivity`` {``denominator``, ``orr``, ``dcr``}, ``categories`` {arm:
    {category: {n, percent}}}, ``denominator``, ``rule``, ``difference_method``, ``level``, ``arms``
    (reference, experimental), ``published`` (with a published comparison) and ``text``: ready-formatted
    strings for prose, per arm code (``orr_CMT_ICI``) and per role (``orr_reference``,
    ``orr_experimental``, ``n_reference``, ...).

    ``published``: the publication's statements ({"orr", "dcr"}); default those of ``study``
    (:func:`published_statements`), none when the study has no published comparison.
    """
    arms = list(result.arms)
    labels = arm_labels(arms, study)
    roles = dict(zip(arms, ("reference", "experimental")))
    if published is None:
        published = published_statements(study)
    categories = {arm: {row.category: {"n": int(row.n), "percent": None if pd.isna(row.percent) else float(row.percent)}
                        for row in result.counts[result.counts["arm"] == arm].itertuples()} for arm in arms}
    text: dict[str, str] = {}

    def per_arm(name: str, arm: str, value: str) -> None:
        text[f"{name}_{arm_key(arm)}"] = value
        text[f"{name}_{roles[arm]}"] = value

    for ep, comp in result.main.items():
        sens = result.sensitivity[ep]
        for arm in arms:
            per_arm(ep, arm, _rate_text(comp.rate[arm]))
            per_arm(f"{ep}_k", arm, f"{format_count(comp.k[arm])}/{format_count(comp.n[arm])}")
            per_arm(f"{ep}_sensitivity", arm, _rate_text(sens.rate[arm]))
        d = comp.difference
        text[f"{ep}_difference"] = (not_estimable_text(d) if isinstance(d, NotEstimable) else
                                    f"{_signed(100 * d.value)} percentage points ({_level(d.level)} CI "
                                    f"{_signed_ci(100 * d.lower, 100 * d.upper)})")
        o = comp.odds_ratio
        text[f"{ep}_odds_ratio"] = (not_estimable_text(o) if isinstance(o, NotEstimable) else
                                    f"{format_number(o.value, 2)} ({_level(o.level)} CI {format_ci(o.lower, o.upper, 2)})")
        text[f"{ep}_p"] = _p_text(comp.test)
        text[f"{ep}_test"] = test_label(comp.test)
        text[f"{ep}_sensitivity_p"] = _p_text(sens.test)
        r_ref, r_exp = (comp.rate[a] for a in arms)
        if isinstance(r_ref, Estimate) and isinstance(r_exp, Estimate):
            text[f"{ep}_direction"] = (f"higher with {labels[arms[1]]}" if r_exp.value > r_ref.value else
                                       f"lower with {labels[arms[1]]}" if r_exp.value < r_ref.value else
                                       "equal in the two arms")
        else:
            text[f"{ep}_direction"] = not_estimable_text(NotEstimable("direction", "empty_arm"))
        text[f"{ep}_significance"] = significance_text(comp.p, alpha)
    for arm in arms:
        per_arm("n", arm, format_count(result.n[arm]))
        per_arm("ne", arm, format_n_pct(result.category_count(arm, "NE"), result.n[arm]))
        per_arm("label", arm, labels[arm])
    text["denominator"] = DENOMINATOR_TEXT[result.denominator]
    text["sensitivity_denominator"] = DENOMINATOR_TEXT[result.sensitivity_denominator]
    text["difference_method"] = DIFFERENCE_METHOD_TEXT[result.difference_method]
    text["level"] = _level(result.level)
    text["test_rule"] = rule_text(result.rule)
    n_missing = sum(int(c.data.get("n", 0)) for c in result.caveats if c.kind == "missing_response")
    text["missing_sentence"] = (
        f"{format_count(n_missing)} patient{'s' if n_missing != 1 else ''} without a recorded best response "
        f"{'were' if n_missing != 1 else 'was'} counted as not evaluable." if n_missing else "")
    payload = {
        "orr": _comparison_payload(result.main["orr"], labels),
        "dcr": _comparison_payload(result.main["dcr"], labels),
        "sensitivity": {"denominator": result.sensitivity_denominator,
                        "orr": _comparison_payload(result.sensitivity["orr"], labels),
                        "dcr": _comparison_payload(result.sensitivity["dcr"], labels)},
        "categories": categories, "denominator": result.denominator, "rule": result.rule,
        "difference_method": result.difference_method, "level": result.level,
        "arms": {"reference": arms[0], "experimental": arms[1]},
        "n_missing_response": n_missing,
    }
    if published is not None:
        agreement = published_response_agreement(result, published, alpha)
        payload["published"] = agreement
        for ep, item in agreement.items():
            text[f"{ep}_published"] = item["statement"]
            text[f"{ep}_agrees"] = item["agrees"]
    payload["text"] = text
    return payload


# ----------------------------------------------------------------------------- published comparison
def make_published_response_table(result: ResponseAnalysis, study=None,
                                  published: Mapping[str, str] | None = None) -> pd.DataFrame | None:
    """The publication's statement beside the reproduced ORR and DCR; None without a publication."""
    if published is None:
        published = published_statements(study)
    if published is None:
        return None
    labels = arm_labels(result.arms, study)
    agreement = published_response_agreement(result, published)
    rows = []
    for ep, comp in result.main.items():
        rates = []
        for arm in comp.arms:
            rate = comp.rate[arm]
            rates.append(f"{labels[arm]} " + (f"{format_number(100 * rate.value, 1, '–')}%"
                                               if isinstance(rate, Estimate) else not_estimable_text(rate)))
        ours = f"{' vs '.join(rates)}; P = {_p_text(comp.test)} ({test_label(comp.test)})"
        rows.append([ENDPOINT_LABELS[ep], agreement[ep]["statement"] or "not available", ours,
                     agreement[ep]["agrees"]])
    return pd.DataFrame(rows, columns=["Endpoint", "Published (abstract)", "Reproduced", "Agrees"])


def display_published_response_table(result: ResponseAnalysis, study=None):
    """The published-comparison table as Markdown for a notebook cell; None (no output, so the
    embed is left out) when the study has no published comparison."""
    from helpers.report.formatting import show_table

    table = make_published_response_table(result, study)
    return None if table is None else show_table(table, align="llll")
