"""Words, tables and figures of the sensitivity analyses (results of helpers.analyses.sensitivity in).

Every English word of the section is here: table headers and cells, footnotes, the love plot and the
propensity-score histogram, the generated sentences of ``results.json`` (``sensitivity.text.*``) and the
caveats. Sentences that depend on the data are decided from the results: the design (randomised or
observational) sets the wording; "start year predicts the arm" appears only when
:class:`~helpers.analyses.sensitivity.StartYearAssociation` says so; "robust" only when the estimates
agree and balance is achieved on every baseline covariate of the balance table (otherwise the wording is
associational and names the covariates still imbalanced).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from helpers.analyses.sensitivity import EraAnalysis, SensitivityResults, WeightedAnalysis
from helpers.report.formatting import (format_count, format_estimate_ci, format_number, format_p, in_sentence,
                                      join_words, number_words, plural)
from helpers.stats import propensity as P
from helpers.stats.types import NotEstimable, is_estimable

ENDPOINT_NAMES = {"os": "overall survival", "pfs": "progression-free survival"}
ENDPOINT_SHORT = {"os": "OS", "pfs": "PFS"}
WEIGHT_NAMES = {"ATE": "IPTW (ATE)", "ATO": "overlap (ATO)"}
WEIGHT_LONG = {"ATE": "stabilised inverse probability of treatment weights (average treatment effect, ATE)",
               "ATO": "overlap weights (average treatment effect in the overlap population, ATO)"}
WEIGHTED_ADJECTIVE = {"ATO": "overlap-weighted", "ATE": "IPTW-weighted"}
REASONS = {
    "separation": "separates the arms (its values in one arm do not overlap those in the other)",
    "empty_arm": "no patient of one arm remains within the common support",
    "no_events_in_arm": "no event in one arm",
    "non_convergence": "the model did not converge",
    "no_common_years": "no calendar year in which both arms started treatment",
    "one_start_year": "all patients started in one calendar year",
    "hazard_ratio_not_estimable": "the weighted hazard ratio is not estimable",
}
CONVERSIONS = {True: "hazard ratio taken as a risk ratio (rare outcome)",
               False: "hazard ratio converted to a risk ratio by $\\mathrm{RR} = (1 - 0.5^{\\sqrt{\\mathrm{HR}}}) / (1 - 0.5^{\\sqrt{1/\\mathrm{HR}}})$ "
                      "for a common outcome [@vanderweele2020evalue]"}
METHODS = {
    "ps": "logistic regression of the experimental arm on the baseline covariates (R glm, binomial)",
    "c": "c-statistic (area under the ROC curve of the propensity score)",
    "smd": ("standardised mean difference: difference in (weighted) means divided by the square root of "
            "the mean of the two arms' (weighted) variances [@austin2009balance; @austin2015iptw]"),
    "cox_w": "weighted Cox model of the arm indicator, Efron ties (R coxph with weights)",
    "robust": "robust (sandwich) standard error, ignores estimation of the propensity score (R coxph robust = TRUE)",
    "boot": "percentile bootstrap of the whole pipeline (propensity model included)",
    "cox_mv": "multivariable Cox model with the propensity-score covariates, Efron ties, Wald 95% CI",
}


# ----------------------------------------------------------------------------- words for things
def term_label(term: str, res: SensitivityResults) -> str:
    """Readable label of a term: ``"sex:Female"`` -> ``"Sex: Female"``."""
    info = res.covariates
    column, _, levels = term.partition(":")
    text = "Year of treatment start" if column == "start_year" and info.label(column) == column else info.label(column)
    if not levels:
        return text
    return f"{text}: " + " or ".join(info.level_label(column, lv) for lv in levels.split("|"))


def prose_term(term: str, res: SensitivityResults) -> str:
    """A term inside a sentence: ``"sex:Female"`` -> ``"sex (female)"``, ``"diabetes:Yes"`` -> ``"diabetes"``,
    a numeric term by its label alone."""
    info = res.covariates
    column, _, levels = term.partition(":")
    text = in_sentence(term_label(column, res))
    if not levels:
        return text
    named = [info.level_label(column, lv) for lv in levels.split("|")]
    if named == ["Yes"]:
        return text
    def word(level: str) -> str:   # "Female" -> "female"; codes such as "T3-4", "N+", "EAC" keep their case
        return level[:1].lower() + level[1:] if level[1:2].isalpha() and level[1:].islower() else level
    return f"{text} ({' or '.join(word(n) for n in named)})"


def _patients(n: int) -> str:
    """"1 patient" / "2 patients"."""
    return f"{format_count(n)} patient{'' if n == 1 else 's'}"


def _terms(terms, res) -> str:
    return ", ".join(term_label(t, res) for t in terms)


def not_estimable_text(ne: NotEstimable, res: SensitivityResults | None = None) -> str:
    """``not estimable: <reason in words>``, naming the terms responsible when known."""
    terms = list(getattr(ne, "terms", ()) or ())
    reason = REASONS.get(ne.reason, ne.reason.replace("_", " "))
    if terms and res is not None:
        if ne.reason == "separation":
            return f"not estimable: {_terms(terms, res)} {reason}"
        return f"not estimable: {reason} ({_terms(terms, res)} seen in one arm only)"
    if ne.reason == "separation":
        return "not estimable: the covariates together separate the arms"
    return f"not estimable: {reason}"


def _population(where: str, res: SensitivityResults) -> str:
    if where == "era" and isinstance(res.era, EraAnalysis):
        lo, hi = res.era.years
        return f" (era {_years(lo, hi)} analysis)"
    return ""


def caveat_text(c, res: SensitivityResults) -> str:
    """One caveat in words."""
    d = c.data
    where = _population(d.get("population", ""), res)
    if c.kind == "positivity":
        names = _terms(d["terms"], res) or "a covariate level"
        return (f"positivity{where}: {names} occurs in one arm only; {_patients(d['n_excluded'])} outside the "
                f"common support {'is' if d['n_excluded'] == 1 else 'are'} excluded from the adjusted analyses")
    if c.kind == "imbalance":
        return (f"with {WEIGHT_NAMES[d['estimand']]} weights |SMD| ≥ {res.choices.smd_target:g} remains for "
                + _terms(d["terms"], res))
    if c.kind == "low_epv":
        model = "Cox adjusted for the propensity covariates" + (" and start year" if d["model"] == "year_adjusted"
                                                                 else "")
        return (f"{model}, {ENDPOINT_NAMES[d['endpoint']]}: {format_count(d['events'])} {plural(d['events'], 'event')} "
                f"for {format_count(d['parameters'])} {plural(d['parameters'], 'parameter')} "
                f"({d['events'] / d['parameters']:.1f} per parameter, below the usual 10)")
    if c.kind == "bootstrap_failures":
        return f"{format_count(d['n_failed'])} of {format_count(d['n_boot'])} bootstrap replicates{where} could not be estimated and were left out"
    if c.kind == "excluded_missing":
        return (f"{res.covariates.label(d['variable'])} has {format_count(d['n'])} {plural(d['n'], 'missing value')} and was "
                "left out of the propensity model")
    if c.kind == "not_estimable":
        what = {"propensity_score": "propensity score", "hazard_ratio": "hazard ratio", "era": "era analysis"}.get(
            d.get("what"), str(d.get("what", "")).replace("_", " "))
        ne = P.PropensityNotEstimable(d.get("what", ""), d.get("reason", ""), tuple(d.get("terms", ())))
        ctx = ", ".join(x for x in (ENDPOINT_NAMES.get(d.get("endpoint"), ""),
                                    WEIGHT_NAMES.get(d.get("estimand"), "")) if x)
        return f"{what}{where}{', ' + ctx if ctx else ''}: {not_estimable_text(ne, res)}"
    return c.kind.replace("_", " ")


def caveat_sentences(res: SensitivityResults) -> list[str]:
    out = []
    for c in res.caveats:
        text = caveat_text(c, res)
        if text not in out:
            out.append(text)
    return out


def _ordinal(x: float) -> str:
    n = f"{x:g}"
    if not float(x).is_integer():
        return f"{n}th"
    k = int(x)
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def _smd(v) -> str:
    """An SMD to 2 decimals; ±∞ when both arms are constant at different values."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:.2f}"


