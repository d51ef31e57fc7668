"""Words, tables and the forest plot of the stratified and subgroup analyses (helpers.analyses.subgroups in).

* :func:`make_stratified_table` -- per endpoint the unstratified and the stratified log-rank P and Cox
  hazard ratio side by side; for tumour response the crude and the Mantel-Haenszel odds ratio and risk
  difference with the CMH P. :func:`stratified_footnote` names the strata and the methods.
* :func:`plot_subgroup_forest` -- the hazard ratio of the experimental arm within each level of the
  subgroup variables: patients/events per arm, squares sized by precision, a line at 1, the interaction P.
  None when the study has no subgroup variable (the labelled cell then has no output).
* :func:`stratified_payload`, :func:`subgroups_payload` -- the ``stratified`` and ``subgroups`` sections of
  results.json, with the ``text`` sentences the prose quotes.
Labels of variables and levels come from the study's dictionary; no study-specific word is written here.
"""
from __future__ import annotations


import numpy as np
import pandas as pd

from helpers.analyses.subgroups import InteractionTest, StratifiedResults, SubgroupResults
from helpers.report.formatting import (format_count, format_estimate_ci, format_not_estimable, format_p,
                                       format_p_statement, in_sentence)
from helpers.stats.types import NotEstimable, is_estimable

ENDPOINT_NAMES = {"os": "overall survival", "pfs": "progression-free survival",
                  "orr": "objective response", "dcr": "disease control"}
ENDPOINT_SHORT = {"os": "OS", "pfs": "PFS", "orr": "ORR", "dcr": "DCR"}
REASONS = {
    "few_events": "fewer than {min_events} events in an arm",
    "empty_arm": "no patients in one arm",
    "one_arm_per_level": "fewer than two levels hold both arms",
    "constant_outcome": "the outcome does not vary within the strata",
    "too_few_patients": "no stratum holds both arms",
}


# ----------------------------------------------------------------------------- words for things
def _label(study, name: str) -> str:
    if name == "start_year":
        try:
            lab = study.dictionary.label(name)
        except Exception:
            lab = name
        return "Year of treatment start" if lab == name else lab
    try:
        return study.dictionary.label(name)
    except Exception:
        return name


def _level_label(study, name: str, level: str) -> str:
    """A level's label, with relations as symbols (figures are not typeset: "<= 60" -> "≤ 60")."""
    try:
        text = str(study.dictionary.level_label(name, level))
    except Exception:
        text = str(level)
    return text.replace("<=", "≤").replace(">=", "≥")


def not_estimable_words(ne: NotEstimable, min_events: int = 5) -> str:
    """``not estimable: <reason in words>`` (this section's reasons, else the project's vocabulary)."""
    if ne.reason in REASONS:
        return "not estimable: " + REASONS[ne.reason].format(min_events=min_events)
    return format_not_estimable(ne)


def _num(x: float) -> str:
    return f"{int(x)}" if float(x).is_integer() else f"{x:g}"


def factor_levels(factor: dict, study) -> list[str]:
    """Stratum levels of one factor in words, e.g. ``["≤ 2020", "> 2020"]`` for cuts [2020]."""
    cuts = factor.get("cuts") or []
    if not cuts:
        x = study.patients[factor["variable"]]
        vals = [str(c) for c in x.cat.categories] if isinstance(x.dtype, pd.CategoricalDtype) else \
            sorted(x.dropna().astype(str).unique())
        return [_level_label(study, factor["variable"], v) for v in vals]
    out = [f"≤ {_num(cuts[0])}"]
    out += [f"{_num(a)} < … ≤ {_num(b)}" for a, b in zip(cuts[:-1], cuts[1:])]
    return out + [f"> {_num(cuts[-1])}"]


def describe_factors(res: StratifiedResults, study) -> str:
    """The strata in words: ``"year of treatment start (≤ 2020, > 2020)"``; factors joined by "and"."""
    parts = []
    for f in res.choices.factors:
        name = f.get("label") or _label(study, f["variable"])
        parts.append(f"{in_sentence(name)} ({', '.join(factor_levels(f, study))})")
    return " and ".join(parts)


