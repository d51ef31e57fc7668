"""Overall and progression-free survival: Kaplan-Meier, medians, log-rank, Cox HR, rates, follow-up, RMST.

Conventions follow R's ``survival`` package (3.5-3), which reviewers treat as the reference; each
function names the R call it mirrors, and ``tests/reference/survival.R`` produces the values the tests
compare to (relative tolerance 1e-6). Times are in months in the project (any unit works here).

Where this module differs from lifelines (used here for the log-rank test):

* Kaplan-Meier confidence bands are pointwise, with Greenwood's variance, on the log scale by default
  (R ``survfit(conf.type = "log")``, upper limit clipped at 1); ``"log-log"`` is an option. lifelines
  offers log-log only.
* The median is R's: on a stretch where S(t) equals 0.5 exactly, the midpoint of the stretch
  (lifelines returns its start). Its CI limits are where the pointwise band crosses 0.5, by the same rule.
* Survival past the last follow-up time of an arm is not estimable (None); R's
  ``summary(fit, times, extend = TRUE)`` and lifelines carry the last value forward.
* The Cox hazard ratio comes from a short Newton-Raphson on the Efron partial likelihood, iterated to
  machine precision (lifelines' ``CoxPHFitter`` stopped up to 5e-7 short of R's maximum).
* The RMST standard error is the estimator's (R ``print(fit, rmean = tau)``), not lifelines'
  ``restricted_mean_survival_time(return_variance=True)``, which is the variance of min(T, tau).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

#: Confidence-band transforms available (R ``survfit(conf.type = ...)``).
CONF_TYPES = ("log", "log-log")

#: Endpoint name -> (label, time column, event column, event description).
ENDPOINTS = {
    "os": ("Overall survival", "os_months", "os_event", "death from any cause"),
    "pfs": ("Progression-free survival", "pfs_months", "pfs_event", "progression or death"),
}

#: Method strings, shared by tables, footnotes and the methods text.
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

_TOL = math.sqrt(np.finfo(float).eps)  # R survmean's tolerance for "S == 0.5"


class SurvivalCaveatWarning(UserWarning):
    """A statistical caveat of a survival analysis (sparse arm, no events, extrapolated RMST, ...)."""


class SurvivalInputError(ValueError):
    """Survival input that cannot be analysed (negative times, event codes other than 0/1, ...)."""


# ----------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------
def _as_arrays(time, event) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=float)
    if t.shape != e.shape or t.ndim != 1:
        raise SurvivalInputError("time and event must be one-dimensional and of equal length")
    bad = np.isnan(t) | np.isnan(e)
    if bad.any():
        raise SurvivalInputError(f"missing time or event in rows {np.flatnonzero(bad).tolist()}")
    if (t < 0).any():
        raise SurvivalInputError(f"negative times in rows {np.flatnonzero(t < 0).tolist()}")
    if not np.isin(e, (0, 1)).all():
        raise SurvivalInputError(f"event must be 0/1; offending rows {np.flatnonzero(~np.isin(e, (0, 1))).tolist()}")
    return t, e.astype(int)


def _check_conf_type(conf_type: str) -> None:
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type must be one of {CONF_TYPES}, got {conf_type!r}")


def _none(x) -> float | None:
    """A float, or None for NaN/inf (JSON-ready)."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


# ----------------------------------------------------------------------------------------------
# Kaplan-Meier
# ----------------------------------------------------------------------------------------------
def _band(surv: np.ndarray, std_err: np.ndarray, conf_type: str, conf_level: float):
    """Pointwise limits as R ``survival:::survfit_confint`` (std_err is the se of log S)."""
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "log":
            xx = np.where(surv == 0, np.nan, surv)
            lower = np.exp(np.log(xx) - z * std_err)
            upper = np.minimum(np.exp(np.log(xx) + z * std_err), 1.0)
        else:
            xx = np.where((surv == 0) | (surv == 1), np.nan, surv)
            se2 = z * std_err / np.log(xx)
            lower = np.exp(-np.exp(np.log(-np.log(xx)) - se2))
            upper = np.exp(-np.exp(np.log(-np.log(xx)) + se2))
    return lower, upper


