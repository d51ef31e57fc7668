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
from typing import Mapping, Sequence

import pandas as pd

from helpers.analyses.survival import EndpointResult, FollowUp
from helpers.report.formatting import (RANGE_SEP, format_estimate, format_not_estimable, format_number,
                                       format_p, format_p_statement)
from helpers.stats.types import NotEstimable

__all__ = ["ENDPOINT_LABELS", "arm_key", "arm_label", "arm_labels", "results_payload", "make_survival_table",
           "make_rmst_table", "make_followup_table", "survival_footnote", "rmst_footnote", "followup_footnote",
           "caveat_sentences", "design_caveat", "technical_note"]

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
    "followup": "Median follow-up by the reverse Kaplan-Meier method (Schemper and Smith 1996)",
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
def arm_key(arm: str) -> str:
    """Key of an arm in ``text`` entries of the results file: "CMT+ICI" -> "CMT_ICI"."""
    return "".join(ch if ch.isalnum() else "_" for ch in str(arm)).strip("_")


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
            out.append(f"The {arm} arm has {c.data['n']} patient{'s' if c.data['n'] != 1 else ''}; "
                       "its estimates are unstable.")
        elif c.kind == "no_events_in_arm":
            out.append(f"No {EVENT_WORDS[result.endpoint]} was observed in the {arm} arm: its median is not "
                       "reached and the hazard ratio is not estimable.")
        elif c.kind == "rmst_beyond_followup":
            out.append(f"The restricted-mean horizon of {c.data['tau']:g} months is beyond the last follow-up "
                       f"of the {arm} arm ({format_number(c.data['last'])} months); its curve is extended "
                       "flat to the horizon.")
        else:
            out.append(f"Caveat: {c.kind.replace('_', ' ')}.")
    return out


def technical_note() -> str:
    """Software detail for a technical appendix: the R calls the estimators reproduce."""
    return ("Kaplan-Meier curves, medians, rates, restricted mean survival times and reverse Kaplan-Meier "
            "follow-up reproduce R's survival package (survfit with conf.type \"log\" or \"log-log\", "
            "print.survfit with rmean), the log-rank test survdiff (computed with lifelines) and the hazard "
            "ratio coxph with Efron ties; tests compare them with R to a relative tolerance of 1e-6.")


# ----------------------------------------------------------------------------------------------
# The results file
# ----------------------------------------------------------------------------------------------
def results_payload(result: EndpointResult, study=None) -> dict:
    """The ``os`` / ``pfs`` section of the results file (keys of earlier versions kept), with ``text``.

    ``text`` holds ready-formatted strings for prose: per arm under the arm-code key (``median_CMT``)
    and the role key (``median_reference``, ``median_experimental``), plus comparisons
    (``logrank_p``, ``hr``, ``rmst_difference``), ``rates_sentence``, ``design_caveat`` and ``caveats``.
    """
    ref, exp = result.reference, result.experimental
    labels = arm_labels(study, result)
    level = _level(result)
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
            "events": f"{a.events} of {a.n}",
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
        text[f"n_{a.role}"] = str(a.n)
    text["followup_overall"] = _median_text(result.followup.median)
    text["rmst_difference"] = format_estimate(d.estimate)
    text["rmst_difference_p"] = format_p_statement(d.test.p)
    text["logrank_p"] = format_p_statement(lr_p)
    text["logrank_chisq"] = format_number(lr_chisq, 2, missing="NE")
    text["hr"] = _hr_text(result)
    text["hr_p"] = format_p_statement(hr_payload["p"])
    text["hr_lr_p"] = format_p_statement(hr_payload["lr_p"])
    text["hr_comparison"] = f"{labels[exp]} vs {labels[ref]}"
    text["events_total"] = f"{result.events} of {result.n}"
    text["rates_sentence"] = rates_sentence(result, study)
    text["design_caveat"] = design_caveat(study)
    text["caveats"] = " ".join(caveat_sentences(result, study))
    text["technical_note"] = technical_note()

    return {
        "endpoint": ep, "label": ENDPOINT_LABELS[ep], "event": EVENT_WORDS[ep], "unit": "months",
        "reference_arm": ref, "comparison_arm": exp, "conf_type": result.conf_type, "conf_level": result.conf_level,
        "n": {a.arm: a.n for a in result.arms},
        "median": median,
        "logrank_p": lr_p, "logrank_chisq": lr_chisq, "logrank_df": lr_df,
        "hr": hr_payload,
        "rates": rates, "followup": followup, "rmst": rmst, "events": events,
        "methods": {"ci": METHODS[f"ci_{result.conf_type}"], "median": METHODS["median"],
                    "logrank": METHODS["logrank"], "cox": METHODS["cox"], "cox_p": METHODS["cox_p"],
                    "rmst": METHODS["rmst"], "followup": METHODS["followup"]},
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
        row("Patients, n", [str(a.n) for a in res.arms])
        row("Events, n (%)", [f"{a.events} ({100 * a.events / a.n:.1f})" for a in res.arms])
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
        row["Censored, n"] = str(fo.n_censored)
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
            "the arm). Log-rank: " + _WORDS["logrank"] + ". Hazard ratio: " + _WORDS["cox"] + ".")
    return " ".join([text, *caveats])


def rmst_footnote() -> str:
    """Footnote of the RMST table."""
    return _WORDS["rmst"] + "; difference between the arms with a normal confidence interval and two-sided P value."


def followup_footnote() -> str:
    """Footnote of the follow-up table."""
    return (_WORDS["followup"] + ". NR: fewer than half of the patients were censored, so the reverse "
            "Kaplan-Meier curve does not reach 0.5; the range of censored follow-up times is given instead.")
