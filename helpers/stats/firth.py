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


def _event_groups(time: np.ndarray, event: np.ndarray, entry: np.ndarray | None = None) -> "_RiskSets":
    """Sorted-time bookkeeping shared by every evaluation at the same data (see _RiskSets)."""
    return _RiskSets(np.asarray(time, dtype=float), np.asarray(event, dtype=int),
                     None if entry is None else np.asarray(entry, dtype=float))


class _RiskSets:
    """Per-event-time bookkeeping for whole-array Efron / Breslow risk-set sums.

    ``times`` are the distinct event times, increasing. A row is at risk at t_k when
    entry < t_k <= time (entry = 0 without ``entry``). Each row is filed under the last event time
    at or before its exit (+1) and, for counting-process rows (entry, time] (R
    ``Surv(start, stop, event)``), under the last event time at or before its entry (-1); a risk-set
    sum at t_k is then a reverse cumulative sum over the event times of these per-time totals.
    The per-time totals are one sparse (event times x rows) product, so an evaluation is O(n p)
    without sorting or gathering the rows. Each death is one Efron term: ``term_group`` is its event
    time, ``term_j`` its index j = 0..d-1 within the time.
    """

    def __init__(self, time: np.ndarray, event: np.ndarray, entry: np.ndarray | None = None):
        from scipy import sparse

        n = len(time)
        self.time = time
        self.entry = entry
        self.times = np.unique(time[event == 1])                          # increasing
        n_times = len(self.times)
        # sorted order and prefix ends of {time >= t} (used by the separation check)
        self.order = np.argsort(-time, kind="stable")
        self.risk_end = n - np.searchsorted(np.sort(time), self.times, side="left")
        self._upto = np.searchsorted(self.times, time, side="right")     # event times <= exit
        rows, cols, signs = [self._upto - 1], [np.arange(n)], [np.ones(n)]
        self._entry_upto = None
        if entry is not None:
            if np.any(entry >= time):
                raise ValueError("counting-process rows need start < stop")
            self._entry_upto = np.searchsorted(self.times, entry, side="right")   # not at risk there
            rows.append(self._entry_upto - 1)
            cols.append(np.arange(n))
            signs.append(-np.ones(n))
        rows, cols, signs = np.concatenate(rows), np.concatenate(cols), np.concatenate(signs)
        filed = rows >= 0                          # exit (or entry) before the first event time
        self._exit_entry = sparse.csr_matrix((signs[filed], (rows[filed], cols[filed])),
                                             shape=(n_times, n))
        is_death = event == 1
        self.death_idx = np.flatnonzero(is_death)
        self.death_group = self._upto[is_death] - 1
        self._deaths = sparse.csr_matrix((np.ones(len(self.death_idx)), (self.death_group, self.death_idx)),
                                         shape=(n_times, n))
        counts = np.bincount(self.death_group, minlength=n_times)
        self.d = counts
        # one Efron term per death: j = 0..d-1 within its group
        self.term_group = np.repeat(np.arange(n_times), counts)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.term_j = np.arange(counts.sum()) - np.repeat(starts, counts)
        self._deaths_by_time = self.death_idx[np.argsort(self.death_group, kind="stable")]
        self._group_starts = starts

    @staticmethod
    def _per_time(matrix, values: np.ndarray) -> np.ndarray:
        flat = np.asarray(values, dtype=float).reshape(len(values), -1)
        return np.asarray(matrix @ flat).reshape((matrix.shape[0],) + np.shape(values)[1:])

    def group_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum over the deaths of each event time of per-row ``values`` (first axis)."""
        return self._per_time(self._deaths, values)

    def risk_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum over the risk set of each event time of per-row ``values`` (first axis)."""
        per_time = self._per_time(self._exit_entry, values)
        return np.cumsum(per_time[::-1], axis=0)[::-1]

    def over_risk_times(self, per_time: np.ndarray) -> np.ndarray:
        """Per row: the sum of ``per_time`` (one value per event time) over the event times at
        which the row is at risk (entry < t <= time)."""
        cum = np.concatenate([[0.0], np.cumsum(per_time)])
        out = cum[self._upto]
        if self._entry_upto is not None:
            out = out - cum[self._entry_upto]
        return out