def stratum_name(label: str, res: StratifiedResults, study) -> str:
    """A machine stratum label (``"start_year=0; sex=Female"``) in words."""
    out = []
    factors = {f["variable"]: f for f in res.choices.factors}
    for part in label.split("; "):
        var, _, code = part.partition("=")
        f = factors.get(var, {"variable": var})
        if f.get("cuts"):
            out.append(f"{_label(study, var)} {factor_levels(f, study)[int(code)]}")
        else:
            out.append(f"{_label(study, var)}: {_level_label(study, var, code)}")
    return "; ".join(out)


def _hr_cell(h, min_events: int = 5) -> str:
    if isinstance(h, NotEstimable):
        return not_estimable_words(h, min_events)
    return format_estimate_ci(h.hr.value, h.hr.lower, h.hr.upper, digits=2).replace("95% CI ", "")


def _est_cell(e, digits=2, scale=1.0, suffix="") -> str:
    if isinstance(e, NotEstimable):
        return not_estimable_words(e)
    if scale == 1.0 and e.value > 0:     # ratios: as the hazard ratios
        return format_estimate_ci(e.value, e.lower, e.upper, digits=digits).replace("95% CI ", "")
    return (f"{e.value * scale:.{digits}f}{suffix} ({e.lower * scale:.{digits}f} to "
            f"{e.upper * scale:.{digits}f}{suffix})")


def _lower_join(names: list[str]) -> str:
    low = [in_sentence(n) for n in names]
    return low[0] if len(low) == 1 else ", ".join(low[:-1]) + " or " + low[-1]


def _p_cell(t) -> str:
    if isinstance(t, NotEstimable) or t is None or t.p is None:
        return "—"
    return format_p(t.p)


# ----------------------------------------------------------------------------- stratified table
def make_stratified_table(res: StratifiedResults, study) -> pd.DataFrame | None:
    """Unstratified and stratified comparisons side by side (None when no factor is declared)."""
    if not res.active:
        return None
    rows = []
    for ep, r in res.endpoints.items():
        short = ENDPOINT_SHORT[ep]
        rows.append({"Endpoint": short, "Statistic": "Log-rank test, P",
                     "Unstratified": _p_cell(getattr(r.logrank_unstratified, "test", r.logrank_unstratified)),
                     "Stratified": _p_cell(getattr(r.logrank, "test", r.logrank))})
        rows.append({"Endpoint": short, "Statistic": "Cox hazard ratio (95% CI)",
                     "Unstratified": _hr_cell(r.cox_unstratified), "Stratified": _hr_cell(r.cox)})
    for ep, r in res.response.items():
        short = ENDPOINT_SHORT[ep]
        crude_or = r.crude.odds_ratio if is_estimable(r.crude) else r.crude
        cmh_or = r.cmh.odds_ratio if is_estimable(r.cmh) else r.cmh
        rows.append({"Endpoint": short, "Statistic": "Odds ratio (95% CI)",
                     "Unstratified": _est_cell(crude_or), "Stratified": _est_cell(cmh_or)})
        rows.append({"Endpoint": short, "Statistic": "Risk difference, percentage points (95% CI)",
                     "Unstratified": _est_cell(r.crude.risk_difference, 1, 100) if is_estimable(r.crude)
                     else _est_cell(r.crude),
                     "Stratified": _est_cell(r.cmh.risk_difference, 1, 100) if is_estimable(r.cmh)
                     else _est_cell(r.cmh)})
        rows.append({"Endpoint": short, "Statistic": "Cochran-Mantel-Haenszel test, P",
                     "Unstratified": "—", "Stratified": _p_cell(r.cmh.test) if is_estimable(r.cmh) else "—"})
    return pd.DataFrame(rows).rename(columns={"Stratified": f"Stratified by {describe_factors(res, study)}"})


