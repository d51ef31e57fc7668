"""Stratified comparisons of two arms: stratified log-rank test, stratified Cox model, Cochran-Mantel-Haenszel.

A stratified analysis compares the arms within levels of a declared factor (for an observational
cohort typically the calendar era) and pools the within-stratum comparisons, so that a factor unevenly
distributed between the arms cannot produce the difference by itself.

* :func:`stratified_logrank` -- R ``survdiff(Surv(time, event) ~ arm + strata(s))``: per stratum the
  observed minus expected events of the experimental arm and the hypergeometric variance at each distinct
  event time, summed over strata; chi-square on 1 df.
* :func:`stratified_cox` -- R ``coxph(Surv(time, event) ~ arm + strata(s))``: one hazard ratio with a
  separate baseline hazard per stratum (Efron ties; the project's engine
  :func:`helpers.stats.cox.fit_coxph` with ``strata=``), Wald CI and P, likelihood-ratio P.
* :func:`cmh_binary` -- R ``mantelhaen.test(table(arm, response, stratum))`` (``correct = TRUE``): the
  Mantel-Haenszel common odds ratio with the Robins-Breslow-Greenland CI and the continuity-corrected
  CMH chi-square (statsmodels ``StratifiedTable``), and the Mantel-Haenszel common risk difference
  ``RD = sum_k w_k (p1k - p0k) / sum_k w_k`` with ``w_k = n1k n0k / N_k`` and the Greenland-Robins (1985)
  variance ``Var = sum_k w_k^2 [p1k (1 - p1k) / n1k + p0k (1 - p0k) / n0k] / (sum_k w_k)^2`` (Wald CI and
  P; base R has no function for it, the golden script computes the same formula).

Everything returns numbers with their method (:class:`~helpers.stats.types.Estimate`,
:class:`~helpers.stats.types.TestResult`) or a :class:`~helpers.stats.types.NotEstimable`; no English.
Times in months (any unit works).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from helpers.stats.types import Estimate, NotEstimable, TestResult

__all__ = ["StratifiedLogRank", "StratifiedHazardRatio", "CMHResult", "stratum_labels", "stratified_logrank",
           "stratified_cox", "cmh_binary"]


# ----------------------------------------------------------------------------- strata
def stratum_labels(frame: pd.DataFrame, factors) -> pd.Series:
    """One stratum label per row from the plan's stratification factors (cross-classified).

    Parameters
    ----------
    frame : DataFrame of patients.
    factors : list of dicts ``{"variable": name, "cuts": [c1, ...]}``; ``cuts`` (optional, for a numeric
        variable such as ``start_year``) split it into right-closed intervals ``<= c1``, ``(c1, c2]``, ...,
        ``> c_last`` (R ``cut(x, c(-Inf, cuts, Inf))``); without cuts the variable's own values are the
        strata. Several factors give their combinations (R ``strata(a, b)``).

    Returns
    -------
    Series of labels ``"variable=level; ..."`` (machine labels; the report layer words them); missing
    where any factor is missing.
    """
    parts = []
    for f in factors:
        name = f["variable"]
        x = frame[name]
        cuts = f.get("cuts")
        if cuts:
            edges = [-np.inf, *sorted(float(c) for c in cuts), np.inf]
            codes = pd.cut(pd.to_numeric(x, errors="coerce"), edges, right=True, labels=False)
            lab = codes.map(lambda k: None if pd.isna(k) else f"{name}={int(k)}")
        else:
            lab = x.map(lambda v: None if pd.isna(v) else f"{name}={v}")
        parts.append(lab.astype(object))
    if not parts:
        return pd.Series(["all"] * len(frame), index=frame.index, dtype=object)
    out = parts[0]
    for p in parts[1:]:
        out = out.where(out.isna() | p.isna(), out + "; " + p)
        out = out.where(p.notna(), None)
    return out


# ----------------------------------------------------------------------------- log-rank
@dataclass(frozen=True)
class StratifiedLogRank:
    """Stratified log-rank test of the experimental arm (R ``survdiff(... + strata(s))``).

    ``observed``/``expected``: events of the experimental arm summed over strata; ``variance``: the summed
    hypergeometric variance; ``test``: chi-square on 1 df; ``n_strata``: strata with at least one event.
    """

    test: TestResult
    observed: float
    expected: float
    variance: float
    n_strata: int


def stratified_logrank(time, event, treated, strata) -> StratifiedLogRank | NotEstimable:
    """Stratified log-rank test (rho = 0) of ``treated`` (1 = experimental arm) within ``strata``.

    Parameters
    ----------
    time : array (n,) follow-up, months.  event : array (n,) 1 = event.
    treated : array (n,) 1 = experimental arm, 0 = reference arm.  strata : array (n,) stratum labels.

    Returns
    -------
    StratifiedLogRank, or NotEstimable("logrank", "no_events") when the variance is zero (no event in any
    stratum with both arms at risk). R: ``survdiff(Surv(time, event) ~ arm + strata(s))$chisq``.
    """
    t = np.asarray(time, float)
    e = np.asarray(event, int)
    z = np.asarray(treated, int)
    s = pd.factorize(pd.Series(np.asarray(strata, dtype=object)).astype(str))[0]
    obs = exp = var = 0.0
    n_strata = 0
    for k in np.unique(s):
        m = s == k
        tk, ek, zk = t[m], e[m], z[m]
        times, d = np.unique(tk[ek == 1], return_counts=True)
        if len(times) == 0:
            continue
        n_strata += 1
        # at risk at each event time: time >= u
        order = np.sort(tk)
        n_risk = len(tk) - np.searchsorted(order, times, side="left")
        order1 = np.sort(tk[zk == 1])
        n1 = len(order1) - np.searchsorted(order1, times, side="left")
        d = d.astype(float)
        d1 = np.bincount(np.searchsorted(times, tk[(ek == 1) & (zk == 1)]), minlength=len(times)).astype(float)
        frac = n1 / n_risk
        obs += d1.sum()
        exp += float(np.sum(d * frac))
        with np.errstate(invalid="ignore", divide="ignore"):
            v = np.where(n_risk > 1, d * frac * (1 - frac) * (n_risk - d) / (n_risk - 1), 0.0)
        var += float(v.sum())
    if var <= 0:
        return NotEstimable("logrank", "no_events")
    chisq = (obs - exp) ** 2 / var
    return StratifiedLogRank(TestResult(float(chisq), 1, float(stats.chi2.sf(chisq, 1)), "stratified log-rank"),
                             float(obs), float(exp), float(var), n_strata)


# ----------------------------------------------------------------------------- Cox
@dataclass(frozen=True)
class StratifiedHazardRatio:
    """Hazard ratio of the experimental arm from a Cox model (stratified when ``n_strata`` > 1).

    ``hr``: Estimate with the Wald CI (method ``"wald"``); ``wald``: Wald z test; ``lr``: likelihood-ratio
    test against the model without the arm; ``coef``/``se``: log HR and its model-based SE.
    """

    hr: Estimate
    coef: float
    se: float
    wald: TestResult
    lr: TestResult
    n: int
    events: int
    n_strata: int


def stratified_cox(time, event, treated, strata=None, level: float = 0.95) -> StratifiedHazardRatio | NotEstimable:
    """Cox hazard ratio of ``treated`` with a separate baseline hazard per stratum (Efron ties).

    R: ``coxph(Surv(time, event) ~ arm + strata(s), ties = "efron")``; ``strata=None`` gives the
    unstratified model. NotEstimable("hazard_ratio", reason) when an arm has no events
    (``no_events_in_arm``), the likelihood is monotone (``separation``) or Newton-Raphson fails.
    """
    from helpers.stats.cox import fit_coxph

    t = np.asarray(time, float)
    e = np.asarray(event, int)
    z = np.asarray(treated, float)
    if e[z == 1].sum() == 0 or e[z == 0].sum() == 0:
        return NotEstimable("hazard_ratio", "no_events_in_arm")
    st = None if strata is None else np.asarray(strata, dtype=object).astype(str)
    fit = fit_coxph(t, e, z[:, None], strata=st, ties="efron", names=["arm"])
    if fit.separated:
        return NotEstimable("hazard_ratio", "separation")
    if not fit.estimable or not fit.converged:
        return NotEstimable("hazard_ratio", "non_convergence")
    b, se = float(fit.coef[0]), float(fit.se[0])
    q = stats.norm.ppf(0.5 + level / 2)
    zstat = b / se
    n_strata = 1 if st is None else len(set(st))
    return StratifiedHazardRatio(
        Estimate(math.exp(b), math.exp(b - q * se), math.exp(b + q * se), level, "wald"), b, se,
        TestResult(float(zstat), 1, float(2 * stats.norm.sf(abs(zstat))), "wald"),
        TestResult(float(fit.lr.statistic), 1, float(fit.lr.p), "lr"), fit.n, fit.events, n_strata)


# ----------------------------------------------------------------------------- CMH
@dataclass(frozen=True)
class CMHResult:
    """Mantel-Haenszel summaries of a binary outcome (experimental vs reference arm) over strata.

    ``odds_ratio``: MH common odds ratio, Robins-Breslow-Greenland CI (method ``"rbg"``);
    ``test``: CMH chi-square with continuity correction (``"cmh"``, R ``mantelhaen.test``);
    ``risk_difference``: MH-weighted common risk difference (experimental minus reference, proportion),
    Greenland-Robins variance, Wald CI (method ``"greenland-robins"``); ``rd_test``: its Wald z test;
    ``n_strata``: strata used (both arms present); ``n_dropped``: strata left out (one arm only).
    """

    odds_ratio: Estimate
    test: TestResult
    risk_difference: Estimate
    rd_test: TestResult
    n_strata: int
    n_dropped: int


def cmh_binary(outcome, treated, strata, level: float = 0.95, correct: bool = True) -> CMHResult | NotEstimable:
    """Cochran-Mantel-Haenszel analysis of a binary ``outcome`` (1 = yes) by ``treated`` within ``strata``.

    Strata without both arms carry no information (weight 0) and are dropped (``n_dropped``).
    R: ``mantelhaen.test(table(arm, outcome, stratum), correct = correct)`` for the odds ratio, its CI
    and P; the risk difference as in the module docstring (Greenland and Robins, Biometrics 1985;41:55).

    Returns NotEstimable("cmh", reason): ``too_few_patients`` (fewer than one stratum with both arms),
    ``constant_outcome`` (no variation of the outcome in the strata used) or ``separation`` (a zero
    numerator or denominator of the MH odds ratio).
    """
    from statsmodels.stats.contingency_tables import StratifiedTable

    y = np.asarray(outcome, int)
    z = np.asarray(treated, int)
    s = np.asarray(strata, dtype=object).astype(str)
    tables, weights, d1s, v1s, n_dropped = [], [], [], [], 0
    for k in sorted(set(s)):
        m = s == k
        n1, n0 = int((z[m] == 1).sum()), int((z[m] == 0).sum())
        if n1 == 0 or n0 == 0:
            n_dropped += 1
            continue
        a = int(((z == 1) & (y == 1) & m).sum())
        c = int(((z == 0) & (y == 1) & m).sum())
        tables.append(np.array([[a, n1 - a], [c, n0 - c]], float))
        N = n1 + n0
        w = n1 * n0 / N
        p1, p0 = a / n1, c / n0
        weights.append(w)
        d1s.append(p1 - p0)
        v1s.append(w ** 2 * (p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0))
    if not tables:
        return NotEstimable("cmh", "too_few_patients")
    arr = np.stack(tables, axis=2)
    if arr[:, 0, :].sum() == 0 or arr[:, 1, :].sum() == 0:
        return NotEstimable("cmh", "constant_outcome")
    W = float(np.sum(weights))
    rd = float(np.dot(weights, d1s) / W)
    rd_se = math.sqrt(float(np.sum(v1s))) / W
    q = stats.norm.ppf(0.5 + level / 2)
    rd_z = rd / rd_se if rd_se > 0 else float("nan")
    rd_est = Estimate(rd, rd - q * rd_se, rd + q * rd_se, level, "greenland-robins")
    rd_test = TestResult(float(rd_z), None, float(2 * stats.norm.sf(abs(rd_z))) if rd_se > 0 else None, "wald")
    num = float(np.sum(arr[0, 0] * arr[1, 1] / arr.sum(axis=(0, 1))))
    den = float(np.sum(arr[0, 1] * arr[1, 0] / arr.sum(axis=(0, 1))))
    # CMH chi-square as R's mantelhaen.test: the continuity correction only when |sum(a - E)| >= 0.5
    # (statsmodels' test_null_odds subtracts 0.5 unconditionally and loses small P values to 1 - cdf)
    n_k = arr.sum(axis=(0, 1))
    row1, col1 = arr[0].sum(axis=0), arr[:, 0].sum(axis=0)
    delta = float(np.sum(arr[0, 0] - row1 * col1 / n_k))
    v = float(np.sum(row1 * (n_k - row1) * col1 * (n_k - col1) / (n_k ** 2 * (n_k - 1))))
    yates = 0.5 if correct and abs(delta) >= 0.5 else 0.0
    chisq = (abs(delta) - yates) ** 2 / v if v > 0 else float("nan")
    test = TestResult(float(chisq), 1, float(stats.chi2.sf(chisq, 1)) if v > 0 else None, "cmh")
    if num == 0 or den == 0:
        return CMHResult(NotEstimable("odds_ratio", "separation"), test, rd_est, rd_test, len(tables), n_dropped)
    st = StratifiedTable(arr)
    lo, hi = st.oddsratio_pooled_confint(alpha=1 - level)
    odds = Estimate(float(st.oddsratio_pooled), float(lo), float(hi), level, "rbg")
    return CMHResult(odds, test, rd_est, rd_test, len(tables), n_dropped)