def fit_km(time, event, conf_type: str = "log", conf_level: float = 0.95) -> pd.DataFrame:
    """Kaplan-Meier curve at every distinct observed time, as R ``survfit(Surv(time, event) ~ 1)``.

    Parameters
    ----------
    time : array of float
        Follow-up time (months in this project).
    event : array of 0/1
        1 = event, 0 = censored.
    conf_type : {"log", "log-log"}
        Pointwise band transform (R default "log"; the upper limit is clipped at 1).

    Returns
    -------
    DataFrame
        Columns ``time, n_risk, n_event, n_censor, surv, std_err, lower, upper``; ``std_err`` is the
        Greenwood standard error of log S(t) (R's ``fit$std.err``), infinite once S reaches 0, where
        the limits are NaN (as R's NA).
    """
    _check_conf_type(conf_type)
    t, e = _as_arrays(time, event)
    # One sort, then counts per distinct time (O(n log n)); at risk at u = subjects with time >= u.
    times, inverse, n_at = np.unique(t, return_inverse=True, return_counts=True)
    n_risk = (len(t) - np.concatenate([[0], np.cumsum(n_at)[:-1]])).astype(float)
    n_event = np.bincount(inverse.ravel(), weights=e, minlength=len(times)).astype(float)
    n_censor = n_at.astype(float) - n_event
    surv = np.cumprod(1 - n_event / n_risk) if len(times) else np.array([])
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
    std_err = np.sqrt(np.cumsum(term))
    lower, upper = _band(surv, std_err, conf_type, conf_level)
    return pd.DataFrame({"time": times, "n_risk": n_risk.astype(int), "n_event": n_event.astype(int),
                         "n_censor": n_censor.astype(int), "surv": surv, "std_err": std_err,
                         "lower": lower, "upper": upper})


def km_table(time, event, times: Iterable[float], conf_type: str = "log",
             conf_level: float = 0.95) -> pd.DataFrame:
    """S(t) with its pointwise CI at given ``times``, as R ``summary(survfit(...), times)``.

    Past the last observed time the estimate is not estimable: ``surv``, ``lower`` and ``upper`` are
    None (R's ``extend = TRUE`` would carry the last value forward). The exception is a curve that has
    already reached 0, where S(t) = 0 is reported (CI None, as R's NA). Before the first event
    S(t) = 1 with limits 1 (as R's summary).

    Returns
    -------
    DataFrame
        Columns ``time, n_risk, surv, std_err, lower, upper`` (object dtype: None where NE).
    """
    curve = fit_km(time, event, conf_type, conf_level)
    t = np.sort(np.asarray(time, dtype=float))
    last = t[-1] if len(t) else -np.inf
    rows = []
    for u in times:
        u = float(u)
        n_risk = int(len(t) - np.searchsorted(t, u, side="left"))   # time >= u
        idx = np.searchsorted(curve["time"].to_numpy(), u, side="right") - 1
        if u > last:
            reached_zero = len(curve) and curve["surv"].iloc[-1] == 0
            rows.append({"time": u, "n_risk": 0, "surv": 0.0 if reached_zero else None,
                         "std_err": None, "lower": None, "upper": None})
        elif idx < 0:
            rows.append({"time": u, "n_risk": n_risk, "surv": 1.0, "std_err": 0.0,
                         "lower": 1.0, "upper": 1.0})
        else:
            r = curve.iloc[idx]
            rows.append({"time": u, "n_risk": n_risk, "surv": float(r["surv"]),
                         "std_err": _none(r["std_err"]), "lower": _none(r["lower"]),
                         "upper": _none(r["upper"])})
    return pd.DataFrame(rows, columns=["time", "n_risk", "surv", "std_err", "lower", "upper"], dtype=object)


def _minmin(y: np.ndarray, x: np.ndarray) -> float | None:
    """R ``survmean``'s ``minmin``: first x with y <= 0.5, midpoint of a flat stretch at exactly 0.5."""
    keep = ~np.isnan(y) & (y < 0.5 + _TOL)
    if not keep.any():
        return None
    x, y = x[keep], y[keep]
    if abs(y[0] - 0.5) < _TOL and (y < y[0]).any():
        return float((x[0] + x[np.argmax(y < y[0])]) / 2)
    return float(x[0])