def make_strata_table(res: StratifiedResults, study) -> pd.DataFrame | None:
    """Patients and events per arm in each stratum (None when no factor is declared)."""
    if not res.active or res.strata.empty:
        return None
    ref, exp = res.arms
    cfg = study.config
    lab = {a: (cfg.arm_label(a) if hasattr(cfg, "arm_label") else a) for a in (ref, exp)}
    out = pd.DataFrame({"Stratum": [stratum_name(s, res, study) for s in res.strata["stratum"]]})
    for a in (ref, exp):
        out[f"{lab[a]}, n"] = _count_column(res.strata[f"n_{a}"])
        for ep in res.endpoints:
            out[f"{lab[a]}, {ENDPOINT_SHORT[ep]} events"] = _count_column(res.strata[f"events_{ep}_{a}"])
    return out


def _count_column(values: pd.Series) -> pd.Series:
    """Counts of a table column with their thousands separators; missing cells stay empty."""
    return values.map(lambda v: None if pd.isna(v) else format_count(v)).astype(object)


def stratified_footnote(res: StratifiedResults, study) -> str:
    """Methods of the stratified table in words (strata, tests, estimators, dropped strata)."""
    ref, exp = res.arms
    cfg = study.config
    el, rl = (cfg.arm_label(exp), cfg.arm_label(ref)) if hasattr(cfg, "arm_label") else (exp, ref)
    text = (f"Strata: {describe_factors(res, study)}. Hazard ratios and odds ratios of {el} vs {rl}. "
            "Stratified log-rank test: observed minus expected events summed over strata; "
            "stratified Cox model: one hazard ratio with a separate baseline hazard per stratum, "
            "Efron ties, Wald 95% CI.")
    if res.response:
        text += (" Response: Mantel-Haenszel common odds ratio with the Robins-Breslow-Greenland 95% CI and the "
                 "Cochran-Mantel-Haenszel test with continuity correction; common risk "
                 "difference weighted by n1·n0/N per stratum with the Greenland-Robins variance and a Wald 95% CI; "
                 "unstratified: the crude odds ratio (Woolf CI) and risk difference (Wald CI) "
                 + ("with not-evaluable patients counted as non-responders."
                    if res.choices.response_denominator == "all" else "among evaluable patients."))
    one_arm = [c.data["stratum"] for c in res.caveats if c.kind == "one_arm_stratum"]
    if one_arm:
        text += (f" {format_count(len(one_arm))} stratum/strata with patients of one arm only "
                 f"({'; '.join(stratum_name(s, res, study) for s in one_arm)}) contribute nothing to the stratified "
                 "estimates.")
    if res.n_missing:
        text += f" {format_count(res.n_missing)} patients without a stratum value were left out."
    return text