def _fmt_hr(f, lo="lower", hi="upper") -> str:
    if not is_estimable(f) or f.get(lo) is None:
        return "NE"
    return format_estimate_ci(f["hr"], f[lo], f[hi], digits=2).replace("95% CI ", "")


def _text_hr(f, boot: bool = True) -> str:
    if isinstance(f, NotEstimable):
        return not_estimable_text(f)
    if not is_estimable(f) or f.get("hr") is None:
        return "not estimable"
    lo, hi = (f["boot_lower"], f["boot_upper"]) if boot and "boot_lower" in f else (
        (f["lower_naive"], f["upper_naive"]) if "lower_naive" in f else (f["lower"], f["upper"]))
    return format_estimate_ci(f["hr"], lo, hi, digits=2)


def ci_label(res: SensitivityResults) -> str:
    """Short name of the weighted HRs' CI, for table cells and headers."""
    if res.ci_method == "bootstrap":
        return f"percentile bootstrap ({format_count(res.choices.n_bootstrap)} replicates)"
    return "robust (sandwich) SE, ignores PS estimation"


def ci_sentence(res: SensitivityResults) -> str:
    """The methods sentence(s) on the weighted HRs' confidence interval."""
    if res.ci_method == "bootstrap":
        return (f"Its 95% confidence interval is a percentile bootstrap interval from "
                f"{res.choices.n_bootstrap:,} resamples of all patients (with replacement); every resample "
                "repeats the whole pipeline (common-support exclusion, propensity model, weights and "
                "truncation, Cox model), so the interval reflects the uncertainty of the estimated "
                f"propensity score; the resamples come from the seed of the analysis plan "
                f"({res.seed}). The robust (sandwich) confidence interval of the weighted Cox model "
                "is shown for comparison: it treats the "
                "weights as known and can be biased [@austin2016].")
    reason = (f"with {len(res.all_patients):,} patients (more than {P.BOOTSTRAP_MAX_N:,}, the limit of the "
              "automatic choice) the percentile bootstrap of the whole pipeline was not run"
              if res.choices.ci_method == "auto" else "the analysis was set to use it")
    return ("Its 95% confidence interval uses the robust (sandwich) variance of the weighted Cox model; "
            "it treats the weights as known, which ignores "
            f"the uncertainty of the estimated propensity score [@austin2016]; {reason}.")


# ----------------------------------------------------------------------------- tables
def make_ps_model_table(res: SensitivityResults) -> pd.DataFrame:
    """Propensity model coefficients as odds ratios with Wald 95% CI (R ``exp(confint.default(glm))``)."""
    header = f"Odds ratio for {res.arms.experimental_label} (95% CI)"
    if not res.estimable:
        return pd.DataFrame({"Covariate": ["Propensity model"], header: [not_estimable_text(res.main, res)],
                             "P (Wald)": ["—"]})
    c = res.ps_fit.coefficients
    c = c[c["term"] != "(Intercept)"]
    q = stats.norm.ppf(0.975)
    return pd.DataFrame({
        "Covariate": [term_label(t, res) for t in c["term"]],
        header: [_fmt_hr({"hr": math.exp(b), "lower": math.exp(b - q * s), "upper": math.exp(b + q * s)})
                 for b, s in zip(c["log_odds"], c["se"])],
        "P (Wald)": [format_p(p) for p in c["p"]]})


def make_weight_table(res: SensitivityResults) -> pd.DataFrame:
    """Weight distribution per scheme and arm (sum, min, median, max, Kish effective sample size)."""
    if not res.estimable:
        return pd.DataFrame({"Weights": ["—"], "Arm": ["—"], "n": ["—"], "Note": [not_estimable_text(res.main, res)]})
    s = P.summarize_weights(res.weights, res.ps_fit.treated, (res.arms.reference_label, res.arms.experimental_label))
    names = {"ATE": "Stabilised IPTW (ATE)", "ATO": "Overlap (ATO)"}
    return pd.DataFrame({"Weights": s["weights"].map(names), "Arm": s["arm"], "n": s["n"].map(format_count),
                         "Sum": s["sum"].map(lambda v: f"{v:,.1f}"), "Min": s["min"].map(lambda v: f"{v:.2f}"),
                         "Median": s["median"].map(lambda v: f"{v:.2f}"), "Max": s["max"].map(lambda v: f"{v:.2f}"),
                         "Effective n": s["ess"].map(lambda v: f"{v:,.1f}")})


def make_balance_display(res: SensitivityResults) -> pd.DataFrame:
    """Balance table: unweighted means/percentages by arm and SMD unweighted, IPTW and overlap († = not in model)."""
    b = res.balance
    arms = res.arms
    out = pd.DataFrame({"Covariate": [term_label(t, res) + ("" if m else " †") for t, m in zip(b["term"], b["in_model"])]})

    def mean_text(v, binary):
        if v is None or not np.isfinite(v):
            return "—"
        return f"{100 * v:.1f}%" if binary else f"{v:.1f}"

    out[arms.reference_label] = [mean_text(v, x) for v, x in zip(b[f"mean_{arms.reference}"], b["binary"])]
    out[arms.experimental_label] = [mean_text(v, x) for v, x in zip(b[f"mean_{arms.experimental}"], b["binary"])]
    out["SMD unweighted"] = b["smd_unweighted"].map(_smd)
    for key in P.ESTIMANDS:
        if f"smd_{key}" in b.columns:
            out[f"SMD {WEIGHT_NAMES[key]}"] = b[f"smd_{key}"].map(_smd)
    return out


def balance_footnote(res: SensitivityResults) -> str:
    """Footnote of the balance table: SMD formula, target, dagger meaning, dropped terms."""
    text = (f"SMD: standardised mean difference, {res.arms.experimental_label} minus {res.arms.reference_label}, "
            "(weighted) mean difference over the square root of the mean of the two arms' (weighted) variances "
            "[@austin2009balance; @austin2015iptw]; a covariate constant in the analysed patients has SMD 0; "
            f"target |SMD| < {res.choices.smd_target:g}. Means and percentages are unweighted. † Not in the "
            "propensity model (shown for balance only).")
    if not res.estimable:
        return text + f" Weighted SMDs: {not_estimable_text(res.main, res)}."
    dropped = res.ps_fit.support.dropped_terms
    if dropped:
        text += (f" Not shown: {'; '.join(term_label(t, res) for t in dropped)}, a level seen in one arm only; its "
                 f"{_patients(len(res.ps_fit.support.excluded))} "
                 f"{'was' if len(res.ps_fit.support.excluded) == 1 else 'were'} excluded from the weighted analyses "
                 "(no common support).")
    return text


def _hr_row(res, name, n, fits, ci, lo="lower", hi="upper"):
    row = {"Analysis": name, "Patients": format_count(n)}
    for ep in ("os", "pfs"):
        if ep in res.endpoints:
            f = fits.get(ep) if isinstance(fits, dict) else fits
            row[f"{ENDPOINT_SHORT[ep]} HR (95% CI)"] = (_fmt_hr(f, lo, hi) if is_estimable(f)
                                                        else not_estimable_text(f, res) if isinstance(f, NotEstimable)
                                                        else "NE")
    row["CI"] = ci
    return row