def median_survival(time, event, conf_type: str = "log", conf_level: float = 0.95) -> dict:
    """Median survival with its CI, as R ``print(survfit(..., conf.type))``.

    The median is the first time S(t) <= 0.5; where S(t) equals 0.5 exactly over a stretch it is the
    midpoint of the stretch. The lower (upper) limit applies the same rule to the lower (upper)
    pointwise band. None = not reached (reported as NR).

    Returns
    -------
    dict
        ``{"estimate", "lower", "upper"}`` in the unit of ``time``.
    """
    curve = fit_km(time, event, conf_type, conf_level)
    x = curve["time"].to_numpy()
    return {"estimate": _minmin(curve["surv"].to_numpy(), x),
            "lower": _minmin(curve["lower"].to_numpy(dtype=float), x),
            "upper": _minmin(curve["upper"].to_numpy(dtype=float), x)}


def median_followup(time, event, conf_type: str = "log", conf_level: float = 0.95) -> dict:
    """Median follow-up by reverse Kaplan-Meier (Schemper and Smith 1996).

    Censoring is the "event" and deaths are censored: R ``survfit(Surv(time, 1 - event) ~ 1)``; the
    median and its CI follow :func:`median_survival`. Also returns the range of follow-up of the
    patients still at risk (censored), and their count.
    """
    t, e = _as_arrays(time, event)
    out = median_survival(t, 1 - e, conf_type, conf_level)
    cens = t[e == 0]
    out.update({"n_censored": int(len(cens)),
                "min_censored": float(cens.min()) if len(cens) else None,
                "max_censored": float(cens.max()) if len(cens) else None})
    return out