def stratified_payload(res: StratifiedResults, study) -> dict:
    """The ``stratified`` section of results.json: per endpoint log-rank P, HR and CI; response: CMH OR and P."""
    if not res.active:
        return {"factors": [], "text": {"sentence": "No stratification factor was declared in the analysis plan.",
                                        "factors": "none declared"}}
    out: dict = {"factors": [dict(f) for f in res.choices.factors],
                 "strata": res.strata.to_dict(orient="records"), "n_missing": res.n_missing}
    text = {"factors": describe_factors(res, study)}
    sentences = []
    for ep, r in res.endpoints.items():
        lr, cx = r.logrank, r.cox
        out[ep] = {"logrank_p": lr.test.p if is_estimable(lr) else None,
                   "logrank_chisq": lr.test.statistic if is_estimable(lr) else None,
                   "hr": cx.hr.value if is_estimable(cx) else None,
                   "lower": cx.hr.lower if is_estimable(cx) else None,
                   "upper": cx.hr.upper if is_estimable(cx) else None,
                   "p_wald": cx.wald.p if is_estimable(cx) else None,
                   "n_strata": cx.n_strata if is_estimable(cx) else None,
                   "unstratified": {"logrank_p": getattr(getattr(r.logrank_unstratified, "test", None), "p", None),
                                    "hr": r.cox_unstratified.hr.value if is_estimable(r.cox_unstratified) else None},
                   "not_estimable": None if is_estimable(cx) else cx.reason}
        p_text = format_p_statement(lr.test.p) if is_estimable(lr) else "P not estimable"
        text[f"hr_{ep}"] = (format_estimate_ci(cx.hr.value, cx.hr.lower, cx.hr.upper, digits=2)
                            if is_estimable(cx) else not_estimable_words(cx))
        text[f"logrank_p_{ep}"] = p_text
        inner = (format_estimate_ci(cx.hr.value, cx.hr.lower, cx.hr.upper, digits=2)[:-1] + f"; stratified log-rank "
                 f"{p_text})" if is_estimable(cx) else f"{not_estimable_words(cx)} (stratified log-rank {p_text})")
        sentences.append(f"for {ENDPOINT_NAMES[ep]} the stratified hazard ratio was {inner}")
    for ep, r in res.response.items():
        c = r.cmh
        ok = is_estimable(c)
        odds = c.odds_ratio if ok else c
        out[ep] = {"cmh_or": odds.value if is_estimable(odds) else None,
                   "cmh_or_lower": odds.lower if is_estimable(odds) else None,
                   "cmh_or_upper": odds.upper if is_estimable(odds) else None,
                   "cmh_p": c.test.p if ok else None, "cmh_chisq": c.test.statistic if ok else None,
                   "risk_difference": c.risk_difference.value if ok else None,
                   "risk_difference_lower": c.risk_difference.lower if ok else None,
                   "risk_difference_upper": c.risk_difference.upper if ok else None,
                   "risk_difference_p": c.rd_test.p if ok else None,
                   "n": r.n, "responders": r.responders, "not_estimable": None if ok else c.reason}
        if ok and is_estimable(odds):
            or_text = format_estimate_ci(odds.value, odds.lower, odds.upper, digits=2)[:-1]
            rd = c.risk_difference
            sentences.append(f"for {ENDPOINT_NAMES[ep]} the Mantel-Haenszel odds ratio was {or_text}; "
                             "Cochran-Mantel-Haenszel "
                             f"{format_p_statement(c.test.p)}) and the common risk difference "
                             f"{100 * rd.value:.1f} percentage points (95% CI {100 * rd.lower:.1f} to "
                             f"{100 * rd.upper:.1f})")
    text["sentence"] = (f"Stratified by {text['factors']}, " + "; ".join(sentences) + "." if sentences
                        else "The stratified analyses were not estimable.")
    out["text"] = text
    return out


# ----------------------------------------------------------------------------- subgroups
def _rows(res: SubgroupResults, ep: str, study) -> list[dict]:
    out = []
    for var in res.by_endpoint.get(ep, []):
        it = var.interaction
        p_int = it.test.p if isinstance(it, InteractionTest) else None
        for lv in var.levels:
            h = lv.hr
            row = {"variable": var.variable, "level": lv.level, "label": _label(study, var.variable),
                   "level_label": _level_label(study, var.variable, lv.level),
                   "hr": h.hr.value if is_estimable(h) else None,
                   "lower": h.hr.lower if is_estimable(h) else None,
                   "upper": h.hr.upper if is_estimable(h) else None,
                   "se_log": h.se if is_estimable(h) else None,
                   "p_interaction": p_int, "df_interaction": it.test.df if isinstance(it, InteractionTest) else None,
                   "not_estimable": None if is_estimable(h) else h.reason}
            for role, arm in zip(("reference", "experimental"), res.arms):
                row[f"n_{role}"] = lv.n[arm]
                row[f"events_{role}"] = lv.events[arm]
            out.append(row)
    return out