def make_hr_table(res: SensitivityResults, stratified=None, study=None) -> pd.DataFrame:
    """Arm hazard ratios (experimental vs reference) of every analysis, with the CI method of each row.

    The main treatment-effect table: unadjusted, multivariable, weighted, start-year-adjusted and era
    estimates per endpoint side by side; with ``stratified`` (:func:`helpers.analyses.subgroups.run_stratified`
    results with factors declared; ``study`` for the factor names) also the unstratified and stratified
    log-rank P and the stratified Cox hazard ratio.
    """
    n_all, n = len(res.all_patients), len(res.patients)
    u, a, y = res.unadjusted, res.adjusted, res.year_adjusted
    boot = ci_label(res)
    rows = [_hr_row(res, "Unadjusted Cox, all patients", n_all, u["all"], "Wald", "lower_naive", "upper_naive"),
            _hr_row(res, "Unadjusted Cox, common support", n, u["support"], "Wald", "lower_naive", "upper_naive"),
            _hr_row(res, "Cox adjusted for the propensity covariates", n, a, "Wald")]
    for est in P.ESTIMANDS:
        name = ("IPTW (ATE), stabilised" + (", truncated" if res.choices.trim_quantiles else "")
                if est == "ATE" else "Overlap weights (ATO)")
        fits = res.weighted[est] if res.estimable else res.main
        rows.append(_hr_row(res, name, n, fits, boot, "boot_lower", "boot_upper"))
        if res.ci_method == "bootstrap" and res.estimable:
            rows.append(_hr_row(res, name, n, fits, "robust (sandwich) SE, ignores PS estimation"))
    era = res.era
    if _one_year(res):
        rows.append(_hr_row(res, "Cox adjusted for the propensity covariates and start year; calendar era", "—",
                            era, "—"))
        return _with_stratified(rows, res, stratified, study)
    rows.append(_hr_row(res, "Cox adjusted for the propensity covariates and start year", n, y, "Wald"))
    if isinstance(era, EraAnalysis):
        lo, hi = era.years
        rows.append(_hr_row(res, f"Era {_years(lo, hi)}: unadjusted Cox", era.n_all, era.unadjusted, "Wald",
                            "lower_naive", "upper_naive"))
        w = era.weighted
        era_name = f"Era {_years(lo, hi)}: " + ("overlap weights" if res.choices.estimand == "ATO" else "IPTW")
        rows.append(_hr_row(res, era_name, len(w.kept) if isinstance(w, WeightedAnalysis) else era.n_all,
                            w.fits[res.choices.estimand] if isinstance(w, WeightedAnalysis) else w, boot,
                            "boot_lower", "boot_upper"))
    else:
        rows.append(_hr_row(res, "Calendar era", 0, era, "—"))
    return _with_stratified(rows, res, stratified, study)


def _one_year(res: SensitivityResults) -> bool:
    """Whether every patient started treatment in one calendar year (start year left out, era not estimable)."""
    return isinstance(res.era, NotEstimable) and res.era.reason == "one_start_year"


def _with_stratified(rows: list, res: SensitivityResults, stratified, study) -> pd.DataFrame:
    if stratified is not None and getattr(stratified, "active", False):
        rows += _stratified_rows(res, stratified, study)
        return pd.DataFrame(rows).rename(columns={f"{ENDPOINT_SHORT[ep]} HR (95% CI)":
                                                  f"{ENDPOINT_SHORT[ep]}: HR (95% CI) or log-rank P"
                                                  for ep in res.endpoints})
    return pd.DataFrame(rows)


def _stratified_rows(res: SensitivityResults, stratified, study) -> list[dict]:
    """Rows of the stratified analyses for :func:`make_hr_table` (log-rank P rows show "P = ..." cells)."""
    from helpers.report.subgroups import describe_factors

    n_all = len(res.all_patients) - stratified.n_missing
    strata = describe_factors(stratified, study) if study is not None else "the declared factors"

    def p_cell(lr):
        return (f"P = {format_p(lr.test.p)}".replace("= <", "< ") if is_estimable(lr)
                else not_estimable_text(lr, res))

    def row(name, n, fn, ci):
        out = {"Analysis": name, "Patients": format_count(n)}
        for ep in ("os", "pfs"):
            if ep in res.endpoints:
                r = stratified.endpoints.get(ep)
                out[f"{ENDPOINT_SHORT[ep]} HR (95% CI)"] = fn(r) if r is not None else "—"
        out["CI"] = ci
        return out

    return [row("Log-rank test, unstratified", len(res.all_patients), lambda r: p_cell(r.logrank_unstratified), "—"),
            row(f"Log-rank test stratified by {strata}", n_all, lambda r: p_cell(r.logrank), "—"),
            row(f"Cox stratified by {strata}", n_all,
                lambda r: (_fmt_hr({"hr": r.cox.hr.value, "lower": r.cox.hr.lower, "upper": r.cox.hr.upper})
                           if is_estimable(r.cox) else not_estimable_text(r.cox, res)), "Wald")]


def hr_footnote(res: SensitivityResults, stratified=None, study=None) -> str:
    """Footnote of the hazard-ratio table: population, weights, CI methods, era window, strata, caveats."""
    trim = res.choices.trim_quantiles
    n_ex = len(res.ps_fit.support.excluded) if res.estimable else 0
    era = res.era
    era_failed = (era.weighted.bootstrap["n_failed"] if isinstance(era, EraAnalysis)
                  and isinstance(era.weighted, WeightedAnalysis) else 0)
    n_failed = res.main.bootstrap["n_failed"] if res.estimable else 0
    text = (f"HR: hazard ratio of {res.arms.experimental_label} vs {res.arms.reference_label} from Cox models with "
            "Efron ties. Common support: patients with a covariate level seen in one arm only excluded "
            f"({format_count(n_ex)} {plural(n_ex, 'patient')}). IPTW: stabilised inverse probability of treatment weights"
            + (f", truncated at the {_ordinal(100 * trim[0])} and {_ordinal(100 * trim[1])} percentiles" if trim else "")
            + f"; overlap weights: 1 − PS for {res.arms.experimental_label} and PS for {res.arms.reference_label}. ")
    if res.ci_method == "bootstrap":
        text += ("Bootstrap: percentile 95% CI from "
                 f"{format_count(res.choices.n_bootstrap)} resamples of all patients repeating common support, "
                 f"propensity model, weights and Cox model (seed {res.seed}; replicates not estimable: "
                 f"{format_count(n_failed)}"
                 + (f", {format_count(era_failed)} in the era analysis" if isinstance(era, EraAnalysis) else "") + "). "
                 "Robust SE: sandwich variance of the weighted Cox model, which treats the weights as known and is "
                 "shown for comparison only. ")
    else:
        text += ("Robust SE: sandwich variance of the weighted Cox model, which treats the weights as known; the "
                 f"percentile bootstrap was not run ({len(res.all_patients):,} patients; ci_method "
                 f"{res.choices.ci_method!r}). ")
    if not _one_year(res):
        text += "Start year: calendar year of the start of treatment, linear. "
    if isinstance(era, EraAnalysis):
        lo, hi = era.years
        text += (f"Era {_years(lo, hi)}: patients who started treatment in the years in which both arms were treated, "
                 "propensity model refitted in that subset.")
    if stratified is not None and getattr(stratified, "active", False):
        from helpers.report.subgroups import describe_factors
        text += (f" Stratified by {describe_factors(stratified, study)}: log-rank test with observed minus expected "
                 "events summed over the strata; Cox model with a separate baseline hazard per stratum.")
    caveats = caveat_sentences(res)
    return text + (" Caveats: " + "; ".join(caveats) + "." if caveats else "")


def make_evalue_table(res: SensitivityResults) -> pd.DataFrame:
    """E-values of the primary weighted hazard ratios (point estimate and CI limit)."""
    rows = []
    header = "HR (95% bootstrap CI)" if res.ci_method == "bootstrap" else "HR (95% robust CI)"
    for ep in res.endpoints:
        e = res.evalues[ep]
        if not is_estimable(e):
            rows.append({"Endpoint": ENDPOINT_NAMES[ep].capitalize(), header: not_estimable_text(e, res),
                         "Risk-ratio scale": "—", "E-value, estimate": "—", "E-value, CI limit": "—"})
            continue
        rows.append({"Endpoint": ENDPOINT_NAMES[ep].capitalize(), header: _fmt_hr(e),
                     "Risk-ratio scale": f"{e['rr']:.2f}", "E-value, estimate": f"{e['evalue_point']:.2f}",
                     "E-value, CI limit": f"{e['evalue_ci']:.2f}"})
    return pd.DataFrame(rows)


def evalue_footnote(res: SensitivityResults) -> str:
    """Footnote of the E-value table: source, conversion, CI limit used."""
    return (f"E-values [@vanderweele2017] of the {WEIGHT_NAMES[res.choices.estimand]}-weighted hazard "
            f"ratios with their {'bootstrap' if res.ci_method == 'bootstrap' else 'robust'} 95% CI; "
            f"{CONVERSIONS[bool(res.choices.rare_outcome)]}. The E-value of the CI is "
            "computed for the limit closer to 1 (1 if the CI includes 1). It is the minimum risk ratio that an "
            "unmeasured confounder would need with both treatment and outcome, beyond the measured covariates, "
            "to explain the estimate away.")


