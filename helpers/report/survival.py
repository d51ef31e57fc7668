"""The survival section in words: tables, footnotes, results-file payload and generated sentences.

Input: :class:`helpers.analyses.survival.EndpointResult` (typed numbers with their methods) and the
study (arm labels and design from ``study.config``). Output: DataFrames for
:func:`helpers.report.formatting.show_table`, footnote strings, and the ``os`` / ``pfs`` sections of the
results file, whose ``text`` entries the prose quotes (arm-code keys such as ``median_CMT`` kept for
backward compatibility, and role keys such as ``median_reference`` for prose that reads the same for any
study).
"""
from __future__ import annotations

import math
from typing import Sequence

import pandas as pd

from helpers.analyses.survival import EndpointResult, FollowUp
from helpers.report.formatting import (RANGE_SEP, results_key, format_count, format_estimate, format_n_pct, format_not_estimable, format_number,
                                       format_p, format_p_statement)
from helpers.stats.types import NotEstimable

__all__ = ["ENDPOINT_LABELS", "arm_key", "arm_label", "arm_labels", "results_payload", "make_survival_table",
           "make_rmst_table", "make_followup_table", "survival_footnote", "rmst_footnote", "followup_footnote",
           "caveat_sentences", "design_caveat", "technical_note", "tte_payload", "make_tte_table", "tte_footnote",
           "make_piecewise_table", "piecewise_footnote", "make_followup_summary_table", "followup_summary_footnote",
           "followup_payload", "summary_sentence", "piecewise_sentence", "censoring_sentence", "ph_test_text",
           "axis_note"]

#: Endpoint -> label, shown in tables and axis titles.
ENDPOINT_LABELS = {"os": "Overall survival", "pfs": "Progression-free survival"}
#: Endpoint -> what counts as an event.
EVENT_WORDS = {"os": "death from any cause", "pfs": "progression or death"}
#: Endpoint -> state of a patient without the event (for rate sentences).
STATE_WORDS = {"os": "alive", "pfs": "alive and free of progression"}

#: Method strings kept verbatim in the results file's ``methods`` entries (backward compatible).
METHODS = {
    "km": "Kaplan-Meier estimator",
    "ci_log": "pointwise 95% CI on the log scale with Greenwood's variance (R survfit conf.type = \"log\")",
    "ci_log-log": ("pointwise 95% CI on the log(-log) scale with Greenwood's variance "
                   "(R survfit conf.type = \"log-log\")"),
    "median": ("median: first time S(t) <= 0.5, or the midpoint of a stretch where S(t) = 0.5 exactly; "
               "CI limits where the pointwise band crosses 0.5 (Brookmeyer-Crowley-type, R print.survfit)"),
    "logrank": "log-rank test (R survdiff, rho = 0)",
    "cox": "univariable Cox proportional-hazards model, Efron ties (R coxph); Wald 95% CI",
    "cox_p": "Wald P; likelihood-ratio P from the comparison with the null model",
    "rmst": ("Restricted mean survival time: area under the Kaplan-Meier curve up to tau, standard error "
             "by the Greenwood-type formula of R print(survfit, rmean = tau)"),
    "followup": "Median follow-up by the reverse Kaplan-Meier method [@schemper1996]",
    "ph_test": ("cox.zph score test of the arm's univariable Cox model, Kaplan-Meier time transform (R survival "
                ">= 3.0); when P < 0.05 the endpoint is summarised by RMST and milestone rates first, with "
                "piecewise hazard ratios (R coxph on survSplit data)"),
    "quartiles": "25th and 75th percentiles with CIs as R quantile(survfit, conf.int = TRUE)",
    "rate_difference": ("difference of Kaplan-Meier rates, SE sqrt(se1^2 + se2^2) of the Greenwood SEs of S(t) "
                        "(R summary(survfit, times)$std.err), normal CI and P"),
}

#: The same methods in words only (table footnotes of the document).
_WORDS = {
    "ci_log": "pointwise {level}% confidence intervals on the log scale with Greenwood's variance",
    "ci_log-log": "pointwise {level}% confidence intervals on the log(-log) scale with Greenwood's variance",
    "median": ("the median is the first time the curve is at or below 0.5 (the midpoint of a stretch at "
               "exactly 0.5), its limits where the pointwise band crosses 0.5"),
    "logrank": "two-sided log-rank test",
    "cox": ("univariable Cox proportional-hazards model with Efron's method for tied times, Wald "
            "confidence interval and P value; likelihood-ratio P value against the model without the arm"),
    "rmst": ("Restricted mean survival time: area under the Kaplan-Meier curve up to the horizon, with a "
             "Greenwood-type standard error"),
    "followup": "Median follow-up by the reverse Kaplan-Meier method (censoring as the event)",
}

_CI_SCALE = {"log": "log", "log-log": "log(-log)"}


# ----------------------------------------------------------------------------------------------
# Arms
# ----------------------------------------------------------------------------------------------
arm_key = results_key   # an arm's code in results keys


def arm_label(study, code: str) -> str:
    """The arm's label from ``study.config`` (study.yaml ``arms[].label``); the code when there is none."""
    config = getattr(study, "config", None)
    if config is not None and hasattr(config, "arm_label"):
        try:
            return str(config.arm_label(code))
        except (KeyError, ValueError):
            pass
    return str(code)