def rmst(time, event, tau: float) -> dict:
    """Restricted mean survival time up to ``tau`` with its standard error.

    Mirrors R ``print(survfit(...), rmean = tau)`` (``survival:::survmean``): the area under the
    Kaplan-Meier step function from 0 to tau, and

        Var = sum_j A_j^2 d_j / (n_j (n_j - d_j)),

    over the distinct times t_j <= tau, where A_j is the area under the curve from t_j to tau (terms with
    n_j = d_j are 0, as in R). If tau exceeds the last observed time the curve is extended flat to tau
    (as R does) and a :class:`SurvivalCaveatWarning` is issued.

    Returns
    -------
    dict
        ``{"tau", "estimate", "se"}`` in the unit of ``time``.
    """
    curve = fit_km(time, event)
    tau = float(tau)
    if len(curve) and tau > curve["time"].iloc[-1]:
        warnings.warn(f"RMST horizon {tau:g} is beyond the last follow-up time "
                      f"{curve['time'].iloc[-1]:g}; the curve is extended flat to it",
                      SurvivalCaveatWarning, stacklevel=2)
    keep = curve[curve["time"] <= tau]
    n_r = keep["n_risk"].to_numpy(float)
    d = keep["n_event"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        hh = np.where(n_r - d == 0, 0.0, d / (n_r * (n_r - d)))
    knots = np.concatenate([[0.0], keep["time"].to_numpy(float), [tau]])
    level = np.concatenate([[1.0], keep["surv"].to_numpy(float)])      # S on [knot_k, knot_k+1)
    rect = np.diff(knots) * level                                       # areas of the steps
    estimate = float(rect.sum())
    # A_j = area from t_j to tau = sum of the rectangles after knot j (knot j = t_j, j >= 1)
    tail = np.cumsum(rect[::-1])[::-1]                                  # tail[k] = area from knot k
    area_after = tail[1:]                                               # one per kept time
    var = float(np.sum(area_after ** 2 * hh))
    return {"tau": tau, "estimate": estimate, "se": math.sqrt(var)}


# ----------------------------------------------------------------------------------------------
# Two-arm comparisons
# ----------------------------------------------------------------------------------------------
def _arm_levels(arm: pd.Series) -> list[str]:
    if isinstance(arm.dtype, pd.CategoricalDtype):
        return [str(c) for c in arm.cat.categories if (arm == c).any()]
    return sorted(str(a) for a in pd.unique(arm.dropna()))


def logrank_test(time, event, group) -> dict:
    """Log-rank test of equal survival across groups, as R ``survdiff(Surv(time, event) ~ group)``.

    Uses lifelines' ``multivariate_logrank_test`` (hypergeometric variance, as survdiff).

    Returns
    -------
    dict
        ``{"chisq", "df", "p", "test"}``.
    """
    from lifelines.statistics import multivariate_logrank_test

    t, e = _as_arrays(time, event)
    g = np.asarray(group).astype(str)
    k = len(np.unique(g))
    if k < 2:
        raise SurvivalInputError("the log-rank test needs at least two groups")
    if e.sum() == 0:
        warnings.warn("no events: the log-rank test is undefined", SurvivalCaveatWarning, stacklevel=2)
        return {"chisq": None, "df": k - 1, "p": None, "test": METHODS["logrank"]}
    res = multivariate_logrank_test(t, g, e)
    return {"chisq": float(res.test_statistic), "df": int(res.degrees_of_freedom),
            "p": float(res.p_value), "test": METHODS["logrank"]}


def _efron_loglik(t: np.ndarray, e: np.ndarray, x: np.ndarray, beta: float):
    """Efron partial log-likelihood, score and information of one covariate at ``beta``.

    Efron (1977) approximation for tied event times, as R ``coxph(ties = "efron")``: at an event time
    with d tied events, the l-th (l = 0..d-1) denominator removes the fraction l/d of the tied events'
    weight from the risk set. Vectorised in O(n log n): risk-set sums are reverse cumulative sums over
    the subjects sorted by time, tied-event sums are grouped sums over the distinct event times, and
    the d_j tie-rank terms of event time j are expanded with ``np.repeat``.
    """
    order = np.argsort(t, kind="stable")
    ts, es, xs = t[order], e[order], x[order]
    xc = xs - x.mean()
    w = np.exp(beta * xc)                  # centring (as R) keeps exp() in range; cancels in the ratios
    wx, wxx = w * xs, w * xs * xs
    # Risk-set sums at u: subjects with time >= u = suffix sums from the first index with time >= u.
    s0_all, s1_all, s2_all = (np.cumsum(v[::-1])[::-1] for v in (w, wx, wxx))
    ev = es == 1
    event_times, ev_group, d = np.unique(ts[ev], return_inverse=True, return_counts=True)
    if not len(event_times):
        return 0.0, 0.0, 0.0
    first = np.searchsorted(ts, event_times, side="left")
    s0, s1, s2 = s0_all[first], s1_all[first], s2_all[first]
    ev_group = ev_group.ravel()
    d0, d1, d2 = (np.bincount(ev_group, weights=v[ev], minlength=len(event_times)) for v in (w, wx, wxx))
    # Tie ranks: for event time j, f = k / d_j for k = 0..d_j - 1.
    j = np.repeat(np.arange(len(event_times)), d)
    k = np.arange(len(j)) - np.repeat(np.cumsum(d) - d, d)
    f = k / d[j]
    a0, a1, a2 = s0[j] - f * d0[j], s1[j] - f * d1[j], s2[j] - f * d2[j]
    ratio = a1 / a0
    ll = float(beta * xc[ev].sum() - np.log(a0).sum())
    score = float(xs[ev].sum() - ratio.sum())
    info = float((a2 / a0 - ratio ** 2).sum())
    return ll, score, info


def fit_cox_arm(time, event, group, reference: str, conf_level: float = 0.95) -> dict:
    """Univariable Cox hazard ratio of the other group vs ``reference``, as R ``coxph(..., ties="efron")``.

    Newton-Raphson (with step halving) on the Efron partial likelihood of the arm indicator, iterated to
    machine precision. (lifelines' ``CoxPHFitter`` gives the same model but stopped up to 5e-7 short of the
    maximum on small examples, outside the 1e-6 agreement with R the tests require, hence this short
    implementation.) Returns the HR with its Wald CI, the Wald P (R ``summary(fit)$coefficients``) and the
    likelihood-ratio chi-square and P against the null model (R ``summary(fit)$logtest``). If an arm has
    no events the partial likelihood has no maximum (R warns that the coefficient may be infinite): the
    HR is None and a :class:`SurvivalCaveatWarning` is issued.

    Returns
    -------
    dict
        ``{"estimate", "lower", "upper", "p", "lr_p", "lr_chisq", "coef", "se", "comparison"}``.
    """
    t, e = _as_arrays(time, event)
    g = np.asarray(group).astype(str)
    levels = [reference] + sorted(set(g) - {reference})
    if len(levels) != 2 or reference not in set(g):
        raise SurvivalInputError(f"need exactly two groups including the reference {reference!r}; got {sorted(set(g))}")
    other = levels[1]
    comparison = f"{other} vs {reference}"
    empty = {"estimate": None, "lower": None, "upper": None, "p": None, "lr_p": None,
             "lr_chisq": None, "coef": None, "se": None, "comparison": comparison}
    events_by = {lv: int(e[g == lv].sum()) for lv in levels}
    if min(events_by.values()) == 0:
        warnings.warn(f"no events in {[k for k, v in events_by.items() if v == 0]}: the Cox hazard "
                      "ratio is not estimable (monotone likelihood)", SurvivalCaveatWarning, stacklevel=2)
        return empty
    x = (g == other).astype(float)
    ll0, score, info = _efron_loglik(t, e, x, 0.0)
    beta, ll = 0.0, ll0
    for _ in range(100):
        step = score / info
        new = beta + step
        ll_new, score_new, info_new = _efron_loglik(t, e, x, new)
        halvings = 0
        # Step halving (as R coxph) only on a real decrease: a log-likelihood of thousands of terms
        # carries rounding noise of ~1e-12 * |ll|, and halving on noise stopped Newton short of the root
        # (by ~1e-7 relative at 1,000+ patients).
        while ll_new < ll - 1e-10 * max(1.0, abs(ll)) and halvings < 30:
            step /= 2
            new = beta + step
            ll_new, score_new, info_new = _efron_loglik(t, e, x, new)
            halvings += 1
        beta, ll, score, info = new, ll_new, score_new, info_new
        if abs(step) < 1e-13 * (1 + abs(beta)):
            break
    else:  # pragma: no cover - a binary covariate with events in both arms converges in a few steps
        warnings.warn("Cox model did not converge", SurvivalCaveatWarning, stacklevel=2)
    se = 1 / math.sqrt(info)
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    lr_chisq = max(2 * (ll - ll0), 0.0)
    return {"estimate": math.exp(beta), "lower": math.exp(beta - z * se), "upper": math.exp(beta + z * se),
            "p": float(2 * stats.norm.sf(abs(beta / se))), "lr_p": float(stats.chi2.sf(lr_chisq, 1)),
            "lr_chisq": lr_chisq, "coef": beta, "se": se, "loglik": [ll0, ll], "comparison": comparison}


def rmst_difference(a: dict, b: dict, conf_level: float = 0.95) -> dict:
    """Difference in RMST ``b - a`` with SE sqrt(se_a^2 + se_b^2) (independent arms), normal CI and P."""
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    diff = b["estimate"] - a["estimate"]
    se = math.hypot(a["se"], b["se"])
    p = float(2 * stats.norm.sf(abs(diff / se))) if se > 0 else None
    return {"estimate": diff, "se": se, "lower": diff - z * se, "upper": diff + z * se, "p": p}


# ----------------------------------------------------------------------------------------------
# One endpoint of the study
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Endpoint:
    name: str
    label: str
    time_col: str
    event_col: str
    event_text: str


def _endpoint(endpoint: str) -> _Endpoint:
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be one of {sorted(ENDPOINTS)}, got {endpoint!r}")
    return _Endpoint(endpoint, *ENDPOINTS[endpoint])


def _arm_data(patients: pd.DataFrame, endpoint: str):
    ep = _endpoint(endpoint)
    missing = [c for c in ("arm", ep.time_col, ep.event_col) if c not in patients.columns]
    if missing:
        raise SurvivalInputError(f"patients lacks columns {missing}")
    levels = _arm_levels(patients["arm"])
    data = {}
    for lv in levels:
        sub = patients[patients["arm"].astype(str) == lv]
        data[lv] = _as_arrays(sub[ep.time_col], sub[ep.event_col])
        if len(sub) < 2:
            warnings.warn(f"arm {lv} has {len(sub)} patient(s): estimates are unstable",
                          SurvivalCaveatWarning, stacklevel=3)
    return ep, levels, data


def arm_key(arm: str) -> str:
    """Key of an arm in ``text`` entries of the results file: "CMT+ICI" -> "CMT_ICI"."""
    return "".join(ch if ch.isalnum() else "_" for ch in str(arm)).strip("_")


def survival_results(patients: pd.DataFrame, endpoint: str, conf_type: str = "log",
                     rate_times: Sequence[float] = (6, 12, 24), rmst_horizon: float = 24,
                     conf_level: float = 0.95) -> dict:
    """All numbers of one endpoint for the results file (section ``os`` or ``pfs``).

    Parameters
    ----------
    patients : DataFrame
        Columns ``arm`` (Categorical; the first level is the reference), ``<endpoint>_months``,
        ``<endpoint>_event``.
    endpoint : {"os", "pfs"}
    conf_type : {"log", "log-log"}
        Pointwise band for S(t), the rates and the median CI (R default "log").
    rate_times : months at which S(t) is reported.
    rmst_horizon : tau in months.

    Returns
    -------
    dict
        ``median``, ``logrank_p``, ``logrank_chisq``, ``logrank_df``, ``hr``, ``rates``, ``followup``,
        ``rmst``, ``events``, ``n``, ``methods`` and ``text`` (formatted strings for prose).
    """
    from helpers.report.formatting import format_ci, format_estimate_ci, format_number, format_p

    _check_conf_type(conf_type)
    ep, levels, data = _arm_data(patients, endpoint)
    if len(levels) != 2:
        raise SurvivalInputError(f"expected two arms, found {levels}")
    ref, exp = levels
    all_t = np.concatenate([data[a][0] for a in levels])
    all_e = np.concatenate([data[a][1] for a in levels])
    all_g = np.concatenate([[a] * len(data[a][0]) for a in levels])

    median = {a: median_survival(*data[a], conf_type, conf_level) for a in levels}
    lr = logrank_test(all_t, all_e, all_g)
    hr = fit_cox_arm(all_t, all_e, all_g, reference=ref, conf_level=conf_level)
    rates = {}
    for a in levels:
        tab = km_table(*data[a], rate_times, conf_type, conf_level)
        rates[a] = {f"{int(r.time) if float(r.time).is_integer() else r.time}": {
            "months": float(r.time), "estimate": r.surv, "lower": r.lower, "upper": r.upper,
            "n_risk": int(r.n_risk)} for r in tab.itertuples()}
    followup = {a: median_followup(*data[a], conf_type, conf_level) for a in levels}
    followup["overall"] = median_followup(all_t, all_e, conf_type, conf_level)
    rm = {a: rmst(*data[a], rmst_horizon) for a in levels}
    rm["difference"] = rmst_difference(rm[ref], rm[exp], conf_level)
    rm["difference"]["comparison"] = f"{exp} minus {ref}"
    events = {a: {"events": int(data[a][1].sum()), "n": int(len(data[a][1]))} for a in levels}

    rate_labels = [f"{r:g}" for r in rate_times]
    text = {"endpoint": ep.label, "conf_type": conf_type,
            "ci_scale": "log" if conf_type == "log" else "log(-log)",
            "rmst_horizon": f"{float(rmst_horizon):g}",
            "rate_times": (", ".join(rate_labels[:-1]) + " and " + rate_labels[-1]) if len(rate_labels) > 1
            else "".join(rate_labels)}
    for a in levels:
        k = arm_key(a)
        m = median[a]
        text[f"median_{k}"] = _estimate_ci_text(m)
        text[f"median_{k}_estimate"] = format_number(m["estimate"])
        text[f"events_{k}"] = f"{events[a]['events']} of {events[a]['n']}"
        f = followup[a]
        text[f"followup_{k}"] = _estimate_ci_text(f)
        for key, r in rates[a].items():
            est = None if r["estimate"] is None else 100 * r["estimate"]
            lo = None if r["lower"] is None else 100 * r["lower"]
            hi = None if r["upper"] is None else 100 * r["upper"]
            text[f"rate_{key}m_{k}"] = ("NE" if est is None else
                                      f"{format_number(est)}% (95% CI {format_ci(lo, hi, missing='NE')})")
        r = rm[a]
        text[f"rmst_{k}"] = format_estimate_ci(r["estimate"], r["estimate"] - 1.959963984540054 * r["se"],
                                               r["estimate"] + 1.959963984540054 * r["se"])
    f = followup["overall"]
    text["followup_overall"] = _estimate_ci_text(f)
    d = rm["difference"]
    text["rmst_difference"] = format_estimate_ci(d["estimate"], d["lower"], d["upper"])
    text["rmst_difference_p"] = _p_statement(d["p"], format_p)
    text["logrank_p"] = _p_statement(lr["p"], format_p)
    text["logrank_chisq"] = format_number(lr["chisq"], 2, missing="NE")
    text["hr"] = format_estimate_ci(hr["estimate"], hr["lower"], hr["upper"], digits=2, missing="NE")
    text["hr_p"] = _p_statement(hr["p"], format_p)
    text["hr_lr_p"] = _p_statement(hr["lr_p"], format_p)
    text["events_total"] = f"{int(all_e.sum())} of {len(all_e)}"

    return {
        "endpoint": ep.name, "label": ep.label, "event": ep.event_text, "unit": "months",
        "reference_arm": ref, "comparison_arm": exp, "conf_type": conf_type, "conf_level": conf_level,
        "n": {a: events[a]["n"] for a in levels},
        "median": median,
        "logrank_p": lr["p"], "logrank_chisq": lr["chisq"], "logrank_df": lr["df"],
        "hr": {k: hr[k] for k in ("estimate", "lower", "upper", "p", "lr_p", "lr_chisq", "coef", "se",
                                  "comparison")},
        "rates": rates, "followup": followup, "rmst": rm, "events": events,
        "methods": {"ci": METHODS[f"ci_{conf_type}"], "median": METHODS["median"],
                    "logrank": METHODS["logrank"], "cox": METHODS["cox"], "cox_p": METHODS["cox_p"],
                    "rmst": METHODS["rmst"], "followup": METHODS["followup"]},
        "text": text,
    }


def _estimate_ci_text(d: dict, digits: int = 1) -> str:
    """"10.8 (95% CI 8.9–12.9)"; "NR" alone when the estimate itself was not reached."""
    from helpers.report.formatting import format_estimate_ci

    if d.get("estimate") is None:
        return "NR"
    return format_estimate_ci(d["estimate"], d.get("lower"), d.get("upper"), digits=digits)


def _p_statement(p, format_p) -> str:
    """"P = 0.004" / "P < 0.001" / "P not estimable"."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "P not estimable"
    s = format_p(p)
    return f"P {s[0]} {s[1:]}" if s.startswith("<") else f"P = {s}"


# ----------------------------------------------------------------------------------------------
# Tables for the notebook
# ----------------------------------------------------------------------------------------------
def make_survival_table(results: Sequence[dict]) -> pd.DataFrame:
    """Medians, rates, events, log-rank and Cox HR of one or more endpoints, one row per quantity.

    ``results`` are :func:`survival_results` dicts (e.g. OS then PFS). Columns: Endpoint, Quantity,
    one column per arm, and "Comparison" (log-rank and HR, on the first row of each endpoint).
    """
    from helpers.report.formatting import format_ci, format_estimate_ci, format_number, format_p

    rows = []
    for res in results:
        arms = [res["reference_arm"], res["comparison_arm"]]
        def row(q, vals, comp=""):
            rows.append({"Endpoint": res["label"], "Quantity": q, **dict(zip(arms, vals)), "Comparison": comp})
        row("Patients, n", [str(res["n"][a]) for a in arms])
        row("Events, n (%)", [f"{res['events'][a]['events']} ({100 * res['events'][a]['events'] / res['events'][a]['n']:.1f})"
                              for a in arms])
        row("Median, months (95% CI)",
            [_estimate_ci_text(res["median"][a]).replace(" (95% CI ", " (") for a in arms])
        for key in res["rates"][arms[0]]:
            vals = []
            for a in arms:
                r = res["rates"][a][key]
                if r["estimate"] is None:
                    vals.append("NE")
                else:
                    lo = None if r["lower"] is None else 100 * r["lower"]
                    hi = None if r["upper"] is None else 100 * r["upper"]
                    vals.append(f"{100 * r['estimate']:.1f} ({format_ci(lo, hi, missing='NE')})")
            row(f"{key}-month rate, % (95% CI)", vals)
        hr = res["hr"]
        row("Log-rank test", ["", ""],
            f"χ² = {format_number(res['logrank_chisq'], 2, 'NE')}, df = {res['logrank_df']}, "
            f"{_p_statement(res['logrank_p'], format_p)}")
        row(f"Hazard ratio ({hr['comparison']}), 95% CI", ["", ""],
            f"{format_estimate_ci(hr['estimate'], hr['lower'], hr['upper'], digits=2, missing='NE').replace(' (95% CI ', ' (')}; "
            f"Wald {_p_statement(hr['p'], format_p)}; LR {_p_statement(hr['lr_p'], format_p)}")
    df = pd.DataFrame(rows)
    # Show the endpoint name once per block.
    df.loc[df["Endpoint"].duplicated(), "Endpoint"] = ""
    return df


def survival_footnote(conf_type: str = "log") -> str:
    """Footnote of the survival table: every method named (same strings as the methods text)."""
    _check_conf_type(conf_type)
    return ("Medians and rates: " + METHODS["km"] + ", " + METHODS[f"ci_{conf_type}"] + "; " + METHODS["median"]
            + ". NR, not reached; NE, not estimable (beyond the last follow-up of the arm). "
            + "Log-rank: " + METHODS["logrank"] + ". Hazard ratio: " + METHODS["cox"] + "; "
            + METHODS["cox_p"] + ".")


def rmst_footnote() -> str:
    """Footnote of the RMST table."""
    return METHODS["rmst"] + "; difference between arms with a normal 95% CI and two-sided P."


def followup_footnote() -> str:
    """Footnote of the follow-up table."""
    return (METHODS["followup"] + ". NR: fewer than half of the patients were censored, so the reverse "
            "Kaplan-Meier curve does not reach 0.5; the range of censored follow-up times is given instead.")


def make_rmst_table(results: Sequence[dict]) -> pd.DataFrame:
    """RMST per arm (months, 95% CI) and the difference, one row per endpoint."""
    from helpers.report.formatting import format_estimate_ci, format_p

    z = stats.norm.ppf(0.975)
    rows = []
    for res in results:
        arms = [res["reference_arm"], res["comparison_arm"]]
        rm = res["rmst"]
        row = {"Endpoint": res["label"], "Horizon τ, months": f"{rm[arms[0]]['tau']:g}"}
        for a in arms:
            r = rm[a]
            row[f"{a}, months (95% CI)"] = format_estimate_ci(r["estimate"], r["estimate"] - z * r["se"],
                                                              r["estimate"] + z * r["se"]).replace("95% CI ", "")
        d = rm["difference"]
        row[f"Difference ({d['comparison']}), months (95% CI)"] = format_estimate_ci(
            d["estimate"], d["lower"], d["upper"]).replace("95% CI ", "")
        row["P"] = format_p(d["p"])
        rows.append(row)
    return pd.DataFrame(rows)


def make_followup_table(results: Sequence[dict]) -> pd.DataFrame:
    """Median follow-up by reverse Kaplan-Meier per arm and overall, one row per endpoint.

    A reverse Kaplan-Meier median is "NR" when fewer than half of the patients were censored before the
    last death (follow-up was then complete for most patients); the range of censored follow-up times
    is given alongside.
    """
    from helpers.report.formatting import RANGE_SEP, format_number

    rows = []
    for res in results:
        arms = [res["reference_arm"], res["comparison_arm"]]
        row = {"Endpoint": res["label"]}
        for a in arms + ["overall"]:
            f = res["followup"][a]
            name = "Overall" if a == "overall" else a
            row[f"{name}, months (95% CI)"] = _estimate_ci_text(f).replace("95% CI ", "")
        fo = res["followup"]["overall"]
        row["Censored, n"] = str(fo["n_censored"])
        row["Censored follow-up range, months"] = (
            "–" if fo["min_censored"] is None else
            f"{format_number(fo['min_censored'])}{RANGE_SEP}{format_number(fo['max_censored'])}")
        rows.append(row)
    return pd.DataFrame(rows)


def number_at_risk(time, event, breaks: Iterable[float]) -> pd.DataFrame:
    """Number at risk (time >= t) and cumulative events (event time <= t) at each break."""
    t, e = _as_arrays(time, event)
    return pd.DataFrame({"time": list(breaks),
                         "n_risk": [int((t >= b).sum()) for b in breaks],
                         "cum_events": [int(((t <= b) & (e == 1)).sum()) for b in breaks]})