# ----------------------------------------------------------------------------- figures
def _not_estimable_figure(res, message: str):
    import matplotlib.pyplot as plt
    from helpers.report.figures import COLUMN_WIDTH_IN, style_context
    with style_context():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, COLUMN_WIDTH_IN * 0.4))
        ax.axis("off")
        ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return fig


def _arm_colour(code: str, position: int):
    from helpers.report import figures
    try:
        return figures.arm_colour(code)
    except Exception:
        return figures.OKABE_ITO[["blue", "vermillion"][position]]


def plot_ps_overlap(res: SensitivityResults, bins: int = 20):
    """Mirrored histogram of the propensity score: experimental arm above the axis, reference below."""
    import matplotlib.pyplot as plt
    from helpers.report.figures import COLUMN_WIDTH_IN, style_context
    if not res.estimable:
        return _not_estimable_figure(res, "Propensity score " + not_estimable_text(res.main, res))
    ps, t = res.ps_fit.ps.to_numpy(), res.ps_fit.treated.to_numpy()
    edges = np.linspace(0, 1, bins + 1)
    arms = res.arms
    with style_context():
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, COLUMN_WIDTH_IN * 0.8))
        h1, _ = np.histogram(ps[t == 1], edges)
        h0, _ = np.histogram(ps[t == 0], edges)
        width = np.diff(edges)
        ax.bar(edges[:-1], h1, width, align="edge", color=_arm_colour(arms.experimental, 1),
               edgecolor="white", linewidth=0.4, label=f"{arms.experimental_label} (n = {format_count(int(t.sum()))})")
        ax.bar(edges[:-1], -h0, width, align="edge", color=_arm_colour(arms.reference, 0),
               edgecolor="white", linewidth=0.4,
               label=f"{arms.reference_label} (n = {format_count(int((t == 0).sum()))})")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xlim(0, 1)
        ax.set_xlabel(f"Propensity score (probability of {arms.experimental_label})")
        ax.set_ylabel("Patients")
        # patients per bin: a count with its thousands separator (6 significant digits, as "%g")
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: format_count(float(f"{abs(v):g}"))))
        ax.legend(loc="upper right")
        ax.set_title(f"c-statistic {res.ps_fit.c_statistic:.2f}", loc="left")
        fig.tight_layout()
    return fig


#: Right end of the love plot's main panel: larger |SMD| go to a second panel past a break in the axis.
LOVE_CAP = 1.0


def plot_love(res: SensitivityResults, cap: float = LOVE_CAP):
    """Love plot: |SMD| of each covariate unweighted and under IPTW and overlap weights, a dashed line at
    the target (0.1 by default).

    The axis runs from 0 to ``cap`` (to 0.5 when all values below the cap are below it); when a covariate
    lies beyond the cap (e.g. the start year of a cohort whose arms were treated in different years), the
    axis is broken and a narrow second panel shows the values beyond the cap on their own scale, so one
    dominant covariate does not squeeze the others. Legend swatches are drawn with the markers' own style.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from helpers.report.figures import COLUMN_WIDTH_IN, FONT_SMALL_PT, OKABE_ITO, style_context
    b = res.balance.iloc[::-1]
    labels = [term_label(t, res) + ("" if m else " \u2020") for t, m in zip(b["term"], b["in_model"])]
    y = np.arange(len(b))
    series = [(col, name, marker, colour) for col, name, marker, colour in
              (("smd_unweighted", "Unweighted", "o", OKABE_ITO["black"]),
               ("smd_ATE", "IPTW (ATE)", "s", OKABE_ITO["orange"]),
               ("smd_ATO", "Overlap (ATO)", "^", OKABE_ITO["bluish_green"])) if col in b.columns]
    values = np.abs(b[[c for c, *_ in series]].to_numpy(float))
    big = values[np.isfinite(values) & (values > cap)]
    small = values[np.isfinite(values) & (values <= cap)]
    # the main panel ends at 0.5 when everything below the cap is below about 0.47, else at the cap
    right = 0.5 if cap > 0.5 and (small.max() if small.size else 0.0) <= 0.475 else cap
    target = res.choices.smd_target
    with style_context():
        height = 0.17 * len(b) + 0.9
        if big.size:
            # constrained layout keeps the labels inside the figure: it prints at the width set here
            fig, (ax, ax2) = plt.subplots(1, 2, sharey=True, figsize=(2 * COLUMN_WIDTH_IN, height),
                                          width_ratios=[4, 1], layout="constrained")
            fig.get_layout_engine().set(wspace=0.01, w_pad=0.01)
            axes = (ax, ax2)
        else:
            fig, ax = plt.subplots(figsize=(2 * COLUMN_WIDTH_IN, height), layout="constrained")
            ax2, axes = None, (ax,)

        def style(marker, colour):   # the same keywords for the points and their legend swatches
            return {"marker": marker, "markersize": 4.5, "markeredgewidth": 0.9, "linestyle": "none",
                    "markeredgecolor": colour, "markerfacecolor": "none" if marker == "o" else colour}

        for a in axes:
            for col, name, marker, colour in series:
                a.plot(b[col].abs(), y, zorder=3, **style(marker, colour))
            a.grid(axis="y", color="0.9", linewidth=0.5)
        ax.axvline(target, color="0.35", linestyle="--", linewidth=0.8, zorder=1)
        ax.set_xlim(0, right)
        ax.set_yticks(y, labels)
        ax.set_ylim(-0.7, len(b) - 0.3)
        ax.set_xlabel("Absolute standardised mean difference")
        ax.text(target, len(b) - 0.3, f" {target:g}", ha="left", va="bottom", fontsize=FONT_SMALL_PT, color="0.35")
        if ax2 is not None:
            lo, hi = float(big.min()), float(big.max())
            pad = max(0.05, 0.15 * (hi - lo))
            ax2.set_xlim(lo - pad, hi + pad)
            ax2.spines["left"].set_visible(False)
            ax2.tick_params(axis="y", left=False)
            ax2.xaxis.set_major_locator(plt.MaxNLocator(2))
            # break marks on the axis line, between the panels
            kw = {"marker": [(-1, -1.6), (1, 1.6)], "markersize": 6, "linestyle": "none", "color": "k",
                  "mec": "k", "mew": 0.6, "clip_on": False}
            ax.plot([1], [0], transform=ax.transAxes, **kw)
            ax2.plot([0], [0], transform=ax2.transAxes, **kw)
        handles = [Line2D([], [], label=name, **style(marker, colour)) for _, name, marker, colour in series]
        ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.02), ncol=len(handles),
                  frameon=False, handletextpad=0.3, columnspacing=1.2)
    plt.close(fig)
    return fig


def plot_weighted_km(res: SensitivityResults, estimand: str | None = None, study=None,
                     break_months: float = 6, xmax: float | None = None):
    """Weighted Kaplan-Meier curves per endpoint by arm with pointwise 95% CI bands (Greenwood on the
    weighted counts, :func:`helpers.stats.survival.fit_km` with weights), the unweighted curves thin and
    dotted for reference, and the weighted numbers at risk below the axes.

    The time axis is that of the main Kaplan-Meier figures (:func:`helpers.report.figures.plot_km`):
    breaks every ``break_months`` (the plan's ``survival.break_months``) up to ``xmax`` (the plan's
    ``survival.xmax_months``), or up to the last follow-up time of the endpoint in ``study`` (all
    patients, as the main figures) rounded up to a break; when the axis ends before the last follow-up
    of the weighted population, a line under the numbers at risk says so.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, PercentFormatter

    from helpers.report.figures import (COLUMN_WIDTH_IN, _break_grid, arm_linestyle, draw_risk_table,
                                        style_context)
    from helpers.stats import survival as sv
    if not res.estimable:
        return _not_estimable_figure(res, "Weighted curves " + not_estimable_text(res.main, res))
    est = estimand or res.choices.estimand
    p, t, w = res.patients, res.ps_fit.treated.to_numpy(), res.weights[est]
    eps = list(res.endpoints)
    arms = ((0, res.arms.reference, res.arms.reference_label),
            (1, res.arms.experimental, res.arms.experimental_label))
    n_rows = 1 + len(arms) + 3    # heading, one row per arm, the axis note (three lines; blank when not truncated)
    with style_context():
        width = 2 * COLUMN_WIDTH_IN if len(eps) > 1 else COLUMN_WIDTH_IN
        fig = plt.figure(figsize=(width, 2.45 + 0.2 * n_rows))
        gs = fig.add_gridspec(2, len(eps), height_ratios=[2.3, 0.2 * n_rows], hspace=0.5, wspace=0.45)
        first = None
        for j, ep in enumerate(eps):
            ax = fig.add_subplot(gs[0, j], sharey=first)
            first = first or ax
            tab = fig.add_subplot(gs[1, j], sharex=ax)
            tcol, ecol = P.ENDPOINTS[ep]
            times = p[tcol].to_numpy(float)
            source = study.patients if study is not None and tcol in study.patients.columns else p
            t_max = float(np.nanmax(source[tcol].to_numpy(float))) if xmax is None else float(xmax)
            breaks = _break_grid(t_max, break_months)
            x_right = breaks[-1]
            rows = []
            for pos, code, label in arms:
                s = t == pos
                ts, es, ws = times[s], p[ecol].to_numpy()[s], w[s]
                colour = _arm_colour(code, pos)
                km_w = sv.km_steps(ts, es, weights=ws)
                x = km_w["time"].to_numpy(float)
                lo, hi = km_w["lower"].to_numpy(float), km_w["upper"].to_numpy(float)
                ok = np.isfinite(lo) & np.isfinite(hi)
                ax.fill_between(x[ok], lo[ok], hi[ok], step="post", color=colour, alpha=0.14, lw=0, zorder=1)
                ax.step(x, km_w["surv"], where="post", color=colour, linestyle=arm_linestyle(pos), lw=1.1,
                        zorder=3, label=f"{label}, {WEIGHT_NAMES[est]}")
                km_u = P.fit_weighted_km(ts, es)
                ax.step(km_u["time"], km_u["surv"], where="post", color=colour, linestyle=":", linewidth=0.7,
                        alpha=0.8, zorder=2, label=f"{label}, unweighted")
                rows.append((label, colour, sv.number_at_risk(ts, es, breaks, weights=ws)["n_risk"]))
            beyond = times > x_right
            note = ([f"Axis ends at {x_right:g} months;", f"follow-up to {format_number(float(times.max()))} months",
                     f"({_patients(int(beyond.sum()))} beyond)."] if beyond.any() else None)
            draw_risk_table(tab, [("Weighted number at risk", rows)], breaks, n_rows,
                            note=note, fmt=lambda v: f"{v:.0f}")   # weighted sums, rounded
            f = res.weighted[est][ep]
            ax.set_title(f"{ENDPOINT_NAMES[ep].capitalize()}\nweighted HR {_fmt_hr(f, 'boot_lower', 'boot_upper')}",
                         loc="left")
            ax.set_xlabel("Months since start of treatment")
            ax.set_ylim(0, 1.02)
            ax.set_xlim(0, x_right * 1.01)
            ax.xaxis.set_major_locator(FixedLocator(breaks))
            ax.yaxis.set_major_locator(FixedLocator([0, 0.25, 0.5, 0.75, 1.0]))
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            if j == 0:
                ax.set_ylabel("Survival probability (%)")
            else:
                ax.tick_params(labelleft=False)
        handles, labels = first.get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1.0), ncol=2,
                   handlelength=2.2, columnspacing=1.2)
        fig.subplots_adjust(top=0.76)
    plt.close(fig)
    return fig


