"""Kaplan-Meier, log-rank, univariable Cox hazard ratio of the arm, RMST and reverse-KM follow-up.

The one Kaplan-Meier implementation of the project (:func:`fit_km`, with optional case weights); the
figures, the reverse Kaplan-Meier follow-up and the weighted curves of the sensitivity analysis all call
it. Conventions follow R's ``survival`` package (3.5-3), which reviewers treat as the reference; each
function names the R call it mirrors, and ``tests/reference/survival.R`` produces the values the tests
compare to (relative tolerance 1e-6). Times are in months in the project (any unit works here).
Also: quartiles with CIs (:func:`survival_quantiles`, R ``quantile.survfit``), the observed range with
censored extremes (:func:`observed_range`), differences of landmark rates (:func:`rate_difference`), the
proportional-hazards test of the arm (:func:`ph_test_arm`, R ``cox.zph(transform = "km")``) and hazard
ratios by period (:func:`piecewise_hazard_ratios`, R ``coxph`` on ``survSplit`` data).
Functions return numbers (dicts and DataFrames); :mod:`helpers.analyses.survival` wraps them in typed
results and :mod:`helpers.report.survival` writes the words.

The log-rank test (:func:`logrank_test`) is written out (one sort, counts per time and group), with
the numbers of R ``survdiff`` and of lifelines' ``multivariate_logrank_test``; ``scripts/benchmark_km.py``
times Kaplan-Meier + log-rank against R and lifelines at 10^4-10^6 patients.

Where this module differs from lifelines:

* Kaplan-Meier confidence bands are pointwise, with Greenwood's variance, on the log scale by default
  (R ``survfit(conf.type = "log")``, upper limit clipped at 1); ``"log-log"`` is an option. lifelines
  offers log-log only.
* The median is R's: on a stretch where S(t) equals 0.5 exactly, the midpoint of the stretch
  (lifelines returns its start). Its CI limits are where the pointwise band crosses 0.5, by the same rule.
* Survival past the last follow-up time of an arm is not estimable (None) in :func:`km_table`; R's
  ``summary(fit, times, extend = TRUE)``, lifelines and :func:`km_at` carry the last value forward.
* The Cox hazard ratio comes from the project's Cox engine (:func:`helpers.stats.cox.fit_coxph`, Efron
  ties, Newton-Raphson to machine precision; lifelines' ``CoxPHFitter`` stopped up to 5e-7 short of R's
  maximum).
* The RMST standard error is the estimator's (R ``print(fit, rmean = tau)``), not lifelines'
  ``restricted_mean_survival_time(return_variance=True)``, which is the variance of min(T, tau).
"""
from __future__ import annotations

import math
import warnings
from typing import Iterable

import numpy as np
import pandas as pd
from scipy import stats

#: Confidence-band transforms available (R ``survfit(conf.type = ...)``).
CONF_TYPES = ("log", "log-log")

#: Endpoint name -> (time column in months, event column 0/1) of ``study.patients``.
ENDPOINT_COLUMNS = {
    "os": ("os_months", "os_event"),
    "pfs": ("pfs_months", "pfs_event"),
}

#: Machine name of the two-arm test (the report layer names it in words).
LOGRANK_TEST = "log-rank"

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