def arm_labels(study, result: EndpointResult) -> dict[str, str]:
    """{arm code: label} of the result's arms (reference first)."""
    return {a.arm: (arm_label(study, a.arm) if study is not None else a.arm) for a in result.arms}


def _design(study) -> str | None:
    config = getattr(study, "config", None)
    design = getattr(config, "design", None)
    if design is None and config is not None:
        design = (getattr(config, "extra", None) or {}).get("design")
    return None if design is None else str(design).lower()


def design_caveat(study) -> str:
    """One sentence on how to read the comparisons of the arms, from ``study.config.design``."""
    if _design(study) in ("randomised", "randomized"):
        return ("The arms are compared as randomised; the hazard ratio and the differences between the arms "
                "are unadjusted.")
    return ("Treatment was not assigned at random, so the comparisons between the arms are unadjusted "
            "associations, not estimates of a treatment effect.")


# ----------------------------------------------------------------------------------------------
# Numbers in words
# ----------------------------------------------------------------------------------------------
def _none(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _level(result: EndpointResult) -> int:
    return int(round(100 * result.conf_level))


def _median_text(est, ci_label: bool = True) -> str:
    """"10.8 (95% CI 8.9–12.9)"; "NR" alone when the estimate itself was not reached."""
    return format_estimate(est, ci_label=ci_label)


def _rate_text(rate, short: bool = False, ci_label: bool = True) -> str:
    if isinstance(rate.estimate, NotEstimable):
        return format_not_estimable(rate.estimate, short=short)
    return format_estimate(rate.estimate, scale=100, suffix="" if short else "%", missing="NE", ci_label=ci_label)


def _rate_key(months: float) -> str:
    return f"{int(months) if float(months).is_integer() else months}"


def _hr_text(result: EndpointResult, ci_label: bool = True) -> str:
    hr = result.hazard_ratio
    if isinstance(hr, NotEstimable):
        return format_not_estimable(hr, short=not ci_label)
    return format_estimate(hr.estimate, digits=2, missing="NE", ci_label=ci_label)


def _list(words: Sequence[str]) -> str:
    words = list(words)
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


def _followup_dict(f: FollowUp) -> dict:
    return {"estimate": _none(f.median.value), "lower": _none(f.median.lower), "upper": _none(f.median.upper),
            "n_censored": f.n_censored, "min_censored": f.min_censored, "max_censored": f.max_censored}


def rates_sentence(result: EndpointResult, study=None) -> str:
    """"At 6, 12 and 24 months, a, b and c of patients in the X arm were alive, and d, e and f in the Y arm."""
    labels = arm_labels(study, result)
    times = _list([_rate_key(t) for t in result.rate_times])
    parts = [(_list([_rate_text(r) for r in a.rates]), labels[a.arm]) for a in result.arms]
    return (f"At {times} months, {parts[0][0]} of patients in the {parts[0][1]} arm were "
            f"{STATE_WORDS[result.endpoint]}, and {parts[1][0]} in the {parts[1][1]} arm.")


def caveat_sentences(result: EndpointResult, study=None) -> list[str]:
    """The statistical caveats of ``result`` in words, one sentence each."""
    labels = arm_labels(study, result)
    out = []
    for c in result.caveats:
        arm = labels.get(c.data.get("arm"), c.data.get("arm"))
        if c.kind == "small_arm":
            out.append(f"The {arm} arm has {format_count(c.data['n'])} patient{'s' if c.data['n'] != 1 else ''}; "
                       "its estimates are unstable.")
        elif c.kind == "no_events_in_arm":
            out.append(f"No {EVENT_WORDS[result.endpoint]} was observed in the {arm} arm: its median is not "
                       "reached and the hazard ratio is not estimable.")
        elif c.kind == "rmst_beyond_followup":
            out.append(f"The restricted-mean horizon of {c.data['tau']:g} months is beyond the last follow-up "
                       f"of the {arm} arm ({format_number(c.data['last'])} months); its curve is extended "
                       "flat to the horizon.")
        elif c.kind == "ph_violation":
            out.append(f"The proportional-hazards assumption is rejected for "
                       f"{ENDPOINT_LABELS[result.endpoint].lower()} ({format_p_statement(c.data['p'])}).")
        else:
            out.append(f"{c.kind.replace('_', ' ').capitalize()}.")
    return list(dict.fromkeys(out))


def technical_note() -> str:
    """Software detail for a technical appendix: the R calls the estimators reproduce."""
    return ("Kaplan-Meier curves, medians, rates, restricted mean survival times and reverse Kaplan-Meier "
            "follow-up reproduce R's survival package (survfit with conf.type \"log\" or \"log-log\", "
            "print.survfit with rmean), the log-rank test survdiff and the hazard "
            "ratio coxph with Efron ties; tests compare them with R to a relative tolerance of 10^-6^ (tests/test_survival.py).")


# ----------------------------------------------------------------------------------------------
# The results file
# ----------------------------------------------------------------------------------------------
def results_payload(result: EndpointResult, study=None, xmax: float | None = None) -> dict:
    """The ``os`` / ``pfs`` section of the results file (keys of earlier versions kept), with ``text``.

    ``text`` holds ready-formatted strings for prose: per arm under the arm-code key (``median_CMT``)
    and the role key (``median_reference``, ``median_experimental``), plus comparisons
    (``logrank_p``, ``hr``, ``rmst_difference``), ``rates_sentence``, ``design_caveat`` and ``caveats``;
    the time-to-event summary of :func:`tte_payload` (``events_by_cause``, ``quartiles``, ``range``,
    ``ph_test``, ``piecewise``, ``rate_difference``, ``censoring`` and their ``text`` entries such as
    ``summary_sentence``); ``axis_note`` from ``xmax``, the right end of the figure's time axis (months).
    """
    ref, exp = result.reference, result.experimental
    labels = arm_labels(study, result)
    ep = result.endpoint

    median = {a.arm: {"estimate": _none(a.median.value), "lower": _none(a.median.lower),
                      "upper": _none(a.median.upper)} for a in result.arms}
    rates = {a.arm: {_rate_key(r.months): {
        "months": r.months,
        "estimate": None if isinstance(r.estimate, NotEstimable) else r.estimate.value,
        "lower": None if isinstance(r.estimate, NotEstimable) else r.estimate.lower,
        "upper": None if isinstance(r.estimate, NotEstimable) else r.estimate.upper,
        "n_risk": r.n_risk} for r in a.rates} for a in result.arms}
    followup = {a.arm: _followup_dict(a.followup) for a in result.arms}
    followup["overall"] = _followup_dict(result.followup)
    rmst = {a.arm: {"tau": a.rmst.tau, "estimate": a.rmst.estimate.value, "se": a.rmst.se} for a in result.arms}
    d = result.rmst_difference
    rmst["difference"] = {"estimate": d.estimate.value, "se": d.se, "lower": d.estimate.lower,
                          "upper": d.estimate.upper, "p": d.test.p, "comparison": f"{exp} minus {ref}"}
    events = {a.arm: {"events": a.events, "n": a.n} for a in result.arms}

    hr = result.hazard_ratio
    if isinstance(hr, NotEstimable):
        hr_payload = {k: None for k in ("estimate", "lower", "upper", "p", "lr_p", "lr_chisq", "coef", "se")}
    else:
        hr_payload = {"estimate": hr.estimate.value, "lower": hr.estimate.lower, "upper": hr.estimate.upper,
                      "p": hr.wald.p, "lr_p": hr.lr.p, "lr_chisq": hr.lr.statistic, "coef": hr.coef, "se": hr.se}
    hr_payload["comparison"] = f"{exp} vs {ref}"
    lr = result.logrank
    lr_p = None if isinstance(lr, NotEstimable) else lr.p
    lr_chisq = None if isinstance(lr, NotEstimable) else lr.statistic
    lr_df = len(result.arms) - 1 if isinstance(lr, NotEstimable) else lr.df

    text = {"endpoint": ENDPOINT_LABELS[ep], "conf_type": result.conf_type,
            "ci_scale": _CI_SCALE[result.conf_type],
            "rmst_horizon": f"{result.rmst_horizon:g}",
            "rate_times": _list([f"{t:g}" for t in result.rate_times])}
    for a in result.arms:
        keys = (arm_key(a.arm), a.role)
        values = {
            "median": _median_text(a.median),
            "events": f"{format_count(a.events)} of {format_count(a.n)}",
            "followup": _median_text(a.followup.median),
            **{f"rate_{_rate_key(r.months)}m": _rate_text(r) for r in a.rates},
            "rmst": format_estimate(a.rmst.estimate),
        }
        for k in keys:
            for name, value in values.items():
                text[f"{name}_{k}"] = value
        text[f"median_{keys[0]}_estimate"] = format_number(_none(a.median.value))
        text[f"median_estimate_{a.role}"] = format_number(_none(a.median.value))
        text[f"label_{a.role}"] = labels[a.arm]
        text[f"n_{a.role}"] = format_count(a.n)
    text["followup_overall"] = _median_text(result.followup.median)
    text["rmst_difference"] = format_estimate(d.estimate)
    text["rmst_difference_p"] = format_p_statement(d.test.p)
    text["logrank_p"] = format_p_statement(lr_p)
    text["logrank_chisq"] = format_number(lr_chisq, 2, missing="NE")
    text["hr"] = _hr_text(result)
    text["hr_p"] = format_p_statement(hr_payload["p"])
    text["hr_lr_p"] = format_p_statement(hr_payload["lr_p"])
    text["hr_comparison"] = f"{labels[exp]} vs {labels[ref]}"
    text["events_total"] = f"{format_count(result.events)} of {format_count(result.n)}"
    text["rates_sentence"] = rates_sentence(result, study)
    # the summary of an endpoint whose hazards are not proportional already gives the rates (summary_sentence)
    text["rates_unless_in_summary"] = "" if result.ph_rejected else text["rates_sentence"]
    text["design_caveat"] = design_caveat(study)
    text["caveats"] = " ".join(caveat_sentences(result, study))
    text["technical_note"] = technical_note()

    extra = tte_payload(result, study)
    text.update(extra.pop("text"))
    text["axis_note"] = axis_note(result, study, xmax)
    methods = {"ci": METHODS[f"ci_{result.conf_type}"], "median": METHODS["median"],
               "logrank": METHODS["logrank"], "cox": METHODS["cox"], "cox_p": METHODS["cox_p"],
               "rmst": METHODS["rmst"], "followup": METHODS["followup"], "ph_test": METHODS["ph_test"],
               "quartiles": METHODS["quartiles"], "rate_difference": METHODS["rate_difference"]}
    return {
        **extra,
        "endpoint": ep, "label": ENDPOINT_LABELS[ep], "event": EVENT_WORDS[ep], "unit": "months",
        "reference_arm": ref, "comparison_arm": exp, "conf_type": result.conf_type, "conf_level": result.conf_level,
        "n": {a.arm: a.n for a in result.arms},
        "median": median,
        "logrank_p": lr_p, "logrank_chisq": lr_chisq, "logrank_df": lr_df,
        "hr": hr_payload,
        "rates": rates, "followup": followup, "rmst": rmst, "events": events,
        "methods": methods,
        "arm_labels": labels,
        "caveats": [{"kind": c.kind, **c.data} for c in result.caveats],
        "text": text,
    }


# ----------------------------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------------------------
def make_survival_table(results: Sequence[EndpointResult], study=None) -> pd.DataFrame:
    """Medians, rates, events, log-rank and Cox HR of one or more endpoints, one row per quantity.

    Columns: Endpoint, Quantity, one column per arm (its label), and "Comparison" (log-rank and HR).
    """
    rows = []
    for res in results:
        labels = arm_labels(study, res)
        cols = [labels[a.arm] for a in res.arms]

        def row(q, vals, comp=""):
            rows.append({"Endpoint": ENDPOINT_LABELS[res.endpoint], "Quantity": q, **dict(zip(cols, vals)),
                         "Comparison": comp})
        row("Patients, n", [format_count(a.n) for a in res.arms])
        row("Events, n (%)", [f"{format_count(a.events)} ({100 * a.events / a.n:.1f})" for a in res.arms])
        row(f"Median, months ({_level(res)}% CI)", [_median_text(a.median, ci_label=False) for a in res.arms])
        for i, t in enumerate(res.rate_times):
            row(f"{_rate_key(t)}-month rate, % ({_level(res)}% CI)",
                [_rate_text(a.rates[i], short=True, ci_label=False) for a in res.arms])
        lr = res.logrank
        if isinstance(lr, NotEstimable):
            row("Log-rank test", ["", ""], format_not_estimable(lr))
        else:
            row("Log-rank test", ["", ""],
                f"χ² = {format_number(lr.statistic, 2, 'NE')}, df = {lr.df}, {format_p_statement(lr.p)}")
        hr = res.hazard_ratio
        comp = f"{labels[res.experimental]} vs {labels[res.reference]}"
        if isinstance(hr, NotEstimable):
            row(f"Hazard ratio ({comp}), {_level(res)}% CI", ["", ""], format_not_estimable(hr))
        else:
            row(f"Hazard ratio ({comp}), {_level(res)}% CI", ["", ""],
                f"{_hr_text(res, ci_label=False)}; Wald {format_p_statement(hr.wald.p)}; "
                f"LR {format_p_statement(hr.lr.p)}")
            if res.ph_test is not None:
                row("Proportional hazards of the arm", ["", ""],
                    f"{ph_test_text(res)} ({'rejected' if res.ph_rejected else 'not rejected'} at 5%)")
    df = pd.DataFrame(rows)
    df.loc[df["Endpoint"].duplicated(), "Endpoint"] = ""     # the endpoint name once per block
    return df


def make_rmst_table(results: Sequence[EndpointResult], study=None) -> pd.DataFrame:
    """RMST per arm (months, CI) and the difference between the arms, one row per endpoint."""
    rows = []
    for res in results:
        labels = arm_labels(study, res)
        lv = _level(res)
        row = {"Endpoint": ENDPOINT_LABELS[res.endpoint], "Horizon τ, months": f"{res.rmst_horizon:g}"}
        for a in res.arms:
            row[f"{labels[a.arm]}, months ({lv}% CI)"] = format_estimate(a.rmst.estimate, ci_label=False)
        d = res.rmst_difference
        row[f"Difference ({labels[res.experimental]} minus {labels[res.reference]}), months ({lv}% CI)"] = \
            format_estimate(d.estimate, ci_label=False)
        row["P"] = format_p(d.test.p)
        rows.append(row)
    return pd.DataFrame(rows)


def make_followup_table(results: Sequence[EndpointResult], study=None) -> pd.DataFrame:
    """Median follow-up by reverse Kaplan-Meier per arm and overall, one row per endpoint."""
    rows = []
    for res in results:
        labels = arm_labels(study, res)
        lv = _level(res)
        row = {"Endpoint": ENDPOINT_LABELS[res.endpoint]}
        for a in res.arms:
            row[f"{labels[a.arm]}, months ({lv}% CI)"] = _median_text(a.followup.median, ci_label=False)
        row[f"Overall, months ({lv}% CI)"] = _median_text(res.followup.median, ci_label=False)
        fo = res.followup
        row["Censored, n"] = format_count(fo.n_censored)
        row["Censored follow-up range, months"] = (
            "–" if fo.min_censored is None else
            f"{format_number(fo.min_censored)}{RANGE_SEP}{format_number(fo.max_censored)}")
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# Footnotes
# ----------------------------------------------------------------------------------------------
def survival_footnote(results: Sequence[EndpointResult] | str = "log", study=None) -> str:
    """Footnote of the survival table: every method named in words, and the caveats of the results."""
    if isinstance(results, str):
        conf_type, level, caveats = results, 95, []
    else:
        conf_type, level = results[0].conf_type, _level(results[0])
        caveats = [s for r in results for s in caveat_sentences(r, study)]
    if conf_type not in _CI_SCALE:
        raise ValueError(f"conf_type must be one of {tuple(_CI_SCALE)}, got {conf_type!r}")
    text = ("Medians and rates: Kaplan-Meier estimator, " + _WORDS[f"ci_{conf_type}"].format(level=level)
            + "; " + _WORDS["median"] + ". NR, not reached; NE, not estimable (beyond the last follow-up of "
            "the arm). Log-rank: " + _WORDS["logrank"] + ". Hazard ratio: " + _WORDS["cox"] + ". Proportional "
            "hazards: test of the scaled Schoenfeld residuals of the arm on the Kaplan-Meier time scale; where it "
            "is rejected, the hazard ratio is an average over time and the restricted mean survival time, the "
            "landmark rates and the hazard ratios by period describe the difference.")
    return " ".join([text, *caveats])


def rmst_footnote() -> str:
    """Footnote of the RMST table."""
    return _WORDS["rmst"] + "; difference between the arms with a normal confidence interval and two-sided P value."


def followup_footnote() -> str:
    """Footnote of the follow-up table."""
    return (_WORDS["followup"] + ". NR: the reverse Kaplan-Meier curve (or, for a confidence limit, its band) "
            "does not fall to 0.5 by the last censored time, because the longest times are deaths; the range "
            "of censored follow-up times is given as well.")


# ----------------------------------------------------------------------------------------------
# Proportional hazards, piecewise hazard ratios, the lead summary of an endpoint
# ----------------------------------------------------------------------------------------------
#: What the endpoint's event-free state is called in rate rows ("event-free rate" in the tables).
RATE_WORDS = {"os": "survival", "pfs": "progression-free survival"}
#: Earliest contributing event -> row label.
CAUSE_WORDS = {"os": {"death": "Death"},
               "pfs": {"progression": "Progression", "death": "Death without progression"}}
#: PFS censoring rule (helpers.data.load.Study.pfs_censoring) in words.
CENSORING_WORDS = {
    "last_assessment": ("Patients alive without progression were censored at their last adequate tumour "
                        "assessment, as the guidance of the U.S. Food and Drug Administration on cancer trial "
                        "endpoints recommends [@fda2018endpoints]."),
    "last_followup": ("Patients alive without progression were censored at their last follow-up, because the "
                      "data record no date of the last tumour assessment; progression-free time may therefore be "
                      "overstated for patients whose assessments stopped before their last contact."),
}


def _interval_words(p) -> str:
    if p.end is None:
        return f"after {format_number(p.start, 0) if float(p.start).is_integer() else format_number(p.start)} months"
    lo = f"{p.start:g}"
    return f"{lo}–{p.end:g} months"


def ph_test_text(result: EndpointResult) -> str:
    """"P = 0.016" for the cox.zph test of the arm, or "not estimable: ..."."""
    ph = result.ph_test
    if ph is None or isinstance(ph, NotEstimable):
        return format_not_estimable(ph) if isinstance(ph, NotEstimable) else "not tested"
    return format_p_statement(ph.p)


def piecewise_sentence(result: EndpointResult, study=None) -> str:
    """"Hazard ratios by period: 0.57 (95% CI 0.31–1.06) in 0–6 months, ..." ('' without piecewise HRs)."""
    if not result.piecewise:
        return ""
    parts = []
    for p in result.piecewise:
        if isinstance(p.estimate, NotEstimable):
            parts.append(f"{format_not_estimable(p.estimate)} {'' if p.end is None else 'in '}{_interval_words(p)}")
        else:
            parts.append(f"{format_estimate(p.estimate, digits=2)} {'' if p.end is None else 'in '}"
                         f"{_interval_words(p)}")
    return "Hazard ratios by period: " + _list(parts) + "."


def summary_sentence(result: EndpointResult, study=None) -> str:
    """The lead sentence(s) of an endpoint's comparison, chosen by the proportional-hazards test.

    When the test rejects proportional hazards at 5% (unrounded P), the endpoint leads with the RMST
    difference and the milestone rates and gives the hazard ratio only as an average with its
    piecewise values; otherwise it leads with the hazard ratio and says the assumption was not rejected.
    """
    labels = arm_labels(study, result)
    ref, exp = labels[result.reference], labels[result.experimental]
    name = ENDPOINT_LABELS[result.endpoint].lower()
    hr = _hr_text(result)
    ph = ph_test_text(result)
    d = result.rmst_difference
    rmst_txt = (f"within {result.rmst_horizon:g} months, patients of the {exp} arm lived on average "
                f"{format_estimate(d.estimate)} months {'longer' if (d.estimate.value or 0) >= 0 else 'less'}"
                f"{' free of progression' if result.endpoint == 'pfs' else ''} than those of the {ref} arm "
                f"({format_p_statement(d.test.p)})")
    if result.ph_rejected:
        rates = rates_sentence(result, study)
        diffs = []
        for rd in result.rate_differences:
            if not isinstance(rd.estimate, NotEstimable):
                diffs.append(f"{format_estimate(rd.estimate, scale=100)} percentage points at {rd.months:g} months")
        diff_txt = (f" The differences ({exp} minus {ref}) were {_list(diffs)}." if diffs else "")
        return (f"The hazards of {name} were not proportional between the arms (test of the scaled Schoenfeld "
                f"residuals {ph}), so a single hazard ratio does not describe the difference; it is summarised by "
                f"the restricted mean time and the landmark rates: {rmst_txt}. {rates}{diff_txt} The hazard ratio "
                f"over the whole follow-up, {hr}, is an average of hazard ratios that changed with time. "
                f"{piecewise_sentence(result, study)}").strip()
    if result.ph_test is None or isinstance(result.ph_test, NotEstimable):
        return f"The hazard ratio of {name} ({exp} vs {ref}) was {hr}."
    return (f"The hazard ratio of {name} ({exp} vs {ref}) was {hr}; proportional hazards were not rejected "
            f"(test of the scaled Schoenfeld residuals {ph}).")


def censoring_sentence(result: EndpointResult | str | None) -> str:
    """The PFS censoring rule actually used, in words ('' for OS / no PFS)."""
    rule = result if isinstance(result, str) or result is None else result.censoring
    if isinstance(result, EndpointResult) and result.endpoint != "pfs":
        return ""
    return CENSORING_WORDS.get(rule or "", "")


def _range_text(r, digits: int = 1) -> str:
    if r is None or r.min is None:
        return "–"
    lo = format_number(r.min, digits) + ("+" if r.min_censored else "")
    hi = format_number(r.max, digits) + ("+" if r.max_censored else "")
    return f"{lo} to {hi}"


def _cause_text(result: EndpointResult, arm) -> str:
    words = {"death": "deaths" if result.endpoint == "os" else "deaths without progression",
             "progression": "progressions"}
    return _list([f"{format_count(n)} {words[k]}" for k, n in arm.events_by_cause.items()])


def tte_payload(result: EndpointResult, study=None) -> dict:
    """Results-file entries of the time-to-event summary: ``events_by_cause``, ``quartiles``, ``range``,
    ``ph_test``, ``piecewise``, ``rate_difference`` (merged into the ``os`` / ``pfs`` sections)."""
    def est(e):
        if isinstance(e, NotEstimable):
            return {"estimate": None, "lower": None, "upper": None, "not_estimable": e.reason}
        return {"estimate": _none(e.value), "lower": _none(e.lower), "upper": _none(e.upper)}

    ph = result.ph_test
    out = {
        "events_by_cause": {a.arm: dict(a.events_by_cause) for a in result.arms},
        "quartiles": {a.arm: {str(int(q)): est(e) for q, e in zip((25, 50, 75), a.quartiles)} for a in result.arms},
        "range": {a.arm: (None if a.range is None else {"min": a.range.min, "max": a.range.max,
                                                         "min_censored": a.range.min_censored,
                                                         "max_censored": a.range.max_censored})
                  for a in result.arms},
        "ph_test": ({"p": None, "chisq": None, "df": None, "not_estimable": ph.reason}
                    if isinstance(ph, NotEstimable) or ph is None else
                    {"p": ph.p, "chisq": ph.statistic, "df": ph.df, "transform": "km",
                     "method": "cox.zph score test of the arm's univariable Cox model (R survival >= 3.0)"}),
        "ph_rejected": result.ph_rejected,
        "piecewise": [{"start": p.start, "end": p.end, "n_risk": p.n_risk, "events": dict(p.events),
                       **est(p.estimate), "p": None if p.test is None else p.test.p} for p in result.piecewise],
        "piecewise_cuts": list(result.piecewise_cuts),
        "rate_difference": {_rate_key(rd.months): {**est(rd.estimate), "se": rd.se,
                                                  "p": None if rd.test is None else rd.test.p,
                                                  "comparison": f"{result.experimental} minus {result.reference}"}
                            for rd in result.rate_differences},
        "censoring": result.censoring,
    }
    text = {"ph_test_p": ph_test_text(result),
            "ph_rejected": "rejected" if result.ph_rejected else "not rejected",
            "summary_sentence": summary_sentence(result, study),
            "piecewise_sentence": piecewise_sentence(result, study),
            "censoring_sentence": censoring_sentence(result)}
    for a in result.arms:
        for k in (arm_key(a.arm), a.role):
            text[f"events_by_cause_{k}"] = _cause_text(result, a)
            text[f"range_{k}"] = _range_text(a.range)
            if len(a.quartiles) == 3:
                text[f"q25_{k}"] = format_estimate(a.quartiles[0])
                text[f"q75_{k}"] = format_estimate(a.quartiles[2])
    out["text"] = text
    return out


# ----------------------------------------------------------------------------------------------
# Time-to-event summary table (TTET01-like)
# ----------------------------------------------------------------------------------------------
def make_tte_table(result: EndpointResult, study=None) -> pd.DataFrame:
    """The time-to-event summary of one endpoint, as the TTET01 layout of the pharmaverse catalogue.

    Rows: patients with an event (n, %) split by earliest contributing event, patients without an
    event; median (95% CI), 25th and 75th percentiles (95% CI), observed range ("+" censored); log-rank
    P and hazard ratio (95% CI) with the PH test; per milestone time the patients at risk, the event-free
    rate (95% CI) and the difference between the arms (95% CI, P). Columns: "Quantity" and one column
    per arm headed by its label and N; comparisons sit in the experimental arm's column.
    """
    labels = arm_labels(study, result)
    lv = _level(result)
    cols = [f"{labels[a.arm]} (N = {format_count(a.n)})" for a in result.arms]
    ref_col, exp_col = cols
    rows = []

    def row(q, vals):
        rows.append({"Quantity": q, **dict(zip(cols, vals))})

    row("Patients with event, n (%)", [format_n_pct(a.events, a.n) for a in result.arms])
    if result.endpoint == "pfs" or len(result.arms[0].events_by_cause) > 1:
        row("  Earliest contributing event", ["", ""])
        for cause, word in CAUSE_WORDS[result.endpoint].items():
            row(f"    {word}", [format_n_pct(a.events_by_cause.get(cause, 0), a.n) for a in result.arms])
    row("Patients without event, n (%)", [format_n_pct(a.n - a.events, a.n) for a in result.arms])
    row("Time to event, months", ["", ""])
    row(f"  Median ({lv}% CI)", [_median_text(a.median, ci_label=False) for a in result.arms])
    if all(len(a.quartiles) == 3 for a in result.arms):
        row(f"  25th percentile ({lv}% CI)", [format_estimate(a.quartiles[0], ci_label=False) for a in result.arms])
        row(f"  75th percentile ({lv}% CI)", [format_estimate(a.quartiles[2], ci_label=False) for a in result.arms])
    row("  Range", [_range_text(a.range) for a in result.arms])
    row("Comparison with the reference arm", ["", ""])
    lr = result.logrank
    row("  Log-rank P", ["", format_not_estimable(lr) if isinstance(lr, NotEstimable) else format_p(lr.p)])
    row(f"  Hazard ratio ({lv}% CI)", ["", _hr_text(result, ci_label=False)])
    row("  Proportional hazards, P", ["", ph_test_text(result).replace("P = ", "").replace("P < ", "<")])
    for i, t in enumerate(result.rate_times):
        row(f"{_rate_key(t)} months", ["", ""])
        row("  Patients at risk", [format_count(a.rates[i].n_risk) for a in result.arms])
        row(f"  Event-free rate, % ({lv}% CI)", [_rate_text(a.rates[i], short=True, ci_label=False)
                                                  for a in result.arms])
        rd = result.rate_differences[i] if i < len(result.rate_differences) else None
        if rd is None or isinstance(rd.estimate, NotEstimable):
            row(f"  Difference in event-free rate, % ({lv}% CI)", ["", "NE"])
        else:
            row(f"  Difference in event-free rate, % ({lv}% CI)",
                ["", format_estimate(rd.estimate, scale=100, ci_label=False)])
            row("  P (difference)", ["", format_p(rd.test.p)])
    return pd.DataFrame(rows, columns=["Quantity", ref_col, exp_col])


def tte_footnote(result: EndpointResult, study=None) -> str:
    """Footnote of the time-to-event summary table: methods in words, generated."""
    lv = _level(result)
    event = EVENT_WORDS[result.endpoint]
    text = (f"Event: {event}. Percentiles: Kaplan-Meier, {_WORDS[f'ci_{result.conf_type}'].format(level=lv)}; "
            "NR, not reached. Range: shortest and longest observed time; +, a censored time. Log-rank: "
            f"{_WORDS['logrank']}. Hazard ratio: {_WORDS['cox']}. Proportional hazards: test of the scaled "
            "Schoenfeld residuals of the arm (Kaplan-Meier time scale). Event-free rates: Kaplan-Meier "
            "estimates; difference of the experimental minus the reference arm with a normal confidence "
            "interval (standard errors of independent arms combined) and two-sided P; NE, not estimable "
            "(beyond the last follow-up of an arm).")
    extra = censoring_sentence(result)
    return " ".join(x for x in (text, extra) if x)


def make_piecewise_table(results: Sequence[EndpointResult], study=None) -> pd.DataFrame:
    """Hazard ratios within time periods for the endpoints whose PH test rejected (empty otherwise)."""
    rows = []
    for res in results:
        if not res.piecewise:
            continue
        labels = arm_labels(study, res)
        lv = _level(res)
        for p in res.piecewise:
            rows.append({
                "Endpoint": ENDPOINT_LABELS[res.endpoint], "Period": _interval_words(p).replace(" months", ""),
                "At risk at start, n": format_count(p.n_risk),
                **{f"Events, {labels[k]}": format_count(v) for k, v in p.events.items()},
                f"Hazard ratio ({lv}% CI)": (format_not_estimable(p.estimate) if isinstance(p.estimate, NotEstimable)
                                             else format_estimate(p.estimate, digits=2, ci_label=False)),
                "P": "–" if p.test is None else format_p(p.test.p)})
    df = pd.DataFrame(rows)
    if len(df):
        df.loc[df["Endpoint"].duplicated(), "Endpoint"] = ""
    return df


def piecewise_footnote(results: Sequence[EndpointResult]) -> str:
    """Footnote of the piecewise table: cut points and method."""
    cuts = next((r.piecewise_cuts for r in results if r.piecewise), ())
    return (f"Periods cut at {_list([f'{c:g}' for c in cuts])} months (analysis plan). Cox model with one "
            "coefficient of the arm per period (patients at risk at the start of a period enter then and are "
            "censored at its end), Efron's method for ties, Wald confidence interval and P. Shown for endpoints "
            "whose proportional-hazards test had P < 0.05.")


# ----------------------------------------------------------------------------------------------
# Follow-up summary
# ----------------------------------------------------------------------------------------------
def _potential_text(a) -> str:
    if a.potential_median is None:
        return "–"
    return (f"{format_number(a.potential_median)} ({format_number(a.potential_min)}{RANGE_SEP}"
            f"{format_number(a.potential_max)})")


def _censored_range(f) -> str:
    if f.min_censored is None:
        return "–"
    return f"{format_number(f.min_censored)}{RANGE_SEP}{format_number(f.max_censored)}"


def make_followup_summary_table(summary, study=None) -> pd.DataFrame:
    """Follow-up per arm and overall (rows: quantities; columns: arms with N, then all patients).

    Reverse Kaplan-Meier median (95% CI), potential follow-up median (range), alive at last contact,
    lost to follow-up n (%), censored follow-up range.
    """
    entries = list(summary.arms) + [summary.overall]

    def head(a):
        name = "All patients" if a.role == "overall" else (
            study.config.arm_label(a.arm) if study is not None and hasattr(getattr(study, "config", None), "arm_label")
            else a.arm)
        return f"{name} (N = {format_count(a.n)})"

    cols = [head(a) for a in entries]
    lv = int(round(100 * (entries[0].reverse_km.median.level or 0.95)))
    rows = [
        (f"Median follow-up, reverse Kaplan-Meier, months ({lv}% CI)",
         [_median_text(a.reverse_km.median, ci_label=False) for a in entries]),
        ("Potential follow-up (start to cut-off), months, median (range)", [_potential_text(a) for a in entries]),
        ("Alive at last contact, n (%)", [format_n_pct(a.alive, a.n) for a in entries]),
        (f"Lost to follow-up, n (%)", [format_n_pct(a.lost_to_followup, a.n) if summary.cutoff_known else "–"
                                        for a in entries]),
        ("Censored follow-up, range, months", [_censored_range(a.reverse_km) for a in entries]),
    ]
    return pd.DataFrame([{"Quantity": q, **dict(zip(cols, v))} for q, v in rows], columns=["Quantity", *cols])


def followup_summary_footnote(summary) -> str:
    """Footnote of the follow-up table: definitions in words (the threshold from the analysis plan)."""
    return (
        "Reverse Kaplan-Meier: the Kaplan-Meier estimator applied with the roles reversed, a censoring (patient "
        "alive at last contact) counted as the event and a death as a censored observation; its median estimates "
        "how long patients would have been followed had none died. NR: the reverse curve (or, for a "
        "confidence limit, its band) does not fall to 0.5 by the last censored time, because the longest times "
        "are deaths; the censored range then describes the follow-up. Potential follow-up: time from the start of treatment to the data cut-off, the "
        "follow-up every patient would have had without death or loss. Lost to follow-up: alive at last contact "
        f"and last seen more than {summary.lost_months:g} months before the cut-off (analysis plan).")


def followup_payload(summary, study=None) -> dict:
    """The ``followup`` section of the results file: per arm (code key and role) and overall.

    ``followup.<arm>.lost_to_followup`` (arm key: code with non-alphanumerics as "_"), ``alive``,
    ``reverse_km`` {estimate, lower, upper}, ``potential`` {median, min, max}, ``censored`` {min, max},
    and ready-formatted ``text`` entries for prose.
    """
    out: dict = {"lost_to_followup_months": summary.lost_months, "cutoff_known": summary.cutoff_known}
    text: dict = {"lost_months": f"{summary.lost_months:g}"}
    for a in list(summary.arms) + [summary.overall]:
        f = a.reverse_km
        entry = {"arm": a.arm, "n": a.n, "alive": a.alive, "lost_to_followup": a.lost_to_followup,
                 "reverse_km": {"estimate": _none(f.median.value), "lower": _none(f.median.lower),
                                "upper": _none(f.median.upper)},
                 "potential": {"median": a.potential_median, "min": a.potential_min, "max": a.potential_max},
                 "censored": {"n": f.n_censored, "min": f.min_censored, "max": f.max_censored}}
        keys = ["overall"] if a.role == "overall" else [arm_key(a.arm), a.role]
        for k in keys:
            out[k] = entry
            text[f"reverse_km_{k}"] = _median_text(f.median)
            text[f"potential_{k}"] = _potential_text(a)
            text[f"lost_{k}"] = (f"{format_count(a.lost_to_followup)} of {format_count(a.alive)}" if summary.cutoff_known else "not known")
            text[f"censored_range_{k}"] = _censored_range(f)
    out["text"] = text
    return out


# ----------------------------------------------------------------------------------------------
# Kaplan-Meier axis
# ----------------------------------------------------------------------------------------------
def axis_note(result: EndpointResult, study=None, xmax: float | None = None) -> str:
    """"The time axis ends at 60 months; follow-up continues to 106.3 months (n patients still followed)."

    '' when the axis shows the whole follow-up (``xmax`` None or beyond the last time).
    """
    if xmax is None or study is None:
        return ""
    from helpers.stats import survival as sv

    data = sv.split_by_arm(study.patients, result.endpoint, [a.arm for a in result.arms])
    last = max(float(t.max()) for t, _ in data.values() if len(t))
    if last <= float(xmax):
        return ""
    beyond = sum(int((t > float(xmax)).sum()) for t, _ in data.values())
    return (f"The time axis ends at {float(xmax):g} months; follow-up continues to {format_number(last)} months "
            f"({format_count(beyond)} patient{'s were' if beyond != 1 else ' was'} followed beyond the axis).")