# ----------------------------------------------------------------------------- sentences
def describe_overlap(res: SensitivityResults) -> dict:
    """Sentences on the propensity model's discrimination and the overlap of the arms' scores."""
    if not res.estimable:
        text = not_estimable_text(res.main, res)
        return {"ps_discrimination": f"could not be fitted ({text})", "ps_overlap": "the overlap is not assessable",
                "ps_range": "not estimable"}
    c = res.ps_fit.c_statistic
    grade = ("little" if c < 0.6 else "modestly" if c < 0.7 else "moderately" if c < 0.8 else "strongly")
    ps, t = res.ps_fit.ps.to_numpy(), res.ps_fit.treated.to_numpy()
    lo, hi = max(ps[t == 1].min(), ps[t == 0].min()), min(ps[t == 1].max(), ps[t == 0].max())
    inside = int(((ps >= lo) & (ps <= hi)).sum())
    return {"ps_discrimination": f"discriminated {grade} between the arms (c-statistic {c:.2f})",
            "ps_overlap": (f"{format_count(inside)} of {format_count(len(ps))} patients had a propensity score within the range shared by "
                           f"both arms ({lo:.2f} to {hi:.2f})"),
            "ps_range": f"{lo:.2f} to {hi:.2f}"}


def _years(lo: int, hi: int) -> str:
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def start_year_sentence(res: SensitivityResults) -> str:
    """Whether the calendar year of treatment start predicts the arm, from the data."""
    a = res.start_year
    years = res.all_patients["start_year"]
    if years.nunique() == 1:
        return (f"Every patient started treatment in {int(years.iloc[0])}, so the year of treatment start "
                "cannot confound the comparison and is left out of the models.")
    if not a.overlap:
        return ("The year of treatment start separates the arms completely (no calendar year has patients of "
                "both arms), so it cannot enter the propensity model and no era analysis is possible.")
    if a.predicts_arm:
        return (f"The year of treatment start predicts the arm strongly (c-statistic {a.c_statistic:.2f}, above "
                f"{a.threshold:g}); " + ("it is in the propensity model, and the calendar-era analyses check it."
                                         if "start_year" in res.ps_terms else
                                         "it was therefore not entered in the propensity model and is handled by "
                                         "the calendar-era analyses."))
    return (f"The year of treatment start predicts the arm only partly (c-statistic {a.c_statistic:.2f}); the "
            "calendar-era analyses are shown as a check.")


def era_methods(res: SensitivityResults) -> str:
    """Methods of the calendar-era analyses; the years only when the era analysis exists."""
    if _one_year(res):
        return ("A comparison restricted to the years in which both arms were treated and a model adjusted for "
                "the year of treatment start apply only when the patients started treatment in different years.")
    years = f" ({_years(*res.era.years)})" if isinstance(res.era, EraAnalysis) else ""
    return ("The comparison was repeated in the patients who started treatment in the years in which both arms "
            f"were treated{years}, with the propensity model refitted in that subset, and a multivariable Cox "
            "model was additionally adjusted for the year of treatment start (linear).")


def design_sentence(res: SensitivityResults) -> str:
    """Why an adjusted comparison, by design."""
    if res.design == "randomised":
        return ("Treatment was randomised, so the arms differ in baseline characteristics only by chance. The "
                "weighted and adjusted analyses below check whether chance imbalance in the measured baseline "
                "characteristics affects the estimated effect; they are not needed to remove confounding.")
    return ("Treatment was not randomised, so the crude comparison of the arms may reflect differences in who "
            "was treated (confounding by indication) and when (calendar era) as well as the effect of "
            "treatment. The analyses below estimate the arm effect after accounting for the measured baseline "
            "characteristics; they cannot account for unmeasured ones, whose possible influence is quantified "
            "with E-values.")


def _imbalanced(res: SensitivityResults) -> list[str]:
    if not res.estimable:
        return []
    est = res.choices.estimand
    b = res.balance
    b = b[~b["term"].map(P.term_column).isin(res.covariates.post_baseline)]
    above = b[b[f"smd_{est}"].abs() >= res.choices.smd_target]
    return [f"{term_label(r.term, res)} (SMD {_smd(r[f'smd_{est}'])})" for _, r in above.iterrows()]