def _risk_moments(beta, X, ties, groups):
    """Per Efron term e: log-lik pieces, s0_e, E_e[x] and E_e[x x'] under the term's weights."""
    sums = _efron_sums(beta, X, ties, groups)
    w, frac, s0 = sums.w, sums.frac, sums.s0
    wxx = (w[:, None] * X)[:, :, None] * X[:, None, :]
    g = groups.term_group
    s2 = groups.risk_sum(wxx)[g] - frac[:, None, None] * groups.group_sum(wxx)[g]
    return sums.eta, w, frac, s0, sums.term_means(), s2 / s0[:, None, None]


@dataclass
class _EfronSums:
    """Risk-set sums at one beta, kept per event time k (not per Efron term e).

    Term e of time k (Efron fraction f_e = j/d_k; 0 for Breslow) has s0_e = R0_k - f_e D0_k and
    mean E_e[x] = (R_k - f_e D_k) / s0_e, with R the risk-set sums and D the sums over the time's
    deaths of [w, w x]. Sums over a time's terms therefore reduce to per-time scalars
    (sum_e 1/s0_e, sum_e f_e/s0_e, ...), so no (terms x p) array is built.
    """

    eta: np.ndarray          # X beta shifted by its maximum (rows)
    w: np.ndarray            # exp(eta) (rows)
    frac: np.ndarray         # Efron fraction (terms)
    s0: np.ndarray           # weighted risk-set size (terms)
    R: np.ndarray            # risk-set sums of w x (times x p)
    D: np.ndarray            # death sums of w x (times x p)
    groups: "_RiskSets"

    def _per_time(self, values: np.ndarray, h) -> np.ndarray:
        g = self.groups.term_group
        out = np.bincount(g, weights=values, minlength=len(self.groups.times))
        return out if h is None else out * h

    def mean_sum(self, h=None) -> np.ndarray:
        """Per event time: h_k sum_e E_e[x] (times x p)."""
        alpha = self._per_time(1 / self.s0, h)
        beta = self._per_time(self.frac / self.s0, h)
        return alpha[:, None] * self.R - beta[:, None] * self.D

    def mean_outer(self, h=None) -> np.ndarray:
        """sum_e h_k(e) E_e[x] E_e[x]' (p x p)."""
        inv2 = 1 / self.s0 ** 2
        g0 = self._per_time(inv2, h)
        g1 = self._per_time(self.frac * inv2, h)
        g2 = self._per_time(self.frac ** 2 * inv2, h)
        RD = (self.R * g1[:, None]).T @ self.D
        return (self.R * g0[:, None]).T @ self.R - RD - RD.T + (self.D * g2[:, None]).T @ self.D

    def term_means(self) -> np.ndarray:
        """E_e[x] per Efron term (terms x p): for the small-sample Firth code."""
        g = self.groups.term_group
        return (self.R[g] - self.frac[:, None] * self.D[g]) / self.s0[:, None]


def _efron_sums(beta, X, ties, groups) -> _EfronSums:
    """Risk-set and death sums of w = exp(x beta) and w x per event time: O(n p)."""
    eta = X @ beta
    eta = eta - eta.max()          # a common shift cancels in the partial likelihood
    w = np.exp(eta)
    g = groups.term_group
    frac = groups.term_j / groups.d[g] if ties == "efron" else np.zeros(len(g))
    w_wx = np.empty((len(w), X.shape[1] + 1))      # [w, w x]: one pass for both sums
    w_wx[:, 0] = w
    np.multiply(w[:, None], X, out=w_wx[:, 1:])
    risk = groups.risk_sum(w_wx)
    dead = groups.group_sum(w_wx)
    s0 = risk[g, 0] - frac * dead[g, 0]
    return _EfronSums(eta, w, frac, s0, risk[:, 1:], dead[:, 1:], groups)