def subgroups_payload(res: SubgroupResults, study=None) -> dict:
    """The ``subgroups`` section of results.json: per endpoint a list of
    ``{variable, level, hr, lower, upper, p_interaction, ...}`` and the ``text`` sentences."""
    out: dict = {"variables": list(res.variables), "min_events": res.choices.min_events}
    text = {"min_events": format_count(res.choices.min_events)}
    for ep in (res.endpoints if res.active else ()):
        out[ep] = _rows(res, ep, study)
        sig = []
        for var in res.by_endpoint[ep]:
            it = var.interaction
            if isinstance(it, InteractionTest) and it.test.p is not None and it.test.p < 0.05:
                sig.append(f"{_label(study, var.variable)} (interaction P = {format_p(it.test.p)})")
        tested = [var for var in res.by_endpoint[ep]
                  if isinstance(var.interaction, InteractionTest) and var.interaction.test.p is not None]
        names = [_label(study, var.variable) for var in tested]
        untested = [_label(study, var.variable) for var in res.by_endpoint[ep] if var not in tested]
        none_sig = (f"For {ENDPOINT_NAMES[ep]}, no likelihood-ratio test of the interaction of the arm with "
                    f"{_lower_join(names)} gave P < 0.05" if names else
                    f"For {ENDPOINT_NAMES[ep]}, no interaction of the arm could be tested")
        if untested and names:
            none_sig += f" (the interaction with {_lower_join(untested)} was not estimable)"
        text[f"interaction_{ep}"] = (
            none_sig + "." if not sig else
            f"For {ENDPOINT_NAMES[ep]}, the likelihood-ratio test of the interaction with the arm gave P < 0.05 for "
            + ", ".join(sig) + f"; with {len(res.variables)} variables tested, one such finding may arise by chance.")
    if not res.active:
        text["sentence"] = "No baseline variable was declared for subgroup analyses."
    else:
        text["sentence"] = (f"A hazard ratio is shown for a level with at least {res.choices.min_events} events in "
                            "each arm. " + " ".join(text[f"interaction_{ep}"] for ep in res.endpoints))
    out["text"] = text
    return out