def describe_robustness(res: SensitivityResults) -> dict:
    """Per-endpoint statements and the conclusion, generated from the verdicts of the results."""
    est = res.choices.estimand
    exp = res.arms.experimental_label
    out: dict = {}
    if not res.estimable:
        why = not_estimable_text(res.main, res)
        for ep in res.endpoints:
            out[f"statement_{ep}"] = (f"The weighted {ENDPOINT_NAMES[ep]} comparison is {why}; the multivariable "
                                      f"Cox hazard ratio was {_text_hr(res.adjusted[ep])}.")
            out[f"evalue_{ep}"] = f"The E-value is {not_estimable_text(res.evalues[ep], res)}."
        out["conclusion"] = (f"The propensity-score analyses are {why}. The unadjusted and multivariable "
                             "estimates in the table are associations in the data as observed.")
        for ep in ("os", "pfs"):
            out[f"robust_{ep}"] = "no"
        return out
    verdicts = res.verdicts()
    wname = "overlap-weighted" if est == "ATO" else "IPTW"
    for ep in res.endpoints:
        v = verdicts[ep]
        name = ENDPOINT_NAMES[ep]
        word = "association"      # observational data: associations, never "benefit"
        longer = "longer" if v["direction"] == "benefit" else "shorter"
        w, adj = res.weighted[est][ep], res.adjusted[ep]
        hrs = f"{wname} HR {_text_hr(w)}, covariate-adjusted Cox HR {_text_hr(adj)}"
        if not v["estimable"]:
            first = f"The {name} hazard ratios are {not_estimable_text(w if isinstance(w, NotEstimable) else adj, res)}."
        elif v["weighted"] and v["adjusted"]:
            first = (f"The association of {exp} with {longer} {name} remained after adjustment for the measured "
                     f"baseline covariates: {hrs}.")
        elif v["weighted"] or v["adjusted"]:
            first = f"The {name} association with {exp} was not consistent across adjustment methods: {hrs}."
        else:
            first = f"After adjustment for the measured baseline covariates the {name} difference was compatible with no effect: {hrs}."
        if isinstance(res.era, EraAnalysis):
            lo, hi = res.era.years
            era_w = res.era.weighted
            era = era_w.fits[est][ep] if isinstance(era_w, WeightedAnalysis) else era_w
            where = f"patients who started treatment in {_years(lo, hi)}, when both arms were treated"
            if not v["estimable"]:
                second = ""
            elif res.era.n_all == len(res.all_patients):
                second = ("Every patient started treatment in the years in which both arms were treated, so the "
                          "calendar-era analysis equals the main one.")
            elif not (v["weighted"] or v["adjusted"]):
                second = f"Restricted to {where}: {wname} HR {_text_hr(era)}."
            elif v["era"]:
                second = f"The {word} was also seen in the {where}: {wname} HR {_text_hr(era)}."
            elif v["era_direction"]:
                second = (f"Restricted to {where}, the estimate pointed the same way but its CI included 1: "
                          f"{wname} HR {_text_hr(era)}.")
            else:
                second = f"Restricted to {where}, the {word} was not seen: {wname} HR {_text_hr(era)}."
        elif _one_year(res):
            second = ""          # said once, in era_sentence
        else:
            second = f"The calendar-era analysis is {not_estimable_text(res.era, res)}."
        out[f"statement_{ep}"] = f"{first} {second}".strip()
        ev = res.evalues[ep]
        if not is_estimable(ev):
            out[f"evalue_{ep}"] = f"The E-value is {not_estimable_text(ev, res)}."
        elif ev["evalue_ci"] > 1:
            out[f"evalue_{ep}"] = (f"To explain away the {name} hazard ratio, an unmeasured confounder would need to be "
                                   f"associated with both receiving {exp} and the outcome by a risk ratio of at least "
                                   f"{ev['evalue_point']:.2f} each, beyond the measured covariates; a weaker confounder "
                                   f"(risk ratio {ev['evalue_ci']:.2f} each) could move the 95% CI to include 1.")
        else:
            out[f"evalue_{ep}"] = (f"The 95% CI of the {name} hazard ratio already includes 1; an unmeasured confounder "
                                   f"associated with treatment and outcome by a risk ratio of {ev['evalue_point']:.2f} "
                                   f"each could explain away the point estimate.")
    imbalanced = _imbalanced(res)
    eps = list(res.endpoints)
    consistent = [ep for ep in eps if verdicts[ep]["consistent"]]
    robust = [ep for ep in eps if verdicts[ep]["robust"]]

    def names(x):
        return " and ".join(ENDPOINT_NAMES[e] for e in x)

    bal = P.balance_summary(res.balance, res.choices.smd_target)[est]
    bal_model = (f"with {WEIGHT_NAMES[est]} weights the {number_words(bal['n_terms'])} "
                 f"{plural(bal['n_terms'], 'propensity-model covariate')} {plural(bal['n_terms'], 'was', 'were')} "
                 "balanced"
                 if bal["achieved"] else f"with {WEIGHT_NAMES[est]} weights balance was not achieved for "
                 + _terms(bal["terms_above_target"], res))
    missing = [ep for ep in eps if not verdicts[ep]["estimable"]]
    null = [ep for ep in eps if not verdicts[ep]["weighted"] and not verdicts[ep]["adjusted"] and ep not in missing]
    mixed = [ep for ep in eps if ep not in consistent and ep not in null and ep not in missing]
    parts = []
    if robust:
        parts.append(f"The {names(robust)} association with {exp} is robust to the measured confounders ({bal_model}, "
                     "and every baseline covariate of the balance table was balanced).")
    assoc = [ep for ep in consistent if ep not in robust]
    if assoc:
        analyses = ("weighted, multivariable and calendar-era analyses" if all(verdicts[e]["era_available"] for e in assoc)
                    else "weighted and multivariable analyses")
        text = f"The {names(assoc)} association with {exp} persisted across the {analyses} ({bal_model})."
        if imbalanced:
            text += (f" Because balance was not achieved for {format_count(len(imbalanced))} "
                     f"{plural(len(imbalanced), 'covariate')} of the balance table (listed above)"
                     + ", these estimates remain associations that may be confounded by those characteristics; "
                     "they do not show that the result is free of confounding.")
        else:
            text += " They remain associations."
        parts.append(text)
    if mixed:
        parts.append(f"The {names(mixed)} association with {exp} was not consistent across adjustment methods "
                     f"({bal_model}); the estimates are associations.")
    if null:
        parts.append(f"After adjustment for the measured baseline covariates the {names(null)} difference between "
                     f"the arms was compatible with no effect: the 95% CIs of the weighted and multivariable hazard "
                     f"ratios included 1 ({bal_model}).")
    for ep in missing:
        w = res.weighted[est][ep]
        parts.append(f"The {ENDPOINT_NAMES[ep]} hazard ratios are "
                     f"{not_estimable_text(w if isinstance(w, NotEstimable) else res.adjusted[ep], res)}.")
    if not res.start_year.overlap:
        parts.append("No calendar year had patients of both arms, so the arm effect cannot be separated from "
                     "changes over calendar time.")
    core = " ".join(parts)
    if res.design == "randomised":
        tail = (" Treatment was randomised: these analyses check chance imbalance in the measured covariates, "
                "and the unadjusted comparison remains the primary one.")
    else:
        tail = (" Unmeasured confounding cannot be excluded in a non-randomised comparison; the E-values give the "
                "strength it would need.")
    out["conclusion"] = core.rstrip() + tail
    for ep in ("os", "pfs"):
        out[f"robust_{ep}"] = "yes" if ep in robust else "no"
    return out


# ----------------------------------------------------------------------------- results.json
def _hr_payload(f, ci: str) -> dict:
    if not is_estimable(f) or f.get("hr") is None:
        return {"hr": None, "not_estimable": getattr(f, "reason", None)}
    out = {"hr": f["hr"], "coef": f["coef"], "ci_method": ci}
    if "boot_lower" in f:
        out.update({"lower": f["boot_lower"], "upper": f["boot_upper"], "boot_se_log": f["boot_se_log"],
                    "boot_n_valid": f["boot_n_valid"], "robust_lower": f["lower"], "robust_upper": f["upper"],
                    "robust_se_log": f["se_robust"], "p_robust": f["p"]})
    else:
        out.update({"lower": f["lower_naive"], "upper": f["upper_naive"], "p": f["p_naive"]})
    return out