def _weighted_information(X, sums: _EfronSums, h_time=None) -> np.ndarray:
    """sum_e h_e Var_e[x] (the observed information when h = 1), without a (terms x p x p) array.

    h_time: one weight per event time (every Efron term of the time shares it). Uses
    sum_e h_e s2_e / s0_e = sum_i w_i x_i x_i' c_i - sum_{deaths i} w_i x_i x_i' b_k(i), with
    c_i the sum of a_k = sum_{e in k} h_k / s0_e over the event times at which i is at risk and
    b_k = sum_{e in k} h_k frac_e / s0_e: one O(n p^2) matrix product.
    """
    groups = sums.groups
    h = None if h_time is None else np.asarray(h_time, dtype=float)
    a = sums._per_time(1 / sums.s0, h)
    b = sums._per_time(sums.frac / sums.s0, h)
    v = sums.w * groups.over_risk_times(a)
    di = groups.death_idx
    v[di] -= sums.w[di] * b[groups.death_group]
    return (X * v[:, None]).T @ X - sums.mean_outer(h)


def partial_likelihood(beta, X, time, event, ties: str = "efron", third: bool = False,
                       groups=None, entry=None) -> PartialLikelihood:
    """Cox partial log-likelihood, score and observed information at ``beta``.

    Parameters
    ----------
    beta : array (p,)
    X : array (n, p)
    time : array (n,) follow-up in months; event : array (n,) 1 = event, 0 = censored.
    ties : "efron" (R ``coxph`` default) or "breslow".
    third : also return the full dI/db array (p, p, p); the Firth iterations do not need it
        (see :func:`modified_score`).
    groups : precomputed :func:`_event_groups` (time, event[, entry]) for repeated evaluations.
    entry : array (n,) of interval starts for counting-process rows (entry, time] (R
        ``Surv(start, stop, event)``); None: every row at risk from time 0.

    Notes
    -----
    Efron: a time with d deaths contributes d terms, the j-th (j = 0..d-1) over the risk set in
    which each of the d dying patients carries weight (1 - j/d). Matches ``coxph(ties = "efron")``.
    Risk-set sums of w, w x and w x x' are reverse cumulative sums over the subjects sorted by
    time, so one evaluation costs O(n p^2) array operations, without Python loops.
    """
    beta = np.asarray(beta, dtype=float)
    X = np.asarray(X, dtype=float)
    if groups is None:
        groups = _event_groups(time, event, entry)
    if third:
        eta, w, frac, s0, mean, e2 = _risk_moments(beta, X, ties, groups)
        info = (e2 - mean[:, :, None] * mean[:, None, :]).sum(axis=0)
        mean_sum = mean.sum(axis=0)
    else:   # information without any (terms x p) array: O(n p^2) matrix products
        sums = _efron_sums(beta, X, ties, groups)
        eta, s0 = sums.eta, sums.s0
        info = _weighted_information(X, sums)
        mean_sum = sums.mean_sum().sum(axis=0)
    # eta was shifted by max(eta): each death term and each log(s0) term moved by the same amount
    # and there are as many of one as of the other, so the log-likelihood is unchanged.
    ll = float(eta[groups.death_idx].sum() - np.log(s0).sum())
    U = X[groups.death_idx].sum(axis=0) - mean_sum
    dinfo = None
    if third:
        g = groups.term_group
        wxxx = (w[:, None, None, None] * X[:, :, None, None] * X[:, None, :, None]
                * X[:, None, None, :])
        s3 = groups.risk_sum(wxxx)[g] - frac[:, None, None, None] * groups.group_sum(wxxx)[g]
        e3 = s3 / s0[:, None, None, None]
        m = mean   # third central moment: E[xxx] - (m E[xx], three placements) + 2 m m m
        cross = (m[:, :, None, None] * e2[:, None, :, :] + m[:, None, :, None] * e2[:, :, None, :]
                 + m[:, None, None, :] * e2[:, :, :, None])
        mmm = m[:, :, None, None] * m[:, None, :, None] * m[:, None, None, :]
        dinfo = (e3 - cross + 2 * mmm).sum(axis=0)
    return PartialLikelihood(ll, U, info, dinfo)


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


def _newton(beta, free, X, time, event, ties, groups, tol=1e-10, max_iter=100):
    """Maximise l* over the coordinates ``free`` (others fixed) by Newton-Raphson with step halving.

    The Hessian of l* is approximated by -I(b) (Heinze and Schemper 2001, section 2)."""
    beta = np.array(beta, dtype=float)
    free = np.asarray(free)
    current = penalized_loglik(beta, X, time, event, ties, groups)
    for _ in range(max_iter):
        ustar, pl = modified_score(beta, X, time, event, ties, groups)
        ustar = ustar[free]
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