def plot_subgroup_forest(res: SubgroupResults, study, endpoint: str = "os"):
    """Forest plot of the experimental-arm HR by subgroup level (None without subgroup variables).

    Columns: subgroup, patients/events per arm, the HR on a log axis (square area proportional to the
    precision 1/SE² of the log HR, 95% CI line, a vertical line at 1, dashed line at the overall HR),
    HR (95% CI) and the interaction P. A level with too few events reads "fewer than 5 events in an arm".
    """
    if not res.active or endpoint not in res.by_endpoint:
        return None
    import matplotlib.pyplot as plt
    from helpers.report.figures import DOUBLE_WIDTH_IN, FONT_SMALL_PT, style_context

    cfg = study.config
    ref, exp = res.arms
    rl, el = (cfg.arm_label(ref), cfg.arm_label(exp)) if hasattr(cfg, "arm_label") else (ref, exp)
    lines = []   # (kind, label, n/events text, est or None, text, p text)
    ov = res.overall[endpoint]
    lines.append(("level", "All patients", ov))
    for var in res.by_endpoint[endpoint]:
        it = var.interaction
        p = ("interaction P = " + format_p(it.test.p)) if isinstance(it, InteractionTest) else \
            "interaction P not estimable"
        lines.append(("header", _label(study, var.variable), p))
        for lv in var.levels:
            lines.append(("level", "   " + _level_label(study, var.variable, lv.level), lv))
    n = len(lines)
    prec = [1 / lv.hr.se ** 2 for k, _, lv in lines if k == "level" and is_estimable(lv.hr)]
    pmax = max(prec) if prec else 1.0
    ests = [v for k, _, lv in lines if k == "level" and is_estimable(lv.hr) for v in (lv.hr.hr.lower, lv.hr.hr.upper)]
    lo = min([0.5] + [v for v in ests if np.isfinite(v) and v > 0])
    hi = max([2.0] + [v for v in ests if np.isfinite(v)])
    lo, hi = max(lo / 1.2, 0.02), min(hi * 1.2, 50)
    with style_context():
        fig = plt.figure(figsize=(DOUBLE_WIDTH_IN, 0.26 * (n + 2) + 0.6))
        gs = fig.add_gridspec(1, 3, width_ratios=[3.0, 1.6, 2.0], wspace=0.05)
        left, mid, right = (fig.add_subplot(gs[0, i]) for i in range(3))
        mid.patch.set_visible(False)   # a long subgroup name may run on over the empty header row
        for ax in (left, right):
            ax.set_axis_off()
            ax.set_ylim(n - 0.5, -1.5)
        mid.set_ylim(n - 0.5, -1.5)
        left.text(0, -1, "Subgroup", fontweight="bold", va="center", fontsize=FONT_SMALL_PT)
        left.text(0.62, -1, f"n (events)\n{rl} / {el}", fontweight="bold", va="center", fontsize=FONT_SMALL_PT)
        right.text(0.02, -1, "HR (95% CI)", fontweight="bold", va="center", fontsize=FONT_SMALL_PT)
        for y, (kind, label, obj) in enumerate(lines):
            if kind == "header":
                left.text(0, y, label, fontweight="bold", va="center", fontsize=FONT_SMALL_PT)
                right.text(0.02, y, obj, va="center", fontsize=FONT_SMALL_PT, style="italic")
                continue
            lv = obj
            left.text(0, y, label, va="center", fontsize=FONT_SMALL_PT)
            left.text(0.62, y, f"{format_count(lv.n[ref])} ({format_count(lv.events[ref])}) / "
                               f"{format_count(lv.n[exp])} ({format_count(lv.events[exp])})",
                      va="center", fontsize=FONT_SMALL_PT)
            if is_estimable(lv.hr):
                e = lv.hr.hr
                size = 4 + 60 * (1 / lv.hr.se ** 2) / pmax
                mid.plot([max(e.lower, lo), min(e.upper, hi)], [y, y], color="black", lw=0.9)
                mid.scatter([e.value], [y], s=size, marker="s", color="black", zorder=3)
                right.text(0.02, y, _hr_cell(lv.hr), va="center", fontsize=FONT_SMALL_PT)
            else:
                right.text(0.02, y, not_estimable_words(lv.hr, res.choices.min_events).replace(
                    "not estimable: ", ""), va="center", fontsize=FONT_SMALL_PT)
        mid.set_xscale("log")
        mid.set_xlim(lo, hi)
        mid.axvline(1, color="black", lw=0.8)
        if is_estimable(ov.hr):
            mid.axvline(ov.hr.hr.value, color="grey", lw=0.7, ls="--")
        mid.set_yticks([])
        mid.spines["left"].set_visible(False)
        ticks = [t for t in (0.1, 0.25, 0.5, 1, 2, 4, 10) if lo <= t <= hi]
        from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator
        mid.xaxis.set_major_locator(FixedLocator(ticks))
        mid.xaxis.set_major_formatter(FixedFormatter([f"{t:g}" for t in ticks]))
        mid.xaxis.set_minor_locator(NullLocator())
        mid.set_xlabel(f"Hazard ratio ({ENDPOINT_SHORT[endpoint]})\n← favours {el}    favours {rl} →", fontsize=FONT_SMALL_PT)
        height = fig.get_figheight()   # margins in inches, so a plot of one or two rows keeps its axis label
        fig.subplots_adjust(left=0.02, right=0.99, top=1 - 0.08 / height, bottom=0.6 / height)
    return fig


def subgroup_footnote(res: SubgroupResults, study) -> str:
    """Methods of the forest plot in words."""
    return (f"Hazard ratios from Cox models within each level (Efron ties, Wald 95% CI); a level with fewer than "
            f"{res.choices.min_events} events in an arm is shown without one. Interaction P: likelihood-ratio test "
            "of the model with the arm, the variable and their interaction against the model without the "
            "interaction. Patients with a missing value of a variable are left out of its rows.")