def _adjusted_payload(f) -> dict:
    if not is_estimable(f):
        return {"hr": None, "not_estimable": f.reason}
    return {**f, "ci_method": "Wald"}


def _weighted_payload(w, est, endpoints, boot_ci) -> dict:
    if not isinstance(w, WeightedAnalysis):
        return {ep: {"hr": None, "not_estimable": w.reason} for ep in endpoints}
    return {ep: _hr_payload(w.fits[est][ep], boot_ci) for ep in endpoints}


def sensitivity_payload(res: SensitivityResults) -> dict:
    """The ``sensitivity`` section of results.json (numbers plus ready-formatted ``text`` strings)."""
    ch = res.choices
    arms = res.arms
    eps = list(res.endpoints)
    boot_ci = (f"percentile bootstrap, {ch.n_bootstrap} replicates (seed {res.seed})" if res.ci_method == "bootstrap"
               else "robust (sandwich) variance")
    est = ch.estimand
    era = res.era
    ok = res.estimable
    support = res.ps_fit.support if ok else None
    t = res.ps_fit.treated.to_numpy() if ok else P.treatment_indicator(res.all_patients, arms.experimental)
    weights_summary = (P.summarize_weights(res.weights, t, (arms.reference, arms.experimental)) if ok
                       else pd.DataFrame(columns=["weights"]))
    bal = P.balance_summary(res.balance, ch.smd_target)
    bal_all = P.balance_summary(res.balance, ch.smd_target, model_only=False)
    era_ok = isinstance(era, EraAnalysis) and isinstance(era.weighted, WeightedAnalysis)
    era_years = list(era.years) if isinstance(era, EraAnalysis) else None
    conversion = CONVERSIONS[bool(ch.rare_outcome)]
    table = res.balance.drop(columns=["binary"]).assign(label=[term_label(x, res) for x in res.balance["term"]])
    payload = {
        "config": {"ps_covariates": list(res.ps_terms), "estimand": est,
                   "trim_quantiles": list(ch.trim_quantiles) if ch.trim_quantiles else None,
                   "n_bootstrap": ch.n_bootstrap, "seed": res.seed, "era_years": era_years,
                   "ci_method": ch.ci_method, "ci_method_used": res.ci_method,
                   "bootstrap_max_n": P.BOOTSTRAP_MAX_N, "workers": res.workers, "design": res.design,
                   "treated_arm": arms.experimental, "reference_arm": arms.reference},
        "population": {"n_all": int(len(res.all_patients)), "n": int(len(res.patients)),
                       "n_excluded": int(len(support.excluded)) if ok else 0,
                       "excluded_by_arm": support.excluded["arm"].astype(str).value_counts().to_dict() if ok else {},
                       "dropped_terms": support.dropped_terms if ok else [],
                       "n_by_arm": {arms.reference: int((t == 0).sum()), arms.experimental: int((t == 1).sum())}},
        "ps": ({"terms": res.ps_fit.terms, "c_statistic": res.ps_fit.c_statistic,
                "coefficients": res.ps_fit.coefficients, "converged": res.ps_fit.converged} if ok else
               {"not_estimable": res.main.reason, "terms": list(getattr(res.main, "terms", ()))}),
        "iptw": {"weights": weights_summary[weights_summary["weights"] == "ATE"],
                 **_weighted_payload(res.main, "ATE", eps, boot_ci)},
        "overlap": {"weights": weights_summary[weights_summary["weights"] == "ATO"],
                    **_weighted_payload(res.main, "ATO", eps, boot_ci)},
        "unadjusted": {k: {ep: _hr_payload(v[ep], "Wald") for ep in eps} for k, v in res.unadjusted.items()},
        "adjusted": {ep: _adjusted_payload(res.adjusted[ep]) for ep in eps},
        "evalue": {ep: ({**res.evalues[ep], "estimand": est, "conversion": conversion}
                        if is_estimable(res.evalues[ep]) else {"not_estimable": res.evalues[ep].reason})
                   for ep in eps},
        "balance": {"model_terms": bal, "all_terms": bal_all, "target": ch.smd_target, "table": table,
                    "achieved_all_baseline": res.balance_achieved_all()},
        "start_year": {"c_statistic": res.start_year.c_statistic, "overlap": res.start_year.overlap,
                       "predicts_arm": res.start_year.predicts_arm, "threshold": res.start_year.threshold,
                       "smd_unweighted": res.start_year.smd},
        "bootstrap": {"n": ch.n_bootstrap, "seed": res.seed,
                      "failed": res.main.bootstrap["n_failed"] if ok else None,
                      "method": (f"percentile bootstrap, {ch.n_bootstrap} resamples of patients, whole pipeline "
                                 f"(seed {res.seed})" if res.ci_method == "bootstrap" else
                                 f"robust (sandwich) variance of the weighted Cox model, {len(res.all_patients):,} patients")},
        "methods": {**METHODS, "weights": WEIGHT_LONG, "primary": WEIGHT_LONG[est], "evalue_conversion": conversion},
        "caveats": caveat_sentences(res),
        "verdicts": res.verdicts(),
    }
    if isinstance(era, EraAnalysis):
        w = era.weighted
        kept_t = w.ps_fit.treated.to_numpy() if era_ok else None
        payload["era"] = {
            "years": era_years, "n": int(len(w.kept)) if era_ok else era.n_all,
            "n_by_arm": ({arms.reference: int((kept_t == 0).sum()), arms.experimental: int((kept_t == 1).sum())}
                         if era_ok else era.n_by_arm),
            "n_excluded_support": w.n_excluded if era_ok else None,
            "c_statistic": w.ps_fit.c_statistic if era_ok else None,
            "iptw": _weighted_payload(w, "ATE", eps, boot_ci), "overlap": _weighted_payload(w, "ATO", eps, boot_ci),
            "unadjusted": {ep: _hr_payload(era.unadjusted[ep], "Wald") for ep in eps},
            "balance": P.balance_summary(w.balance, ch.smd_target) if era_ok else None,
            "bootstrap_failed": w.bootstrap["n_failed"] if era_ok else None,
            "start_year_adjusted": {ep: _adjusted_payload(res.year_adjusted[ep]) for ep in eps}}
    else:
        payload["era"] = {"years": None, "not_estimable": era.reason,
                          "start_year_adjusted": {ep: _adjusted_payload(res.year_adjusted[ep]) for ep in eps}}
    payload["text"] = sensitivity_text(res, payload)
    return payload


