"""The Firth-penalized Cox model (the penalty on the engine of :mod:`helpers.stats.cox`).

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

# The partial likelihood and the Newton-Raphson loop are the Cox engine's.
from helpers.stats.cox import NewtonResult, _event_groups, _risk_moments, newton_raphson, partial_likelihood


class FirthConvergenceError(RuntimeError):
    """The penalized Newton-Raphson iterations did not converge."""


def modified_score(beta, X, time, event, ties: str = "efron", groups=None):
    """Firth modified score U*(b) = U(b) + 0.5 tr(I^-1 dI/db_r), and the information I(b).

    dI/db_r is the sum over Efron terms of the third central moment of x under the risk-set
    weights; its contraction with A = I^-1 is computed without forming the p x p x p array:
    sum_ab A_ab M3_abr = E[(x'Ax) x_r] - 2 (E[xx'] A m)_r - m_r tr(A E[xx']) + 2 m_r m'Am,
    with m = E[x]. Returns (U*, PartialLikelihood without d_information).
    """
    beta = np.asarray(beta, dtype=float)
    X = np.asarray(X, dtype=float)
    if groups is None:
        groups = _event_groups(time, event)
    pl = partial_likelihood(beta, X, time, event, ties, groups=groups)
    A = np.linalg.inv(pl.information)
    eta, w, frac, s0, m, e2 = _risk_moments(beta, X, ties, groups)
    g = groups.term_group
    wqx = (w * np.einsum("ia,ab,ib->i", X, A, X))[:, None] * X
    f = (groups.risk_sum(wqx)[g] - frac[:, None] * groups.group_sum(wqx)[g]) / s0[:, None]
    Am = m @ A
    corr = (f - 2 * np.einsum("eab,eb->ea", e2, Am) - m * np.einsum("ab,eab->e", A, e2)[:, None]
            + 2 * m * np.einsum("ea,ea->e", m, Am)[:, None]).sum(axis=0)
    return pl.score + 0.5 * corr, pl


def penalized_loglik(beta, X, time, event, ties: str = "efron", groups=None) -> float:
    """Firth-penalized partial log-likelihood l(b) + 0.5 log det I(b)."""
    pl = partial_likelihood(beta, X, time, event, ties, groups=groups)
    sign, logdet = np.linalg.slogdet(pl.information)
    if sign <= 0:
        return -np.inf
    return pl.loglik + 0.5 * logdet


def firth_newton(beta, X, time, event, ties, groups, tol=1e-10, max_iter=100, free=None) -> NewtonResult:
    """Maximise l* (over the coordinates ``free``; others fixed) with the engine's Newton-Raphson.

    The Hessian of l* is approximated by -I(b) (Heinze and Schemper 2001, section 2); steps are clipped
    at +/- 5 (``coxphf``'s maxstep); stops when the largest modified-score component is below ``tol``.
    """
    def evaluate(b):
        ustar, pl = modified_score(b, X, time, event, ties, groups)
        sign, logdet = np.linalg.slogdet(pl.information)
        return (pl.loglik + 0.5 * logdet if sign > 0 else -np.inf), ustar, pl.information

    return newton_raphson(evaluate, beta, value=lambda b: penalized_loglik(b, X, time, event, ties, groups),
                          free=free, tol=tol, max_iter=max_iter, criterion="score", max_step=5.0,
                          max_halvings=30, relative_slack=False)


def _newton(beta, free, X, time, event, ties, groups, tol=1e-10, max_iter=100):
    """:func:`firth_newton` returning (beta, l*), raising FirthConvergenceError when it does not converge."""
    res = firth_newton(beta, X, time, event, ties, groups, tol=tol, max_iter=max_iter, free=free)
    if not res.converged:
        raise FirthConvergenceError(
            f"Firth Newton-Raphson did not converge in {max_iter} iterations "
            f"(max |modified score| = {np.max(np.abs(res.gradient[np.asarray(free)])):.2e})")
    return res.beta, res.value


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
    ustar, pl = modified_score(beta, Xa, time, event, ties, groups)
    se = np.sqrt(np.diag(np.linalg.inv(pl.information)))
    crit = stats.chi2.ppf(1 - alpha, 1)
    rows = []
    for r in range(p):
        if profile is True or (not isinstance(profile, bool) and names[r] in profile):
            others = np.array([k for k in range(p) if k != r])

            warm = {"beta": beta.copy()}   # start each constrained fit at the previous one

            def profile_ll(value, r=r, others=others, warm=warm):
                start = warm["beta"].copy()
                start[r] = value
                if len(others) == 0:
                    return penalized_loglik(start, Xa, time, event, ties, groups)
                try:
                    fitted, value_ll = _newton(start, others, Xa, time, event, ties, groups, tol=1e-9)
                except FirthConvergenceError:   # a far-off start: retry from the estimate
                    start = beta.copy()
                    start[r] = value
                    fitted, value_ll = _newton(start, others, Xa, time, event, ties, groups, tol=1e-9)
                warm["beta"] = fitted
                return value_ll

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
    return FirthResult(pd.DataFrame(rows), lmax, ustar, ties)
