"""Cox partial likelihood pieces (Efron or Breslow ties) and the Firth-penalized Cox model.

The penalized partial likelihood of Firth (1993), adapted to the Cox model by Heinze and Schemper
(Biometrics 2001;57:114-119), is

    l*(b) = l(b) + 0.5 log det I(b),

with l the partial log-likelihood and I(b) its observed information. Its maximiser is finite even
under monotone likelihood (complete separation), where the ordinary maximum partial likelihood
estimate diverges. The modified score is U*_r(b) = U_r(b) + 0.5 tr(I(b)^-1 dI(b)/db_r); with
weights proportional to exp(x b), dI/db_r is the third central moment of the covariates in each
(Efron-reduced) risk set. Confidence intervals are profile penalized likelihood intervals and
P values penalized likelihood-ratio tests, as in R's ``coxphf`` (not on CRAN for Debian, so the
tests compare with a direct maximisation of ``coxph``'s log-likelihood + 0.5 log det I in R).

R equivalent: ``coxphf::coxphf(Surv(time, status) ~ x, pl = TRUE)``; ``coxphf`` uses Breslow
ties; here ``ties="efron"`` (the default, matching the main Cox models) or ``"breslow"``.
Times are in months; only right-censored data without strata.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats


class FirthConvergenceError(RuntimeError):
    """The penalized Newton-Raphson iterations did not converge."""


@dataclass
class PartialLikelihood:
    """Log-likelihood, score, information (and dI/db when asked) at one coefficient vector."""

    loglik: float
    score: np.ndarray
    information: np.ndarray
    d_information: np.ndarray | None = None   # shape (p, p, p): dI/db_r in [:, :, r]


def _event_groups(time: np.ndarray, event: np.ndarray):
    """Unique event times with the indices of their deaths and of their risk set (time >= t)."""
    groups = []
    for t in np.unique(time[event == 1]):
        deaths = np.flatnonzero((time == t) & (event == 1))
        risk = np.flatnonzero(time >= t)
        groups.append((t, deaths, risk))
    return groups


def partial_likelihood(beta, X, time, event, ties: str = "efron", third: bool = False,
                       groups=None) -> PartialLikelihood:
    """Cox partial log-likelihood, score and observed information at ``beta``.

    Parameters
    ----------
    beta : array (p,)
    X : array (n, p)
    time : array (n,) follow-up in months; event : array (n,) 1 = event, 0 = censored.
    ties : "efron" (R ``coxph`` default) or "breslow".
    third : also return dI/db (needed for the Firth modified score).

    Notes
    -----
    Efron: a time with d deaths contributes d terms, the j-th (j = 0..d-1) over the risk set in
    which each of the d dying patients carries weight (1 - j/d). Matches ``coxph(ties = "efron")``.
    """
    beta = np.asarray(beta, dtype=float)
    X = np.asarray(X, dtype=float)
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=int)
    p = X.shape[1]
    if groups is None:
        groups = _event_groups(time, event)
    eta = X @ beta
    eta = eta - eta.max()          # a common shift cancels in the partial likelihood
    w = np.exp(eta)
    ll, U, info = 0.0, np.zeros(p), np.zeros((p, p))
    dinfo = np.zeros((p, p, p)) if third else None
    for _, deaths, risk in groups:
        d = len(deaths)
        ll += float(eta[deaths].sum())
        U += X[deaths].sum(axis=0)
        is_death = np.isin(risk, deaths)
        xr = X[risk]
        for j in range(d):
            frac = j / d if ties == "efron" else 0.0
            wt = w[risk] * np.where(is_death, 1.0 - frac, 1.0)
            s0 = wt.sum()
            prob = wt / s0
            mean = prob @ xr
            xc = xr - mean
            ll -= np.log(s0)
            U -= mean
            info += (xc * prob[:, None]).T @ xc
            if third:
                dinfo += np.einsum("i,ia,ib,ic->abc", prob, xc, xc, xc)
    # eta was shifted by max(eta): each death term and each log(s0) term moved by the same amount
    # and there are as many of one as of the other, so the log-likelihood is unchanged.
    return PartialLikelihood(ll, U, info, dinfo)


def penalized_loglik(beta, X, time, event, ties: str = "efron", groups=None) -> float:
    """Firth-penalized partial log-likelihood l(b) + 0.5 log det I(b)."""
    pl = partial_likelihood(beta, X, time, event, ties, groups=groups)
    sign, logdet = np.linalg.slogdet(pl.information)
    if sign <= 0:
        return -np.inf
    return pl.loglik + 0.5 * logdet


def _modified_score(pl: PartialLikelihood) -> np.ndarray:
    inv = np.linalg.inv(pl.information)
    return pl.score + 0.5 * np.einsum("ab,bar->r", inv, pl.d_information)


def _newton(beta, free, X, time, event, ties, groups, tol=1e-10, max_iter=100):
    """Maximise l* over the coordinates ``free`` (others fixed) by Newton-Raphson with step halving.

    The Hessian of l* is approximated by -I(b) (Heinze and Schemper 2001, section 2)."""
    beta = np.array(beta, dtype=float)
    free = np.asarray(free)
    current = penalized_loglik(beta, X, time, event, ties, groups)
    for _ in range(max_iter):
        pl = partial_likelihood(beta, X, time, event, ties, third=True, groups=groups)
        ustar = _modified_score(pl)[free]
        if np.max(np.abs(ustar)) < tol:
            return beta, current
        step = np.linalg.solve(pl.information[np.ix_(free, free)], ustar)
        step = np.clip(step, -5, 5)   # a maximum step, as in coxphf (maxstep)
        for _half in range(30):
            trial = beta.copy()
            trial[free] += step
            value = penalized_loglik(trial, X, time, event, ties, groups)
            if value >= current - 1e-12:
                break
            step = step / 2
        beta, current = trial, value
    raise FirthConvergenceError(
        f"Firth Newton-Raphson did not converge in {max_iter} iterations "
        f"(max |modified score| = {np.max(np.abs(ustar)):.2e})")


@dataclass
class FirthResult:
    """Firth-penalized Cox fit: coefficient table, penalized log-likelihood and method strings."""

    table: pd.DataFrame
    penalized_loglik: float
    modified_score: np.ndarray
    ties: str
    method: str = field(default="Firth-penalized partial likelihood (Heinze and Schemper 2001); "
                                 "profile penalized-likelihood 95% CI; penalized LR test")


def fit_firth(X: pd.DataFrame, time, event, ties: str = "efron", alpha: float = 0.05,
              profile: bool | list = True, tol: float = 1e-10) -> FirthResult:
    """Fit a Firth-penalized Cox model.

    Parameters
    ----------
    X : DataFrame (n, p) of numeric (dummy-coded) covariates; column names become term names.
    time, event : follow-up in months and 1 = event.
    ties : "efron" (default) or "breslow" (``coxphf``'s convention).
    profile : profile penalized-likelihood CIs and LR P values (``coxphf(pl = TRUE)``); else Wald
        (from the inverse information at the penalized estimate). A list of column names profiles
        only those columns (profiling is the slow part: one constrained fit per evaluation).

    Returns
    -------
    FirthResult with ``table`` columns term, coef, se, hr, lower, upper, p (HR CI limits).
    """
    names = list(X.columns)
    Xa = X.to_numpy(dtype=float)
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=int)
    p = Xa.shape[1]
    groups = _event_groups(time, event)
    beta, lmax = _newton(np.zeros(p), np.arange(p), Xa, time, event, ties, groups, tol=tol)
    pl = partial_likelihood(beta, Xa, time, event, ties, third=True, groups=groups)
    se = np.sqrt(np.diag(np.linalg.inv(pl.information)))
    crit = stats.chi2.ppf(1 - alpha, 1)
    rows = []
    for r in range(p):
        if profile is True or (not isinstance(profile, bool) and names[r] in profile):
            others = np.array([k for k in range(p) if k != r])

            def profile_ll(value, r=r, others=others):
                start = beta.copy()
                start[r] = value
                if len(others) == 0:
                    return penalized_loglik(start, Xa, time, event, ties, groups)
                return _newton(start, others, Xa, time, event, ties, groups, tol=1e-9)[1]

            def excess(value):
                return 2 * (lmax - profile_ll(value)) - crit

            limits = []
            for direction in (-1, 1):
                width = max(se[r], 1e-3)
                edge = beta[r] + direction * 2 * width
                for _ in range(30):
                    if excess(edge) > 0:
                        break
                    width *= 2
                    edge = beta[r] + direction * 2 * width
                lo_hi = sorted([beta[r], edge])
                limits.append(optimize.brentq(excess, *lo_hi, xtol=1e-10))
            lr = max(2 * (lmax - profile_ll(0.0)), 0.0)
            pval = stats.chi2.sf(lr, 1)
            lower, upper = limits
        else:
            z = stats.norm.ppf(1 - alpha / 2)
            lower, upper = beta[r] - z * se[r], beta[r] + z * se[r]
            pval = 2 * stats.norm.sf(abs(beta[r] / se[r]))
            method = "Wald"
        if not (profile is False or (not isinstance(profile, bool) and names[r] not in profile)):
            method = "profile"
        rows.append({"term": names[r], "coef": beta[r], "se": se[r], "hr": np.exp(beta[r]),
                     "lower": np.exp(lower), "upper": np.exp(upper), "p": pval, "ci_method": method})
    return FirthResult(pd.DataFrame(rows), lmax, _modified_score(pl), ties)