def sensitivity_text(res: SensitivityResults, payload: dict) -> dict:
    """The ``sensitivity.text`` strings the prose quotes."""
    ch = res.choices
    est = ch.estimand
    arms = res.arms
    ok = res.estimable
    era = res.era
    support = res.ps_fit.support if ok else None
    n_ex = len(support.excluded) if ok else 0
    text = {
        "c_statistic": format_number(res.ps_fit.c_statistic, 2) if ok else "not estimable",
        "n_analysed": format_count(len(res.patients)),
        "n_all": format_count(len(res.all_patients)),
        "n_excluded": format_count(n_ex),
        "excluded_reason": (_terms(support.dropped_terms, res) or "none") if ok else "none",
        "ps_covariates": join_words([prose_term(x, res) for x in (res.ps_fit.terms if ok else
                                                                   P.expand_terms(res.all_patients, res.ps_terms))]),
        "n_ps_terms": format_count(len(res.ps_fit.terms)) if ok else "0",
        "trim": (f"{_ordinal(100 * ch.trim_quantiles[0])} and {_ordinal(100 * ch.trim_quantiles[1])} percentiles"
                 if ch.trim_quantiles else "no truncation"),
        "n_bootstrap": f"{ch.n_bootstrap:,}",
        "seed": str(res.seed),
        "bootstrap_failed": format_count(res.main.bootstrap["n_failed"]) if ok else "0",
        "primary": WEIGHT_NAMES[est],
        "evalue_conversion": CONVERSIONS[bool(ch.rare_outcome)],
        "ci_sentence": ci_sentence(res),
        "ci_name": "bootstrap" if res.ci_method == "bootstrap" else "robust",
        "design_sentence": design_sentence(res),
        "start_year_sentence": start_year_sentence(res),
        "era_methods": era_methods(res),
        "balance_information": ("Baseline covariates outside the propensity model"
                                + (", and the year of treatment start," if "start_year" in res.balance_terms
                                   and "start_year" not in res.ps_terms else "") + " are shown for information"),
        "start_year_c": format_number(res.start_year.c_statistic, 2),
        "treated_label": arms.experimental_label,
        "reference_label": arms.reference_label,
        "smd_target": f"{ch.smd_target:g}",
    }
    if isinstance(era, EraAnalysis):
        lo, hi = era.years
        e = payload["era"]
        text.update({"era_years": _years(lo, hi), "era_n": format_count(e["n"]),
                     "era_n_cmt": format_count(e["n_by_arm"][arms.reference]),
                     "era_n_ici": format_count(e["n_by_arm"][arms.experimental]),
                     "era_n_reference": format_count(e["n_by_arm"][arms.reference]),
                     "era_n_experimental": format_count(e["n_by_arm"][arms.experimental])})
    # without an era analysis these values do not exist; the era sentence says why (once)
    bal = P.balance_summary(res.balance, ch.smd_target)
    for key in P.ESTIMANDS:
        if key not in bal:
            text[f"max_smd_{key}"] = "not estimable"
            text[f"balance_{key}"] = "balance could not be assessed (" + not_estimable_text(res.main, res) + ")"
            continue
        s = bal[key]
        text[f"max_smd_{key}"] = format_number(s["max_abs_smd"], 2)
        text[f"balance_{key}"] = ((f"all {format_count(s['n_terms'])} model covariates had |SMD| < {ch.smd_target:g}"
                                   if s["n_terms"] != 1 else f"the one model covariate had |SMD| < {ch.smd_target:g}")
                                  if s["achieved"] else
                                  f"{format_count(s['n_above_target'])} of {format_count(s['n_terms'])} {plural(s['n_terms'], 'model covariate')} "
                                  f"had |SMD| ≥ {ch.smd_target:g} "
                                  f"(maximum {s['max_abs_smd']:.2f}: {_terms(s['terms_above_target'], res)})")
    text["max_smd_unweighted"] = format_number(bal["unweighted"]["max_abs_smd"], 2)
    if ok:
        others = res.balance[~res.balance["in_model"]]
        above = others[others["smd_" + est].abs() >= ch.smd_target]
        text["balance_other"] = (f"none had |SMD| ≥ {ch.smd_target:g}" if above.empty else
                                 ", ".join(f"{term_label(r.term, res)} (SMD {_smd(r[f'smd_{est}'])})"
                                           for _, r in above.iterrows())
                                 + f" had |SMD| ≥ {ch.smd_target:g} with {WEIGHT_NAMES[est]} weights")
        imbalanced = _imbalanced(res)
        text["balance_all"] = ("every baseline covariate of the balance table had |SMD| < "
                               f"{ch.smd_target:g} with {WEIGHT_NAMES[est]} weights" if not imbalanced else
                               f"with {WEIGHT_NAMES[est]} weights |SMD| ≥ {ch.smd_target:g} remained for "
                               + ", ".join(imbalanced))
    else:
        text["balance_other"] = text["balance_all"] = text["balance_ATO"]
    for ep in res.endpoints:
        text[f"hr_{ep}_unadjusted"] = _text_hr(res.unadjusted["all"][ep])
        adj, yadj = res.adjusted[ep], res.year_adjusted[ep]
        text[f"hr_{ep}_adjusted"] = (_text_hr({**adj, "lower_naive": adj["lower"], "upper_naive": adj["upper"]})
                                     if is_estimable(adj) else not_estimable_text(adj, res))
        text[f"hr_{ep}_year_adjusted"] = (_text_hr({**yadj, "lower_naive": yadj["lower"], "upper_naive": yadj["upper"]})
                                          if is_estimable(yadj) else not_estimable_text(yadj, res))
        for key in P.ESTIMANDS:
            f = res.weighted[key][ep] if ok else res.main
            text[f"hr_{ep}_{key}"] = _text_hr(f) if is_estimable(f) else not_estimable_text(f, res)
            text[f"hr_{ep}_{key}_robust"] = (_text_hr({"hr": f["hr"], "lower": f["lower"], "upper": f["upper"]},
                                                      boot=False) if is_estimable(f) else text[f"hr_{ep}_{key}"])
            if isinstance(era, EraAnalysis):
                ew = era.weighted
                ef = ew.fits[key][ep] if isinstance(ew, WeightedAnalysis) else ew
                text[f"hr_{ep}_era_{key}"] = _text_hr(ef) if is_estimable(ef) else not_estimable_text(ef, res)
            else:
                text[f"hr_{ep}_era_{key}"] = not_estimable_text(era, res)
        ev = res.evalues[ep]
        text[f"evalue_{ep}_point"] = format_number(ev["evalue_point"], 2) if is_estimable(ev) else "not estimable"
        text[f"evalue_{ep}_ci"] = format_number(ev["evalue_ci"], 2) if is_estimable(ev) else "not estimable"
    other = "ATE" if est == "ATO" else "ATO"
    text["primary_weighted"], text["secondary_weighted"] = WEIGHTED_ADJECTIVE[est], WEIGHTED_ADJECTIVE[other]
    for ep in res.endpoints:
        text[f"hr_{ep}_primary"] = text[f"hr_{ep}_{est}"]
        text[f"hr_{ep}_secondary"] = text[f"hr_{ep}_{other}"]
        text[f"hr_{ep}_era"] = text[f"hr_{ep}_era_{est}"]
    n_all = len(res.all_patients)
    if not ok:
        text["support"] = f"The propensity score is {not_estimable_text(res.main, res)}"
    elif n_ex == 0:
        text["support"] = f"All {format_count(n_all)} patients lay within the common support"
    else:
        text["support"] = (f"Of the {format_count(n_all)} patients, {format_count(n_ex)} lay outside the common support (a level seen in one "
                           f"arm only: {text['excluded_reason']}) and were excluded from the adjusted analyses, "
                           f"leaving {format_count(len(res.patients))}")
    text.update(describe_overlap(res))
    text.update(describe_robustness(res))
    text.update(combined_sentences(res, text))
    return text


def combined_sentences(res: SensitivityResults, text: dict) -> dict:
    """Paragraph-sized sentences over the endpoints present (the prose quotes these, not per-endpoint keys)."""
    eps = list(res.endpoints)
    exp = res.arms.experimental_label
    hr = []
    for ep in eps:
        year = ("." if _one_year(res) else ", and adjusting the multivariable model for the year of treatment "
                f"start gave {text[f'hr_{ep}_year_adjusted']}.")
        hr.append(f"For {ENDPOINT_NAMES[ep]} the unadjusted hazard ratio of {exp} was "
                  f"{text[f'hr_{ep}_unadjusted']}. {text[f'statement_{ep}']} The {text['secondary_weighted']} "
                  f"hazard ratio was {text[f'hr_{ep}_secondary']}" + year)
    era = res.era
    if isinstance(era, EraAnalysis):
        lo, hi = era.years
        parts = [f"{text[f'hr_{ep}_era']} for {ENDPOINT_NAMES[ep]}" for ep in eps]
        if era.n_all == len(res.all_patients):
            era_sentence = (f"Every patient started treatment in the years in which both arms were treated "
                            f"({_years(lo, hi)}), so the calendar-era analysis equals the main one.")
        else:
            era_sentence = (f"Restricted to the {text['era_n']} patients who started treatment in {_years(lo, hi)} "
                            f"({text['era_n_reference']} in the {res.arms.reference_label} arm, "
                            f"{text['era_n_experimental']} in the {exp} arm), the {text['primary_weighted']} hazard "
                            f"ratios were " + " and ".join(parts) + ".")
    else:
        era_sentence = f"The calendar-era analysis is {not_estimable_text(era, res)}."
    return {"hr_sentences": " ".join(hr), "era_sentence": era_sentence,
            "evalue_sentences": " ".join(text[f"evalue_{ep}"] for ep in eps),
            "endpoints": " and ".join(ENDPOINT_NAMES[ep] for ep in eps)}