def _as_weights(weights, n: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise SurvivalInputError(f"weights must be one-dimensional of length {n}")
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise SurvivalInputError(f"weights must be finite and >= 0; offending rows {np.flatnonzero(bad).tolist()}")
    return w


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


def fit_km(time, event, conf_type: str = "log", conf_level: float = 0.95, weights=None) -> pd.DataFrame:
    """Kaplan-Meier curve at every distinct observed time, as R ``survfit(Surv(time, event) ~ 1)``.

    Parameters
    ----------
    time : array of float
        Follow-up time (months in this project).
    event : array of 0/1
        1 = event, 0 = censored.
    conf_type : {"log", "log-log"}
        Pointwise band transform (R default "log"; the upper limit is clipped at 1).
    conf_level : float
        Level of the pointwise band.
    weights : array of float >= 0, optional
        Case weights (e.g. inverse-probability weights): the counts at risk, of events and of censorings
        are weighted sums, S(t) = prod(1 - d_j / n_j) as R ``survfit(..., weights = w)``. The band then
        uses Greenwood's formula on the weighted counts, as R ``survfit(..., weights = w, robust = FALSE)``
        (R's default with weights is an infinitesimal-jackknife variance, not implemented here).

    Returns
    -------
    DataFrame
        Columns ``time, n_risk, n_event, n_censor, surv, std_err, lower, upper``; ``std_err`` is the
        Greenwood standard error of log S(t) (R's ``fit$std.err``), infinite once S reaches 0, where
        the limits are NaN (as R's NA). Counts are integers without weights, weighted sums with them.
    """
    _check_conf_type(conf_type)
    t, e = _as_arrays(time, event)
    if weights is None:
        # One sort, then counts per distinct time (O(n log n)); at risk at u = subjects with time >= u.
        times, inverse, n_at = np.unique(t, return_inverse=True, return_counts=True)
        n_risk = (len(t) - np.concatenate([[0], np.cumsum(n_at)[:-1]])).astype(float)
        n_event = np.bincount(inverse.ravel(), weights=e, minlength=len(times)).astype(float)
        n_censor = n_at.astype(float) - n_event
    else:
        w = _as_weights(weights, len(t))
        times, inverse = np.unique(t, return_inverse=True)
        inverse = inverse.ravel()
        w_at = np.bincount(inverse, weights=w, minlength=len(times))
        n_risk = w_at[::-1].cumsum()[::-1]
        n_event = np.bincount(inverse, weights=w * e, minlength=len(times))
        n_censor = w_at - n_event
    surv = np.cumprod(1 - n_event / n_risk) if len(times) else np.array([])
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
    std_err = np.sqrt(np.cumsum(term))
    lower, upper = _band(surv, std_err, conf_type, conf_level)
    if weights is None:
        n_risk, n_event, n_censor = n_risk.astype(int), n_event.astype(int), n_censor.astype(int)
    return pd.DataFrame({"time": times, "n_risk": n_risk, "n_event": n_event,
                         "n_censor": n_censor, "surv": surv, "std_err": std_err,
                         "lower": lower, "upper": upper})


def km_steps(time, event, conf_type: str = "log", conf_level: float = 0.95, weights=None) -> pd.DataFrame:
    """The Kaplan-Meier step function from time 0, ready for ``ax.step(..., where="post")``.

    :func:`fit_km` with a first row at time 0 (S = 1, limits 1, nothing at risk removed yet).
    Columns ``time, surv, lower, upper, n_censor``.
    """
    curve = fit_km(time, event, conf_type, conf_level, weights=weights)
    head = pd.DataFrame({"time": [0.0], "surv": [1.0], "lower": [1.0], "upper": [1.0], "n_censor": [0]})
    return pd.concat([head, curve[["time", "surv", "lower", "upper", "n_censor"]]], ignore_index=True)


def km_at(time, event, times: Iterable[float], weights=None) -> np.ndarray:
    """S(t) at ``times``, carried forward past the last time, as R ``summary(fit, times, extend = TRUE)$surv``.

    S(t) = 1 before the first event. Optional case ``weights`` as :func:`fit_km`. For the reported
    rates (not estimable past the last follow-up, with CI) use :func:`km_table`.
    """
    curve = fit_km(time, event, weights=weights)
    pos = np.searchsorted(curve["time"].to_numpy(), np.asarray(times, float), side="right")
    return np.concatenate([[1.0], curve["surv"].to_numpy(float)])[pos]


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


def _minmin(y: np.ndarray, x: np.ndarray, target: float = 0.5) -> float | None:
    """R ``survmean``'s ``minmin``: first x with y <= target, midpoint of a flat stretch at exactly target.

    With ``target = 1 - p`` this is R ``quantile.survfit``'s rule for the p-th quantile.
    """
    keep = ~np.isnan(y) & (y < target + _TOL)
    if not keep.any():
        return None
    x, y = x[keep], y[keep]
    if abs(y[0] - target) < _TOL and (y < y[0]).any():
        return float((x[0] + x[np.argmax(y < y[0])]) / 2)
    return float(x[0])


def median_survival(time, event, conf_type: str = "log", conf_level: float = 0.95, weights=None) -> dict:
    """Median survival with its CI, as R ``print(survfit(..., conf.type))``.

    The median is the first time S(t) <= 0.5; where S(t) equals 0.5 exactly over a stretch it is the
    midpoint of the stretch. The lower (upper) limit applies the same rule to the lower (upper)
    pointwise band. None = not reached (reported as NR). ``weights``: optional case weights
    (see :func:`fit_km`).

    Returns
    -------
    dict
        ``{"estimate", "lower", "upper"}`` in the unit of ``time``.
    """
    curve = fit_km(time, event, conf_type, conf_level, weights=weights)
    x = curve["time"].to_numpy()
    return {"estimate": _minmin(curve["surv"].to_numpy(), x),
            "lower": _minmin(curve["lower"].to_numpy(dtype=float), x),
            "upper": _minmin(curve["upper"].to_numpy(dtype=float), x)}


def _findq(x: np.ndarray, y: np.ndarray, p: float, tol: float = _TOL) -> float | None:
    """R ``survival:::findq``: the time at which the cumulative probability ``y`` (0 at ``x[0]``) reaches
    ``p``, by ``approx(method = "constant", f = 1)`` on y +/- tol (the midpoint of a flat stretch at p).

    Follows R also where ``y`` is not monotone (a pointwise band can be): after dropping repeated y
    values, ``approx`` sorts the points by y, so the answer can lie past the first crossing.
    """
    if not np.any(~np.isnan(y)) or np.nanmax(y) < p:
        return None
    xmax = x[-1]
    # duplicated(y): later repeats (NaN repeats included) dropped
    _, first = np.unique(np.where(np.isnan(y), np.inf, y), return_index=True)
    keep = np.sort(first)
    x, y = x[keep], y[keep]
    n = len(y)

    def approx_right(shift: float):
        xv = y + shift
        ok = ~np.isnan(xv)
        xs, idx = xv[ok], np.arange(1, n + 1)[ok]
        order = np.argsort(xs, kind="stable")
        xs, idx = xs[order], idx[order]
        if p < xs[0] or p > xs[-1]:
            return None
        j = int(np.searchsorted(xs, p, side="left"))      # first xs >= p
        return int(idx[j])

    i1, i2 = approx_right(tol), approx_right(-tol)
    if p == 0:
        return float(x[0])
    if i1 is None or i2 is None:
        return None
    quant = (x[i1 - 1] + x[i2 - 1]) / 2
    if not np.isnan(y[-1]) and abs(p - y[-1]) < tol:
        quant = (x[i1 - 1] + xmax) / 2
    return float(quant)


def survival_quantiles(time, event, probs: Iterable[float] = (0.25, 0.5, 0.75), conf_type: str = "log",
                       conf_level: float = 0.95) -> pd.DataFrame:
    """Quantiles of the time to event with their CIs, as R ``quantile(survfit(...), probs, conf.int = TRUE)``.

    The p-th quantile is the first time S(t) <= 1 - p (the midpoint of a stretch where S(t) equals 1 - p
    exactly); its lower (upper) limit applies R's rule (``survival:::findq``) to the lower (upper)
    pointwise band (Brookmeyer and Crowley 1982). None = not reached.

    Deliberate caveat, as in R: where the upper band is not monotone (it can rise after a censoring),
    ``quantile()``'s limit can differ from ``print.survfit``'s median limit (the first crossing, see
    :func:`median_survival`); the project shows the median from :func:`median_survival` (as tern's
    ``s_surv_time``) and the 25th and 75th percentiles from this function.

    Returns
    -------
    DataFrame
        Columns ``prob, estimate, lower, upper`` (months in this project; object dtype, None = NR).
    """
    curve = fit_km(time, event, conf_type, conf_level)
    x = np.concatenate([[0.0], curve["time"].to_numpy(float)])

    def cum(col):
        return np.concatenate([[0.0], 1.0 - curve[col].to_numpy(dtype=float)])

    rows = []
    for p in probs:
        p = float(p)
        rows.append({"prob": p, "estimate": _findq(x, cum("surv"), p),
                     "lower": _findq(x, cum("lower"), p), "upper": _findq(x, cum("upper"), p)})
    return pd.DataFrame(rows, columns=["prob", "estimate", "lower", "upper"], dtype=object)


def observed_range(time, event) -> dict:
    """Shortest and longest observed time, each flagged when it is a censored time.

    An extreme is flagged censored when no event occurred at that time (an event and a censoring at the
    same time count as an event), as the "+" of tern's time-to-event range. R:
    ``range(time)``; ``all(status[time == min(time)] == 0)``.

    Returns
    -------
    dict
        ``{"min", "max", "min_censored", "max_censored"}`` (None when there are no patients).
    """
    t, e = _as_arrays(time, event)
    if not len(t):
        return {"min": None, "max": None, "min_censored": None, "max_censored": None}
    lo, hi = float(t.min()), float(t.max())
    return {"min": lo, "max": hi, "min_censored": bool((e[t == lo] == 0).all()),
            "max_censored": bool((e[t == hi] == 0).all())}


def rate_difference(time_a, event_a, time_b, event_b, times: Iterable[float],
                    conf_level: float = 0.95) -> pd.DataFrame:
    """Difference of Kaplan-Meier event-free rates ``S_b(t) - S_a(t)`` at ``times`` with a Wald CI.

    SE = sqrt(se_a^2 + se_b^2), with se the Greenwood standard error of S(t) itself (R
    ``summary(survfit(...), times)$std.err``: S(t) times the standard error of log S(t)); two-sided P
    from the normal distribution (as tern's ``surv_timepoint``). Not estimable (None) when either rate
    is (beyond the last follow-up of an arm).

    Returns
    -------
    DataFrame
        Columns ``time, estimate, se, lower, upper, p`` (object dtype: None where not estimable).
    """
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    ta = km_table(time_a, event_a, times)
    tb = km_table(time_b, event_b, times)
    rows = []
    for ra, rb in zip(ta.itertuples(), tb.itertuples()):
        if ra.surv is None or rb.surv is None or ra.std_err is None or rb.std_err is None:
            rows.append({"time": float(ra.time), "estimate": None, "se": None, "lower": None, "upper": None,
                         "p": None})
            continue
        se_a, se_b = float(ra.surv) * float(ra.std_err), float(rb.surv) * float(rb.std_err)
        diff = float(rb.surv) - float(ra.surv)
        se = math.hypot(se_a, se_b)
        rows.append({"time": float(ra.time), "estimate": diff, "se": se, "lower": diff - z * se,
                     "upper": diff + z * se, "p": float(2 * stats.norm.sf(abs(diff / se))) if se > 0 else None})
    return pd.DataFrame(rows, columns=["time", "estimate", "se", "lower", "upper", "p"], dtype=object)


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
def logrank_test(time, event, group) -> dict:
    """Log-rank test of equal survival across groups, as R ``survdiff(Surv(time, event) ~ group)``.

    Observed minus expected events per group with the hypergeometric variance (as ``survdiff`` and
    lifelines' ``multivariate_logrank_test``, whose numbers it reproduces): one sort of the times,
    counts per (time, group), O(n log n) without a loop over times.

    Returns
    -------
    dict
        ``{"chisq", "df", "p", "test"}``; ``test`` is ``"log-rank"``; chisq and p are None without events.
    """
    t, e = _as_arrays(time, event)
    codes, k = _group_codes(group)
    if k < 2:
        raise SurvivalInputError("the log-rank test needs at least two groups")
    if e.sum() == 0:
        warnings.warn("no events: the log-rank test is undefined", SurvivalCaveatWarning, stacklevel=2)
        return {"chisq": None, "df": k - 1, "p": None, "test": LOGRANK_TEST}
    chisq = _logrank_statistic(t, e, codes, k)
    return {"chisq": chisq, "df": k - 1, "p": float(stats.chi2.sf(chisq, k - 1)), "test": LOGRANK_TEST}


def _group_codes(group) -> tuple[np.ndarray, int]:
    """Codes 0..k-1 of the distinct groups (as their text labels) and k, by hashing (no sort)."""
    g = np.asarray(group)
    if g.dtype.kind in "biu":                       # integers: equal values <=> equal labels
        codes, labels = pd.factorize(g)
    else:
        codes, labels = pd.factorize(g.astype(str))
    return np.asarray(codes, dtype=np.int64), len(labels)


def _logrank_statistic(t: np.ndarray, e: np.ndarray, codes: np.ndarray, k: int) -> float:
    """Log-rank chi-square on k - 1 df (groups coded 0..k-1): Z' V^- Z over the first k - 1 groups,
    Z = observed - expected, V_gh = sum_t d (n - d) / (n^2 (n - 1)) n_g (n delta_gh - n_h)."""
    times, inverse = np.unique(t, return_inverse=True)
    cell = inverse.ravel() * k + codes
    leaving = np.bincount(cell, minlength=len(times) * k).reshape(len(times), k)
    dead = np.bincount(cell, weights=e, minlength=len(times) * k).reshape(len(times), k)
    at_risk = np.cumsum(leaving[::-1], axis=0)[::-1].astype(float)      # n_g: time >= t
    has_event = dead.sum(axis=1) > 0
    n_g, d_g = at_risk[has_event], dead[has_event]
    n, d = n_g.sum(axis=1), d_g.sum(axis=1)
    z = (d_g - n_g * (d / n)[:, None]).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(n > 1, (n - d) / (n - 1), 1.0) * d / n ** 2
    V = np.diag((factor * n) @ n_g) - (n_g * factor[:, None]).T @ n_g
    return float(z[:-1] @ np.linalg.pinv(V[:-1, :-1]) @ z[:-1])


def fit_cox_arm(time, event, group, reference: str, conf_level: float = 0.95) -> dict:
    """Univariable Cox hazard ratio of the other group vs ``reference``, as R ``coxph(..., ties="efron")``.

    Fitted by the project's one Cox engine, :func:`helpers.stats.cox.fit_coxph` (Efron ties, Newton-Raphson
    to machine precision). Returns the HR with its Wald CI, the Wald P (R ``summary(fit)$coefficients``)
    and the likelihood-ratio chi-square and P against the null model (R ``summary(fit)$logtest``). If an
    arm has no events the partial likelihood has no maximum (R warns that the coefficient may be
    infinite): the HR is None and a :class:`SurvivalCaveatWarning` is issued.

    Returns
    -------
    dict
        ``{"estimate", "lower", "upper", "p", "lr_p", "lr_chisq", "coef", "se", "loglik", "reference",
        "other"}`` (``loglik``: null model, fitted model).
    """
    from helpers.stats.cox import fit_coxph

    t, e = _as_arrays(time, event)
    g = np.asarray(group).astype(str)
    levels = [reference] + sorted(set(g) - {reference})
    if len(levels) != 2 or reference not in set(g):
        raise SurvivalInputError(f"need exactly two groups including the reference {reference!r}; got {sorted(set(g))}")
    other = levels[1]
    empty = {"estimate": None, "lower": None, "upper": None, "p": None, "lr_p": None,
             "lr_chisq": None, "coef": None, "se": None, "loglik": None,
             "reference": reference, "other": other}
    events_by = {lv: int(e[g == lv].sum()) for lv in levels}
    if min(events_by.values()) == 0:
        warnings.warn(f"no events in {[k for k, v in events_by.items() if v == 0]}: the Cox hazard "
                      "ratio is not estimable (monotone likelihood)", SurvivalCaveatWarning, stacklevel=2)
        return empty
    fit = fit_coxph(t, e, (g == other).astype(float)[:, None], ties="efron")
    if not fit.converged:  # pragma: no cover - a binary covariate with events in both arms converges
        warnings.warn("Cox model did not converge", SurvivalCaveatWarning, stacklevel=2)
    beta, se = float(fit.coef[0]), float(fit.se[0])
    ll0, ll = float(fit.loglik_null), float(fit.loglik)
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    lr_chisq = max(2 * (ll - ll0), 0.0)
    return {"estimate": math.exp(beta), "lower": math.exp(beta - z * se), "upper": math.exp(beta + z * se),
            "p": float(2 * stats.norm.sf(abs(beta / se))), "lr_p": float(stats.chi2.sf(lr_chisq, 1)),
            "lr_chisq": lr_chisq, "coef": beta, "se": se, "loglik": [ll0, ll], "reference": reference,
            "other": other}


def rmst_difference(a: dict, b: dict, conf_level: float = 0.95) -> dict:
    """Difference in RMST ``b - a`` with SE sqrt(se_a^2 + se_b^2) (independent arms), normal CI and P."""
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    diff = b["estimate"] - a["estimate"]
    se = math.hypot(a["se"], b["se"])
    p = float(2 * stats.norm.sf(abs(diff / se))) if se > 0 else None
    return {"estimate": diff, "se": se, "lower": diff - z * se, "upper": diff + z * se, "p": p}


# ----------------------------------------------------------------------------------------------
# One endpoint of a study, split by arm
# ----------------------------------------------------------------------------------------------
def endpoint_columns(endpoint: str) -> tuple[str, str]:
    """(time column, event column) of ``endpoint`` in ``study.patients``."""
    if endpoint not in ENDPOINT_COLUMNS:
        raise ValueError(f"endpoint must be one of {sorted(ENDPOINT_COLUMNS)}, got {endpoint!r}")
    return ENDPOINT_COLUMNS[endpoint]


def arm_levels(arm: pd.Series) -> list[str]:
    """Arms present in ``arm``, in the order of its categories (first = reference) or sorted."""
    if isinstance(arm.dtype, pd.CategoricalDtype):
        return [str(c) for c in arm.cat.categories if (arm == c).any()]
    return sorted(str(a) for a in pd.unique(arm.dropna()))


def split_by_arm(patients: pd.DataFrame, endpoint: str, arms: Iterable[str] | None = None
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{arm: (time, event)} of ``endpoint``, in the order of ``arms`` (default: :func:`arm_levels`)."""
    time_col, event_col = endpoint_columns(endpoint)
    missing = [c for c in ("arm", time_col, event_col) if c not in patients.columns]
    if missing:
        raise SurvivalInputError(f"patients lacks columns {missing}")
    levels = list(arms) if arms is not None else arm_levels(patients["arm"])
    codes = patients["arm"].astype(str)
    return {lv: _as_arrays(patients.loc[codes == lv, time_col], patients.loc[codes == lv, event_col])
            for lv in levels}


def number_at_risk(time, event, breaks: Iterable[float], weights=None) -> pd.DataFrame:
    """Number at risk (time >= t) and cumulative events (event time <= t) at each break.

    With case ``weights`` (as :func:`fit_km`), the weighted sums (floats): the counts behind a weighted
    Kaplan-Meier curve.
    """
    t, e = _as_arrays(time, event)
    if weights is not None:
        w = _as_weights(weights, len(t))
        return pd.DataFrame({"time": list(breaks),
                             "n_risk": [float(w[t >= b].sum()) for b in breaks],
                             "cum_events": [float(w[(t <= b) & (e == 1)].sum()) for b in breaks]})
    return pd.DataFrame({"time": list(breaks),
                         "n_risk": [int((t >= b).sum()) for b in breaks],
                         "cum_events": [int(((t <= b) & (e == 1)).sum()) for b in breaks]})


# ----------------------------------------------------------------------------------------------
# Proportional hazards of the arm
# ----------------------------------------------------------------------------------------------
def ph_test_arm(time, event, group, reference: str) -> dict | None:
    """Test of proportional hazards of the arm's univariable Cox model, as R
    ``cox.zph(coxph(Surv(time, event) ~ arm), transform = "km")`` (score test of survival >= 3.0).

    Uses :func:`helpers.stats.cox.proportional_hazards_test` on the Efron-ties fit of
    :func:`fit_cox_arm`. Returns ``{"chisq", "df", "p", "transform", "test"}``, or None when the hazard
    ratio is not estimable (no events in an arm).
    """
    from helpers.stats.cox import fit_coxph, proportional_hazards_test

    t, e = _as_arrays(time, event)
    g = np.asarray(group).astype(str)
    others = sorted(set(g) - {reference})
    if len(others) != 1 or reference not in set(g):
        raise SurvivalInputError(f"need exactly two groups including the reference {reference!r}")
    x = (g == others[0]).astype(float)[:, None]
    if min(e[x[:, 0] == 0].sum(), e[x[:, 0] == 1].sum()) == 0:
        return None
    fit = fit_coxph(t, e, x, ties="efron", names=["arm"])
    row = proportional_hazards_test(fit).iloc[0]
    return {"chisq": float(row["chisq"]), "df": int(row["df"]), "p": float(row["p"]),
            "transform": "km", "test": "schoenfeld-score"}


def piecewise_hazard_ratios(time, event, group, reference: str, cuts: Iterable[float],
                            conf_level: float = 0.95) -> list[dict]:
    """Hazard ratio of the arm within time intervals (0, c1], (c1, c2], ..., (ck, inf).

    As R ``coxph(Surv(tstart, time, status) ~ arm:strata(tgroup), data = survSplit(..., cut = cuts))``:
    one coefficient per interval (the partial likelihood factorises over the event times, so each is
    the Cox fit of the patients at risk at the interval's start, entering then and censored at its end;
    Efron ties, Wald CI and P). An interval with no event in an arm gives ``estimate`` None and
    ``reason`` "no_events_in_arm".

    Returns
    -------
    list of dict
        ``{"start", "end" (None = open), "n_risk" (at the start), "events": {group: n}, "estimate",
        "lower", "upper", "p", "coef", "se", "reason"}``.
    """
    from helpers.stats.cox import fit_coxph

    t, e = _as_arrays(time, event)
    g = np.asarray(group).astype(str)
    others = sorted(set(g) - {reference})
    if len(others) != 1 or reference not in set(g):
        raise SurvivalInputError(f"need exactly two groups including the reference {reference!r}")
    other = others[0]
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    bounds = [0.0] + sorted(float(c) for c in cuts) + [math.inf]
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        at = t > a
        stop = np.minimum(t[at], b)
        ev = (e[at] == 1) & (t[at] <= b)
        ga = g[at]
        events = {reference: int(ev[ga == reference].sum()), other: int(ev[ga == other].sum())}
        row = {"start": a, "end": None if math.isinf(b) else b, "n_risk": int(at.sum()), "events": events,
               "estimate": None, "lower": None, "upper": None, "p": None, "coef": None, "se": None,
               "reason": None}
        if min(events.values()) == 0:
            row["reason"] = "no_events_in_arm"
            out.append(row)
            continue
        fit = fit_coxph(stop, ev.astype(float), (ga == other).astype(float)[:, None],
                        entry=np.full(len(stop), a), ties="efron", names=["arm"])
        beta, se = float(fit.coef[0]), float(fit.se[0])
        row.update(estimate=math.exp(beta), lower=math.exp(beta - z * se), upper=math.exp(beta + z * se),
                   p=float(2 * stats.norm.sf(abs(beta / se))), coef=beta, se=se)
        out.append(row)
    return out
