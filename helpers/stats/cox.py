"""The Cox proportional-hazards engine: one partial likelihood, one Newton-Raphson, one public fit.

:func:`fit_coxph` is the estimator every analysis calls (univariable and multivariable models,
time-varying counts, the PH remedy, weighted and stratified models, the Firth penalty of
:mod:`helpers.stats.firth`). It works on arrays (times in months, 0/1 events, a numeric model matrix);
building a model matrix from a patient table is :mod:`helpers.analyses.prognostic`'s job.

Conventions (and their R equivalents)
-------------------------------------
- Partial likelihood with Efron (default) or Breslow ties, as ``coxph(ties = "efron" | "breslow")``;
  counting-process rows (entry, time] as ``Surv(start, stop, event)``; strata as separate risk sets
  (``strata(s)``); case weights as ``coxph(weights = w)`` (a time's Efron terms carry the mean weight of
  its deaths, as R).
- Newton-Raphson with step halving (``coxph.control``), started at 0 (or ``init``), until the largest
  coefficient change is below 1e-10 (R stops on a relative log-likelihood change below 1e-9, i.e. a few
  iterations earlier; the coefficients agree with R's to about 1e-9).
- Covariance: inverse observed information; robust (sandwich) covariance from the score residuals,
  D' D with D = weighted dfbeta residuals summed within ``cluster`` (``coxph(robust = TRUE)``,
  ``cluster(id)``).
- Likelihood-ratio test against the null model (``summary(fit)$logtest``).
- Monotone likelihood (complete separation; e.g. no events in a level of a factor) does not raise: the
  fit is returned with ``converged`` False or the column listed in ``separated`` and a
  :class:`~helpers.stats.types.Caveat` of kind ``"monotone_likelihood"``; the coefficient tends to
  +/- infinity (R: "Loglik converged before variable ...; coefficient may be infinite"), while the LR
  test stays valid.
- PH test: the exact score test of survival >= 3.0 ``cox.zph(fit, transform = "km")`` per term and
  global, next to the Grambsch-Therneau (1994) approximation (survival 2.x, lifelines).

Efficiency: the rows are sorted by time once per data set (:class:`_RiskSets`, cached by content
for the last few data sets, so a screen of many models on the same follow-up sorts once) and the
model matrix once per fit (and once more in entry order for counting-process rows); each
Newton-Raphson evaluation is then one pass of segment sums (or, with many distinct event times, one
cumulative sum) of [w, w x] over the sorted rows, read at the event times, segment sums over the Efron
terms and one (p x n)(n x p) product for the information: O(n p^2) whole-array operations, without a
Python loop over patients or event times (R's ``coxfit6`` / ``agfit4`` are O(n p^2) loops in C). The
first evaluation (at 0) is also the null model's, and the last Newton step (below the tolerance) is
not evaluated again. On large data (the segment sums) the (1 + p) x n products [w, w x] and x v are
formed a chunk of rows at a time in a buffer that stays in the cache (:data:`CHUNK_ELEMENTS`): the
same segment sums with fewer passes over memory, which bounds the speed at a registry's million rows
(an evaluation on 870,000 counting-process rows x 23 columns: 0.29 s before, 0.19 s). The
monotone-likelihood check screens every column at the first event time (one
pass) and checks only the candidates at every event time.
``scripts/benchmark_cox.py`` times a fit against R ``coxph`` and lifelines at 10^4-10^6 patients.
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats

from helpers.stats.types import Caveat, TestResult

__all__ = ["CoxFit", "fit_coxph", "partial_likelihood", "newton_raphson", "score_residuals",
           "proportional_hazards_test", "scaled_schoenfeld", "monotone_columns", "split_at_cuts",
           "tt_cut_times", "SEPARATION_COEF", "TT_MAX_ROWS"]

#: |coef| above this (HR beyond e^10) in a fit signals monotone likelihood (complete separation).
SEPARATION_COEF = 10.0

#: Segment sums (instead of a cumulative sum over the rows) when the rows are at least this many
#: times the segments (3 per event time): see :class:`_SortedLayout`.
SEGMENT_ROWS = 8

#: Largest counting-process data set built for x log(t) terms (rows); above it x log(t) is evaluated
#: on a grid of event-time quantiles instead of at every event time (see :func:`tt_cut_times`).
TT_MAX_ROWS = 1_000_000


# ----------------------------------------------------------------------------- partial likelihood
@dataclass
class PartialLikelihood:
    """Log-likelihood, score, information (and dI/db when asked) at one coefficient vector."""

    loglik: float
    score: np.ndarray
    information: np.ndarray
    d_information: np.ndarray | None = None   # shape (p, p, p): dI/db_r in [:, :, r]


def _event_groups(time: np.ndarray, event: np.ndarray, entry: np.ndarray | None = None) -> "_RiskSets":
    """Sorted-time bookkeeping shared by every evaluation at the same data (see _RiskSets).

    The last few constructions are cached by content (exact equality of time, event and entry, on
    copies the cache owns), so callers that fit many models on the same follow-up (univariable
    screens, model selection, the PH remedy, the Firth profiles) sort once.
    """
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=int)
    entry = None if entry is None else np.asarray(entry, dtype=float)
    with _GROUPS_LOCK:
        for i, cached in enumerate(_GROUPS_CACHE):
            if cached._same_data(time, event, entry):
                _GROUPS_CACHE.insert(0, _GROUPS_CACHE.pop(i))
                return cached
    groups = _RiskSets(time.copy(), event.copy(), None if entry is None else entry.copy())
    with _GROUPS_LOCK:
        _GROUPS_CACHE.insert(0, groups)
        while len(_GROUPS_CACHE) > 1 and (len(_GROUPS_CACHE) > _GROUPS_CACHE_SIZE or
                                          sum(len(g.time) for g in _GROUPS_CACHE) > _GROUPS_CACHE_ROWS):
            _GROUPS_CACHE.pop()
    return groups


#: Risk-set structures kept for reuse (most recent first; see :func:`_event_groups`): at most this
#: many, and beyond the most recent one at most this many rows in total (about 100 bytes a row).
_GROUPS_CACHE: list = []
_GROUPS_CACHE_SIZE = 4
_GROUPS_CACHE_ROWS = 2_000_000
_GROUPS_LOCK = threading.Lock()


class _RiskSets:
    """Per-event-time bookkeeping for whole-array Efron / Breslow risk-set sums.

    ``times`` are the distinct event times, increasing. A row is at risk at t_k when
    entry < t_k <= time (entry = 0 without ``entry``). One sort of the rows by time (then, within a
    tied time, the deaths moved together by an O(n) partition) makes the rows at risk at t_k, when
    there is no ``entry``, a prefix of the rows in the working order ``order`` (time descending;
    ``risk_end[k]`` rows) and the deaths of t_k a contiguous run in it: a risk-set sum is a cumulative
    sum over the sorted rows read at ``risk_end - 1`` (or, with few event times, cumulated segment
    sums: :class:`_SortedLayout`). Counting-process rows (entry, time] (R ``Surv(start, stop, event)``)
    subtract the same prefix sums over the rows sorted by entry (those with entry >= t_k). One
    evaluation is then O(n p) whole-array operations, without a Python loop over patients or event
    times. Each death is one Efron term: ``term_group`` is its event time, ``term_j`` its index
    j = 0..d-1 within the time.

    The engine's Newton-Raphson works on the model matrix permuted into the working order once per fit
    (:class:`_SortedModel`); the methods here take values in the caller's row order (the Firth penalty,
    residuals, the PH test).
    """

    def __init__(self, time: np.ndarray, event: np.ndarray, entry: np.ndarray | None = None):
        n = len(time)
        self.time = time
        self.event = event
        self.entry = entry
        if entry is not None and np.any(entry >= time):
            raise ValueError("counting-process rows need start < stop")
        asc = np.argsort(time)                  # any order within a tied time (fixed just below)
        ts = time[asc]
        new_block = np.empty(n, dtype=bool)
        new_block[:1] = True
        np.not_equal(ts[1:], ts[:-1], out=new_block[1:])
        block_id = np.cumsum(new_block) - 1
        block_start = np.flatnonzero(new_block)
        block_end = np.append(block_start[1:], n)
        dies = event[asc] == 1
        dead_upto = np.cumsum(dies)                                         # deaths at positions <= i
        block_d = dead_upto[block_end - 1] - np.concatenate([[0], dead_upto[block_end[:-1] - 1]])
        # deaths last within each tied time, by a stable partition of each block (O(n))
        first = block_start[block_id]
        dead_before = (dead_upto - dies)[block_start][block_id]             # deaths earlier in the block
        rank_dead = dead_upto - 1 - dead_before
        rank_alive = np.arange(n) - first - (dead_upto - dies - dead_before)
        alive_in_block = (block_end - block_start - block_d)[block_id]
        position = first + np.where(dies, alive_in_block + rank_dead, rank_alive)
        sorted_asc = np.empty(n, dtype=np.int64)
        sorted_asc[position] = asc
        asc = sorted_asc
        dies = event[asc] == 1
        has_event = block_d > 0
        dies_count = block_d[has_event]
        ends = block_end[has_event]
        self._asc, self._dies_asc = asc, dies
        self.times = ts[block_start[has_event]]                             # increasing
        counts = dies_count.astype(np.int64)
        self.d = counts
        self._upto_asc = np.cumsum(has_event)[block_id]                     # event times <= time
        # working order: time descending (reversed ascending), deaths first within a tied time
        self.order = asc[::-1]
        self.risk_end = n - block_start[has_event]                          # rows with time >= t_k
        self._death_start = n - ends                                        # deaths of t_k: [start, start + d)
        self._group_starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        # one Efron term per death: j = 0..d-1 within its group (deaths in ascending order are grouped)
        self.term_group = self._upto_asc[dies] - 1
        self.term_j = np.arange(len(self.term_group)) - self._group_starts[self.term_group]
        self._entry_upto = None
        if entry is not None:
            self._entry_upto = np.searchsorted(self.times, entry, side="right")   # not at risk there
            self._entry_order = np.argsort(-entry, kind="stable")             # entry descending
            self._entry_end = n - np.searchsorted(np.sort(entry), self.times, side="left")  # entry >= t_k
        self._sorted = None

    # The arrays in the caller's row order, built on first use (the engine's fits do not need them).
    @functools.cached_property
    def _upto(self) -> np.ndarray:
        """Per row: the number of event times <= its time."""
        upto = np.empty(len(self.time), dtype=np.int64)
        upto[self._asc] = self._upto_asc
        return upto

    @functools.cached_property
    def death_idx(self) -> np.ndarray:
        """Rows that die (increasing)."""
        return np.flatnonzero(self.event == 1)

    @functools.cached_property
    def death_group(self) -> np.ndarray:
        """Event time (index) of each row of ``death_idx``."""
        return self._upto[self.death_idx] - 1

    @functools.cached_property
    def _deaths_by_time(self) -> np.ndarray:
        """Dying rows grouped by event time (increasing), by row index within a time."""
        return self.death_idx[np.argsort(self.death_group, kind="stable")]

    def _same_data(self, time, event, entry) -> bool:
        if len(time) != len(self.time) or (entry is None) != (self.entry is None):
            return False
        return (np.array_equal(time, self.time) and np.array_equal(event, self.event)
                and (entry is None or np.array_equal(entry, self.entry)))

    # -------------------------------------------------------------- sums in the caller's row order
    @staticmethod
    def _flat(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        return values.reshape(len(values), -1)

    def group_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum over the deaths of each event time of per-row ``values`` (first axis)."""
        flat = self._flat(values)
        out = np.add.reduceat(flat[self._deaths_by_time], self._group_starts, axis=0) if len(self.times) \
            else np.zeros((0, flat.shape[1]))
        return out.reshape((len(self.times),) + np.shape(values)[1:])

    def risk_sum(self, values: np.ndarray) -> np.ndarray:
        """Sum over the risk set of each event time of per-row ``values`` (first axis)."""
        flat = self._flat(values)
        out = np.cumsum(flat[self.order], axis=0)[self.risk_end - 1]
        if self.entry is not None:
            late = np.cumsum(flat[self._entry_order], axis=0)
            entered = self._entry_end > 0
            out[entered] -= late[self._entry_end[entered] - 1]
        return out.reshape((len(self.times),) + np.shape(values)[1:])

    def over_risk_times(self, per_time: np.ndarray) -> np.ndarray:
        """Per row: the sum of ``per_time`` (one value per event time) over the event times at
        which the row is at risk (entry < t <= time)."""
        per_time = np.asarray(per_time, dtype=float)
        cum = np.concatenate([np.zeros((1,) + per_time.shape[1:]), np.cumsum(per_time, axis=0)])
        out = cum[self._upto]
        if self._entry_upto is not None:
            out = out - cum[self._entry_upto]
        return out

    # -------------------------------------------------------------- the engine's sorted layout
    def sorted_layout(self) -> "_SortedLayout":
        """Index arrays for data permuted into the working order (built once, kept)."""
        if self._sorted is None:
            self._sorted = _SortedLayout(self)
        return self._sorted


class _Segments:
    """Sums of consecutive row segments [bounds[i], bounds[i + 1]) (the last one to the end) of an
    (m, n) array along its rows, as ``np.add.reduceat`` with empty segments summing to 0."""

    def __init__(self, bounds: np.ndarray, n: int):
        lengths = np.diff(np.append(bounds, n))
        self.n = n
        self._chunks: dict = {}
        self.starts = bounds[bounds < n]                    # reduceat needs indices < n
        self.count = len(bounds)                            # segments starting at n are empty
        self.empty = np.flatnonzero(lengths == 0)

    def sums(self, values: np.ndarray) -> np.ndarray:
        out = np.add.reduceat(values, self.starts, axis=1)
        if len(self.starts) < self.count:
            out = np.hstack([out, np.zeros((len(values), self.count - len(self.starts)))])
        out[:, self.empty] = 0.0
        return out

    def chunks(self, rows: int) -> tuple:
        """Row ranges of about ``rows`` rows that begin at a segment start: ((r0, r1, s0, s1, local
        starts), ...) with the segments s0..s1-1 (of ``starts``) inside [r0, r1). Kept per ``rows``."""
        if rows in self._chunks:
            return self._chunks[rows]
        n, starts = self.n, self.starts
        cut = np.unique(np.searchsorted(starts, np.arange(rows, n, rows), side="left"))
        cut = [0, *[int(k) for k in cut if 0 < k < len(starts)], len(starts)]
        out = []
        for s0, s1 in zip(cut[:-1], cut[1:]):
            r0 = int(starts[s0])
            r1 = int(starts[s1]) if s1 < len(starts) else n
            out.append((r0, r1, s0, s1, starts[s0:s1] - r0))
        self._chunks[rows] = tuple(out)
        return self._chunks[rows]

    def sums_by_chunk(self, values: Callable, m: int, rows: int) -> np.ndarray:
        """:meth:`sums` of the (m, n) array whose columns r0..r1-1 are ``values(r0, r1)``, computed a
        chunk of about ``rows`` columns at a time (no chunk splits a segment: the same sums)."""
        out = np.empty((m, self.count))
        for r0, r1, s0, s1, local in self.chunks(rows):
            out[:, s0:s1] = np.add.reduceat(values(r0, r1), local, axis=1)
        out[:, len(self.starts):] = 0.0
        out[:, self.empty] = 0.0
        return out


class _SortedLayout:
    """The risk sets in the working order of :class:`_RiskSets` (rows sorted by time, descending)."""

    def __init__(self, groups: _RiskSets):
        n = len(groups.time)
        order = groups.order
        self.groups = groups
        self.n = n
        self.order = order
        self.event = groups._dies_asc[::-1].astype(float)          # 1 = death, in the working order
        self.upto = np.ascontiguousarray(groups._upto_asc[::-1])
        self.risk_end = groups.risk_end
        d = groups.d
        start = groups._death_start                     # deaths of t_k are contiguous
        self.death_end = start + d                      # one past the time's last death
        self.death_before = start                       # rows before the time's first death
        self.entry_upto = None
        if groups.entry is not None:
            position = np.empty(n, dtype=np.int64)
            position[order] = np.arange(n)
            self.entry_upto = groups._entry_upto[order]
            self.entry_order = position[groups._entry_order]      # working-order rows by entry, descending
            self.entry_end = groups._entry_end                    # rows with entry >= t_k
        # Right-censored data with few distinct event times (e.g. times in days, many patients): the
        # sorted rows split into 3 segments per event time t_k (later rows not at risk at t_{k+1}, the
        # deaths at t_k, the others at t_k). Segment sums (one pass, pairwise summation) give the death
        # sums directly and, cumulated over the segments, the risk-set sums: cheaper and more accurate
        # than a cumulative sum over every row. With many event times the row-wise cumsum is used.
        self.segments = self.entry_segments = None
        nt = len(groups.times)
        if nt and 3 * nt + 1 <= n // SEGMENT_ROWS:
            bounds = np.empty((nt, 3), dtype=np.int64)
            bounds[:, 0], bounds[:, 1], bounds[:, 2] = self.death_before, self.death_end, self.risk_end
            q = nt - 1 - np.arange(nt)                                    # block of t_k in the bounds
            self.segments = _Segments(np.concatenate([[0], bounds[::-1].ravel()]), n)
            self.death_segment = 1 + 3 * q                               # [death_before, death_end)
            self.risk_segment = 2 + 3 * q                                # ends at risk_end[k]
            if groups.entry is not None:   # rows sorted by entry (descending): prefixes entry >= t_k
                self.entry_segments = _Segments(np.concatenate([[0], self.entry_end[::-1]]), n)
                self.late_segment = q                                     # ends at entry_end[k]

    @functools.cached_property
    def death_pos(self) -> np.ndarray:
        """Position of each Efron term's death in the working order (terms by event time, then j)."""
        return np.repeat(self.death_before, self.groups.d) + self.groups.term_j

    def prefix_at(self, cum: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """cum[:, ends - 1] with 0 where ends == 0 (cum: (m, n) cumulative sums along axis 1)."""
        out = cum[:, np.maximum(ends, 1) - 1]
        out[:, ends == 0] = 0.0
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
        # terms are grouped by event time (every time has one at least): segment sums
        out = np.add.reduceat(values, self.groups._group_starts) if len(values) else np.zeros(0)
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


def _efron_sums(beta, X, ties, groups, weights=None) -> _EfronSums:
    """Risk-set and death sums of w = c exp(x beta) and w x per event time (c: case weights): O(n p)."""
    if ties not in ("efron", "breslow"):
        raise ValueError(f"ties must be 'efron' or 'breslow', got {ties!r}")
    eta = X @ beta
    eta = eta - eta.max()          # a common shift cancels in the partial likelihood
    w = np.exp(eta) if weights is None else np.exp(eta) * weights
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
                       groups=None, entry=None, weights=None) -> PartialLikelihood:
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
    weights : array (n,) of case weights (R ``coxph(weights = )``); None: all 1. As R, a time with
        d deaths has d Efron terms, each weighted by the mean weight of its deaths.

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
    if weights is not None:
        if third:
            raise ValueError("the third-derivative array is not available with case weights")
        return _weighted_partial_likelihood(beta, X, groups, ties, np.asarray(weights, dtype=float))
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



def _mean_death_weight(groups: "_RiskSets", weights: np.ndarray) -> np.ndarray:
    """Per event time: the mean case weight of its deaths (R's ``meanwt`` in coxfit6/agfit4)."""
    total = groups.group_sum(weights)
    return total / groups.d


def _weighted_partial_likelihood(beta, X, groups, ties, weights) -> PartialLikelihood:
    """Case-weighted partial likelihood (R ``coxph(weights = w)``): deaths enter with their weight,
    each Efron term of a time with the mean weight of the time's deaths."""
    sums = _efron_sums(beta, X, ties, groups, weights)
    h = _mean_death_weight(groups, weights)
    info = _weighted_information(X, sums, h)
    mean_sum = sums.mean_sum(h).sum(axis=0)
    di = groups.death_idx
    ll = float((weights[di] * sums.eta[di]).sum() - (h[groups.term_group] * np.log(sums.s0)).sum())
    U = (weights[di, None] * X[di]).sum(axis=0) - mean_sum
    return PartialLikelihood(ll, U, info, None)


#: Elements of the chunk buffer of :class:`_SortedModel` on large data (1 MiB: a chunk of rows stays in
#: the L2 cache while it is multiplied and summed).
CHUNK_ELEMENTS = 131_072

#: Rows per block of :func:`_transposed` (a block of a few columns stays in the L2 cache).
_TRANSPOSE_BLOCK = 2048


def _transposed(A: np.ndarray) -> np.ndarray:
    """``np.ascontiguousarray(A.T)`` of a C-ordered (n, p) array, copied in blocks of rows: the same
    values, about twice as fast for a registry's million rows (a whole-array transposed copy reads the
    source once per column). Pure data movement: no arithmetic."""
    n = A.shape[0]
    if n <= _TRANSPOSE_BLOCK or A.shape[1] < 2 or not A.flags.c_contiguous:
        return np.ascontiguousarray(A.T)
    out = np.empty(A.shape[::-1], dtype=A.dtype)
    for start in range(0, n, _TRANSPOSE_BLOCK):
        out[:, start:start + _TRANSPOSE_BLOCK] = A[start:start + _TRANSPOSE_BLOCK].T
    return out


class _SortedModel:
    """The engine's partial likelihood on the model matrix permuted into the risk sets' working order.

    Built once per fit: ``XT`` is the (p, n) transposed model matrix sorted by time (descending), so
    each Newton-Raphson evaluation is one cumulative (or segment) sum of [w, w x] along the rows, a
    few gathers at the event times, segment sums over the Efron terms and one (p x n)(n x p) product
    for the information: O(n p^2), as R's ``coxfit6`` / ``agfit4``, without Python loops over rows or
    event times.
    """

    def __init__(self, groups: _RiskSets, X: np.ndarray, ties: str, weights: np.ndarray | None = None):
        if ties not in ("efron", "breslow"):
            raise ValueError(f"ties must be 'efron' or 'breslow', got {ties!r}")
        layout = groups.sorted_layout()
        self.groups, self.layout = groups, layout
        self.XT = _transposed(np.take(X, layout.order, axis=0))
        # counting-process rows: the same matrix in entry order (rows with entry >= t_k leave the sums)
        self.XT_entry = None if layout.entry_upto is None else np.take(self.XT, layout.entry_order, axis=1)
        g = groups.term_group
        self.frac = groups.term_j / groups.d[g] if ties == "efron" else np.zeros(len(g))
        dying = layout.event.astype(float)
        if weights is None:
            self.weights, self.h = None, None
        else:
            self.weights = np.ascontiguousarray(weights[layout.order])
            self.h = _mean_death_weight(groups, weights)
            if self.XT_entry is not None:
                self.weights_entry = self.weights[layout.entry_order]
            dying = dying * self.weights
        self.dying = dying
        self.x_dying = self.XT @ dying               # (weighted) sum of x over the deaths
        # event times where an Efron term has a fraction > 0 (ties); none for Breslow or without ties
        self.tied = np.flatnonzero(groups.d > 1) if ties == "efron" else np.zeros(0, dtype=np.int64)
        if len(self.tied):
            # per row: its entry in [cum_a (T + 1), cum_a[k + 1] - b_k (T)] (a death at t_k: the second)
            self.c_index = layout.upto + len(groups.times) * (layout.event == 1)
        if layout.segments is None:
            self._buffer = np.empty((X.shape[1] + 1, len(groups.time)))
            self._buffer_entry = None if self.XT_entry is None else np.empty_like(self._buffer)
        else:   # [w, w x] and x v a chunk of rows at a time (see _segment_sums): small buffers
            self.chunk_rows = max(CHUNK_ELEMENTS // (X.shape[1] + 1), 1)
            longest = max(r1 - r0 for r0, r1, *_ in layout.segments.chunks(self.chunk_rows))
            if layout.entry_segments is not None:
                longest = max(longest, *(r1 - r0 for r0, r1, *_ in layout.entry_segments.chunks(self.chunk_rows)))
            self._chunk_buffer = np.empty((X.shape[1] + 1) * max(longest, self.chunk_rows))

    def evaluate(self, beta) -> PartialLikelihood:
        """Log-likelihood, score and information at ``beta`` (as :func:`partial_likelihood`).

        Risk-set sums are kept as (variables x event times) arrays; the death sums D (and every Efron
        correction) only at the tied event times, the only ones where an Efron fraction is not 0.
        """
        beta = np.asarray(beta, dtype=float)
        layout, groups = self.layout, self.groups
        XT, h, g, frac = self.XT, self.h, groups.term_group, self.frac
        p, n = XT.shape
        eta = beta @ XT
        shift = eta.max()            # a common shift cancels in the partial likelihood
        eta -= shift
        w = np.exp(eta)
        if self.weights is not None:
            w *= self.weights
        tied = self.tied
        if layout.segments is not None:                          # few event times: segment sums
            seg, late = self._segment_sums(w)
            dead = seg[:, layout.death_segment[tied]]
            risk = np.cumsum(seg, axis=1, out=seg)[:, layout.risk_segment]   # (1 + p) x event times
            if late is not None:
                risk -= np.cumsum(late, axis=1)[:, layout.late_segment]
        else:
            WT = self._buffer                                    # reused: no page faults per call
            WT[0] = w
            np.multiply(XT, w, out=WT[1:])
            late = None
            if self.XT_entry is not None:                        # [w, w x] in entry order
                w_entry = np.exp(beta @ self.XT_entry - shift)
                if self.weights is not None:
                    w_entry *= self.weights_entry
                late = self._buffer_entry
                late[0] = w_entry
                np.multiply(self.XT_entry, w_entry, out=late[1:])
            cum = np.cumsum(WT, axis=1, out=WT)
            risk = np.take(cum, layout.risk_end - 1, axis=1)     # (1 + p) x event times
            if late is not None:
                risk -= layout.prefix_at(np.cumsum(late, axis=1, out=late), layout.entry_end)
            dead = (layout.prefix_at(cum, layout.death_end[tied])
                    - layout.prefix_at(cum, layout.death_before[tied]))
        s0 = risk[0, g]
        if len(tied):
            dead0 = np.zeros(len(groups.times))
            dead0[tied] = dead[0]
            s0 = s0 - frac * dead0[g]

        starts = groups._group_starts           # terms are grouped by event time: segment sums

        def per_time(values):
            out = np.add.reduceat(values, starts)
            return out if h is None else out * h

        log_s0 = np.log(s0)
        ll = float(eta @ self.dying - (log_s0.sum() if h is None else h[g] @ log_s0))
        inv = 1 / s0
        a = per_time(inv)
        R = risk[1:]
        mean_sum = R @ a
        inv2 = inv * inv
        mean_outer = (R * per_time(inv2)) @ R.T
        if len(tied):
            fi = frac * inv
            b = per_time(fi)
            D = dead[1:]
            mean_sum -= D @ b[tied]
            RD = (R[:, tied] * per_time(fi * inv)[tied]) @ D.T
            mean_outer += (D * per_time(fi * fi)[tied]) @ D.T - RD - RD.T
        U = self.x_dying - mean_sum
        # information: sum_i w_i c_i x_i x_i' - sum_e E_e E_e', c_i = sum of a_k over the times at
        # which row i is at risk, minus b_k for a death at t_k (see _weighted_information)
        cum_a = np.concatenate([[0.0], np.cumsum(a)])
        c = np.concatenate([cum_a, cum_a[1:] - b])[self.c_index] if len(tied) else cum_a[layout.upto]
        if layout.entry_upto is not None:
            c -= cum_a[layout.entry_upto]
        v = np.multiply(w, c, out=c)
        if layout.segments is not None:
            info = self._chunked_products(v) - mean_outer
        else:
            info = np.multiply(XT, v, out=WT[1:]) @ XT.T - mean_outer
        return PartialLikelihood(ll, U, info, None)

    # Large data (the segment-sum layout): the (1 + p) x n products [w, w x] and x v are formed a chunk
    # of rows at a time in a small buffer that stays in the cache, instead of whole arrays written to
    # memory and read back: the same segment sums (no chunk splits a segment), fewer passes over memory
    # (which bounds the speed at a registry's million rows) and no (1 + p) x n buffers.
    def _chunk(self, XT, w, r0, r1) -> np.ndarray:
        """[w, w x] of rows r0..r1-1 in the reused chunk buffer."""
        out = self._chunk_buffer[:XT.shape[0] * (r1 - r0) + (r1 - r0)].reshape(XT.shape[0] + 1, r1 - r0)
        out[0] = w[r0:r1]
        np.multiply(XT[:, r0:r1], out[0], out=out[1:])
        return out

    def _segment_sums(self, w) -> tuple[np.ndarray, np.ndarray | None]:
        """Segment sums of [w, w x] in the working order and, for counting-process rows, in entry order."""
        layout, XT, rows = self.layout, self.XT, self.chunk_rows
        m = XT.shape[0] + 1
        seg = layout.segments.sums_by_chunk(lambda r0, r1: self._chunk(XT, w, r0, r1), m, rows)
        late = None
        if self.XT_entry is not None:
            w_entry = w[layout.entry_order]          # the same weights, in entry order
            late = layout.entry_segments.sums_by_chunk(
                lambda r0, r1: self._chunk(self.XT_entry, w_entry, r0, r1), m, rows)
        return seg, late

    def _chunked_products(self, v) -> np.ndarray:
        """sum_i v_i x_i x_i' (p x p), a chunk of rows at a time."""
        XT, rows = self.XT, self.chunk_rows
        p, n = XT.shape
        out = np.zeros((p, p))
        for r0 in range(0, n, rows):
            r1 = min(r0 + rows, n)
            xv = np.multiply(XT[:, r0:r1], v[r0:r1],
                             out=self._chunk_buffer[:p * (r1 - r0)].reshape(p, r1 - r0))
            out += xv @ XT[:, r0:r1].T
        return out

    def monotone(self, names) -> list:
        """:func:`monotone_columns` on the sorted matrix (right-censored data)."""
        layout, groups = self.layout, self.groups
        XT = self.XT
        if not len(groups.times):
            return []
        # A column is monotone only if its condition holds at the first event time, whose risk set
        # is the largest: screen every column there (one pass), check the few candidates fully.
        first = slice(layout.death_before[0], layout.death_end[0])
        at_risk = XT[:, :layout.risk_end[0]]
        with np.errstate(invalid="ignore"):
            candidate = (~(XT[:, first].min(axis=1) < at_risk.max(axis=1))
                         | ~(XT[:, first].max(axis=1) > at_risk.min(axis=1)))
        out = []
        ends = layout.risk_end - 1
        starts = groups._group_starts
        for j in np.flatnonzero(candidate):
            x = XT[j]
            risk_max = np.maximum.accumulate(x)[ends]
            risk_min = np.minimum.accumulate(x)[ends]
            xd = x[layout.death_pos]
            dying_min = np.minimum.reduceat(xd, starts)
            dying_max = np.maximum.reduceat(xd, starts)
            if not (dying_min < risk_max).any() or not (dying_max > risk_min).any():
                out.append(names[j])
        return out


# ----------------------------------------------------------------------------- Newton-Raphson
@dataclass
class NewtonResult:
    """Maximiser of an objective: coefficients, the objective's value, gradient and information there."""

    beta: np.ndarray
    value: float
    gradient: np.ndarray
    information: np.ndarray
    converged: bool
    iterations: int
    extra: object = None          # what ``evaluate`` returned besides (value, gradient, information)


def newton_raphson(evaluate: Callable, beta, *, value: Callable | None = None, free=None,
                   tol: float = 1e-10, max_iter: int = 60, criterion: str = "step",
                   max_step: float | None = None, max_halvings: int = 40,
                   relative_slack: bool = True, evaluate_last_step: bool = True) -> NewtonResult:
    """Maximise a concave objective by Newton-Raphson with step halving (R ``coxph.control``).

    Parameters
    ----------
    evaluate : beta -> (value, gradient, information[, extra]) of the objective at ``beta``.
    value : beta -> value only (a cheaper evaluation for the step-halving trials); None: ``evaluate``.
    free : indices of the coordinates to update (the others stay fixed: profile likelihoods).
    criterion : "step" stops when the largest coefficient change is below ``tol`` (the Cox MLE);
        "score" when the largest gradient component is below ``tol`` (the Firth estimate).
    max_step : clip each component of the step to +/- this (``coxphf``'s maxstep); None: no clipping.
    max_halvings : a step that lowers the objective is halved at most this many times; with
        ``criterion="step"``, when no halving keeps the objective (a numerically singular information
        where the objective is flat, as under monotone likelihood) the iterations stop there, converged.
    relative_slack : accept a step whose value is at most 1e-12 x |value| lower (else 1e-12 absolute).
    evaluate_last_step : with ``criterion="step"``, evaluate the objective after the last step (below
        ``tol``); False returns the stepped coefficients with the value and information of the point
        before it (they differ by O(tol) relative: one evaluation fewer, the Cox fit's choice).
    """
    beta = np.array(beta, dtype=float)
    free = np.arange(len(beta)) if free is None else np.asarray(free)
    state = evaluate(beta)
    for iteration in range(1, max_iter + 1):
        current, gradient, information = state[0], state[1], state[2]
        if criterion == "score" and np.max(np.abs(gradient[free])) < tol:
            return NewtonResult(beta, current, gradient, information, True, iteration - 1,
                                state[3] if len(state) > 3 else None)
        sub = information[np.ix_(free, free)]
        try:
            step = np.linalg.solve(sub, gradient[free])
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(sub, gradient[free], rcond=None)[0]
        if max_step is not None:
            step = np.clip(step, -max_step, max_step)
        if not evaluate_last_step and criterion == "step" and np.max(np.abs(step)) < tol:
            beta = beta.copy()
            beta[free] += step
            return NewtonResult(beta, current, gradient, information, True, iteration,
                                state[3] if len(state) > 3 else None)
        slack = 1e-12 * abs(current) if relative_slack else 1e-12
        trial_state = None
        improved = False
        for _half in range(max_halvings):
            trial = beta.copy()
            trial[free] += step
            if value is None:
                trial_state = evaluate(trial)
                trial_value = trial_state[0]
            else:
                trial_value = value(trial)
            if np.isfinite(trial_value) and trial_value >= current - slack:
                improved = True
                break
            step = step / 2
        if not improved and criterion == "step":
            # No halving of the Newton step keeps the objective: the information is numerically
            # singular where the objective is flat (e.g. a coefficient drifting to infinity under
            # monotone likelihood). Stop here, as R's coxph stops when the log-likelihood stops
            # improving ("coefficient may be infinite").
            return NewtonResult(beta, current, gradient, information, True, iteration,
                                state[3] if len(state) > 3 else None)
        beta = trial
        state = trial_state if value is None else evaluate(beta)
        if criterion == "step" and np.max(np.abs(step)) < tol:
            return NewtonResult(beta, state[0], state[1], state[2], True, iteration,
                                state[3] if len(state) > 3 else None)
    return NewtonResult(beta, state[0], state[1], state[2], False, max_iter,
                        state[3] if len(state) > 3 else None)


# ----------------------------------------------------------------------------- the public fit
@dataclass
class CoxFit:
    """One fitted Cox model (arrays; coefficient order = columns of ``X``).

    Attributes
    ----------
    names : column names of the coefficients.
    coef, se : log hazard ratios and model-based standard errors (inverse observed information).
    cov : model-based covariance matrix; ``cov_robust`` / ``se_robust``: sandwich (None unless
        ``robust=True``).
    loglik, loglik_null : (penalized, with ``firth=True``) partial log-likelihood at the estimate and
        at beta = 0.
    lr : likelihood-ratio test against the null model (chi-square on p df).
    converged, iterations : Newton-Raphson status.
    separated : columns whose likelihood is monotone (the ML coefficient is infinite).
    caveats : ``Caveat`` list ("monotone_likelihood", "non_convergence", "no_events").
    ties, method : "efron"/"breslow"; "ml" or "firth".
    """

    names: list
    coef: np.ndarray
    se: np.ndarray
    cov: np.ndarray
    loglik: float
    loglik_null: float
    lr: TestResult
    converged: bool
    iterations: int
    n: int
    events: int
    ties: str = "efron"
    method: str = "ml"
    se_robust: np.ndarray | None = None
    cov_robust: np.ndarray | None = None
    separated: list = field(default_factory=list)
    caveats: list = field(default_factory=list)
    information: np.ndarray | None = field(default=None, repr=False)
    # the data, for residuals and the PH test
    X: np.ndarray | None = field(default=None, repr=False)
    time: np.ndarray | None = field(default=None, repr=False)
    event: np.ndarray | None = field(default=None, repr=False)
    entry: np.ndarray | None = field(default=None, repr=False)
    weights: np.ndarray | None = field(default=None, repr=False)
    stratified: bool = False

    @property
    def lr_chisq(self) -> float:
        return 2 * (self.loglik - self.loglik_null)

    @property
    def estimable(self) -> bool:
        """False when there were no events or Newton-Raphson failed without a monotone likelihood."""
        return not any(c.kind in ("no_events", "non_convergence") for c in self.caveats)

    def wald(self, level: float = 0.95, robust: bool = False) -> pd.DataFrame:
        """Per coefficient: coef, se, hr, lower, upper (Wald CI), z, p (Wald z test), as
        ``summary(coxph)``; ``robust=True`` uses the sandwich SE (R's ``robust se`` column)."""
        se = self.se_robust if robust else self.se
        q = stats.norm.ppf(0.5 + level / 2)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            z = self.coef / se
            return pd.DataFrame({"term": self.names, "coef": self.coef, "se": se, "hr": np.exp(self.coef),
                                 "lower": np.exp(self.coef - q * se), "upper": np.exp(self.coef + q * se),
                                 "z": z, "p": 2 * stats.norm.sf(np.abs(z))})


def _strata_entry(time, entry, strata):
    """Strata as disjoint time axes: stratum s lives on (s * offset, s * offset + max time], with
    offset = 2 (max time + 1); every row of stratum s enters after the last time of stratum s - 1, so
    each risk set holds one stratum (identical sums to separate risk sets)."""
    codes = pd.factorize(pd.Series(np.asarray(strata)).astype(str), sort=True)[0]
    offset = 2.0 * (float(np.max(time)) + 1.0)
    shift = codes * offset
    start = (np.asarray(entry, dtype=float) if entry is not None else np.full(len(time), -1.0)) + shift
    return time + shift, start, int(codes.max()) + 1


def monotone_columns(X: np.ndarray, time, event, names=None) -> list:
    """Columns whose value, at every event time, is the maximum (or minimum) in the risk set.

    For such a column the partial likelihood increases monotonically in its coefficient (complete
    separation; Heinze and Schemper 2001), so the ML estimate is +/- infinity. Right-censored data
    (risk set of t = {time >= t}).
    """
    X = np.asarray(X, dtype=float)
    names = list(range(X.shape[1])) if names is None else list(names)
    event = np.asarray(event)
    if not (event == 1).any():
        return []
    groups = _event_groups(time, event)
    return _SortedModel(groups, X.reshape(len(groups.time), -1), "breslow").monotone(names)


def fit_coxph(time, event, X, *, entry=None, strata=None, weights=None, ties: str = "efron",
              robust: bool = False, cluster=None, firth: bool = False, init=None, names=None,
              max_iter: int | None = None, tol: float = 1e-10) -> CoxFit:
    """Fit a Cox proportional-hazards model.

    Parameters
    ----------
    time : array (n,) follow-up in months (the stop time of counting-process rows).
    event : array (n,) 1 = event at ``time``, 0 = censored.
    X : array or DataFrame (n, p), numeric model matrix (dummy-coded factors); DataFrame column
        names become ``names``.
    entry : array (n,) interval starts of counting-process rows (entry, time] (delayed entry,
        time-varying covariates; R ``Surv(start, stop, event)``); None: at risk from 0.
    strata : array (n,) of stratum labels: separate baseline hazards (R ``strata(s)``).
    weights : array (n,) case weights (R ``coxph(weights = w)``).
    ties : "efron" (R's default) or "breslow".
    robust : also compute the sandwich covariance (R ``robust = TRUE``); rows of one ``cluster``
        (e.g. a patient's counting-process rows; R ``cluster(id)``) are summed first.
    firth : maximise Firth's penalized partial likelihood l + 0.5 log det I instead (Heinze and
        Schemper 2001; unweighted, unstratified right-censored data; see :mod:`helpers.stats.firth`).
    init : starting coefficients (a warm start; the maximum is the same).
    max_iter : Newton-Raphson iterations (default 60; 100 with ``firth``).

    Returns
    -------
    CoxFit. Never raises for a monotone likelihood, non-convergence or no events: these are flagged
    (``converged``, ``separated``, ``caveats``). R equivalent:
    ``coxph(Surv(entry, time, event) ~ X + strata(s), weights = w, ties = ties, robust = robust)``.
    """
    if isinstance(X, pd.DataFrame):
        names = list(X.columns) if names is None else list(names)
        X = X.to_numpy(dtype=float)
    X = np.ascontiguousarray(np.asarray(X, dtype=float).reshape(len(np.asarray(time)), -1))
    p = X.shape[1]
    names = [f"x{j}" for j in range(p)] if names is None else list(names)
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=int)
    w = None if weights is None else np.asarray(weights, dtype=float)
    n, events = int(len(time)), int(event.sum())
    fit_time, fit_entry, n_strata = time, None if entry is None else np.asarray(entry, dtype=float), 1
    if strata is not None:
        fit_time, fit_entry, n_strata = _strata_entry(time, entry, strata)
        if n_strata == 1:
            fit_time, fit_entry = time, None if entry is None else np.asarray(entry, dtype=float)
    common = dict(n=n, events=events, ties=ties, method="firth" if firth else "ml", X=X, time=time,
                  event=event, entry=None if entry is None else np.asarray(entry, dtype=float),
                  weights=w, stratified=n_strata > 1)
    if events == 0:
        nan = np.full(p, np.nan)
        return CoxFit(names, nan, nan, np.full((p, p), np.nan), 0.0, 0.0, TestResult(np.nan, p, np.nan, "lr"),
                      False, 0, caveats=[Caveat("no_events", {"n": n})], **common)
    groups = _event_groups(fit_time, event, fit_entry)
    beta0 = np.zeros(p) if init is None else np.asarray(init, dtype=float).copy()
    if p == 0:   # no coefficient (e.g. every term moved to the strata): the null model
        pl = partial_likelihood(beta0, X, fit_time, event, ties, groups=groups, weights=w)
        return CoxFit(names, beta0, beta0, np.zeros((0, 0)), float(pl.loglik), float(pl.loglik),
                      TestResult(0.0, 0, np.nan, "lr"), True, 0, information=np.zeros((0, 0)), **common)
    if firth:
        if w is not None or fit_entry is not None:
            raise ValueError("the Firth penalty is implemented for unweighted, unstratified right-censored data")
        from helpers.stats.firth import firth_newton, penalized_loglik
        res = firth_newton(beta0, X, fit_time, event, ties, groups, tol=tol, max_iter=max_iter or 100)
        loglik_null = penalized_loglik(np.zeros(p), X, fit_time, event, ties, groups)
    else:
        model = _SortedModel(groups, X, ties, w)    # sorted once; every evaluation reuses it
        first = model.evaluate(beta0)
        pending = [first]                          # newton_raphson's first evaluation is at beta0

        def evaluate(beta):
            pl = pending.pop() if pending else model.evaluate(beta)
            return pl.loglik, pl.score, pl.information, pl
        res = newton_raphson(evaluate, beta0, tol=tol, max_iter=max_iter or 60, evaluate_last_step=False)
        loglik_null = first.loglik if not beta0.any() else model.evaluate(np.zeros(p)).loglik
    information = res.information
    beta = res.beta
    try:
        cov = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        cov = np.linalg.pinv(information)
    se = np.sqrt(np.abs(np.diag(cov)))
    caveats = []
    separated = []
    if not firth:
        if fit_entry is None:
            separated = model.monotone(names)
        separated += [c for c, b in zip(names, beta) if abs(b) > SEPARATION_COEF and c not in separated]
        if separated:
            caveats.append(Caveat("monotone_likelihood", {"terms": list(separated)}))
        elif not res.converged:
            caveats.append(Caveat("non_convergence", {"iterations": res.iterations}))
    elif not res.converged:
        caveats.append(Caveat("non_convergence", {"iterations": res.iterations}))
    chisq = 2 * (res.value - loglik_null)
    lr = TestResult(float(chisq), p, float(stats.chi2.sf(max(chisq, 0.0), p)) if p else np.nan, "lr")
    fit = CoxFit(names, beta, se, cov, float(res.value), float(loglik_null), lr, bool(res.converged),
                 int(res.iterations), separated=separated, caveats=caveats, information=information, **common)
    if robust:
        resid = score_residuals(fit, _groups=groups, _time=fit_time, _entry=fit_entry)
        D = resid @ cov
        if w is not None:
            D = D * w[:, None]
        if cluster is not None:
            codes = pd.factorize(pd.Series(np.asarray(cluster)).astype(str))[0]
            D = np.vstack([np.bincount(codes, weights=D[:, j]) for j in range(p)]).T if p else D
        fit.cov_robust = D.T @ D
        fit.se_robust = np.sqrt(np.diag(fit.cov_robust))
    return fit


def score_residuals(fit: CoxFit, *, _groups=None, _time=None, _entry=None) -> np.ndarray:
    """Per-row score residuals (n x p) at the fitted coefficients (R ``residuals(fit, "score")``).

    For row i with risk r_i = exp(x_i b), over the Efron terms e of each event time k at which it is
    at risk: -r_i sum (x_i - xbar_e) haz_e c_ie, plus, when it dies at k, (x_i - mean_e xbar_e);
    c_ie = 1 - j/d for the dying rows (their Efron down-weighting), else 1; haz_e = (mean weight of the
    deaths) / s0_e. Counting-process rows and strata as in the fit. Unweighted residuals (R multiplies
    by the weights for ``dfbeta``, as :func:`fit_coxph` does for the robust variance).
    """
    X, event = fit.X, fit.event
    if _groups is None:
        time, entry = fit.time, fit.entry
        if fit.stratified:
            raise ValueError("pass the fit's risk sets for a stratified model")
        _groups = _event_groups(time, event, entry)
    groups = _groups
    beta = fit.coef
    sums = _efron_sums(beta, X, fit.ties, groups, fit.weights)
    risk = np.exp(sums.eta)                     # shifted: rescale haz accordingly (cancels below)
    g = groups.term_group
    meanwt = np.ones(len(groups.times)) if fit.weights is None else _mean_death_weight(groups, fit.weights)
    haz = meanwt[g] / sums.s0                    # per term (s0 in the same shifted scale as risk)
    xbar = sums.term_means()                     # per term (terms x p)
    down = 1 - sums.frac
    nt = len(groups.times)

    def per_time(values):
        values = np.asarray(values, dtype=float)
        if values.ndim == 1:
            return np.bincount(g, weights=values, minlength=nt)
        return np.column_stack([np.bincount(g, weights=values[:, j], minlength=nt)
                                for j in range(values.shape[1])]) if values.shape[1] else np.zeros((nt, 0))

    h0, h1 = per_time(haz), per_time(haz[:, None] * xbar)
    h0d, h1d = per_time(haz * down), per_time((haz * down)[:, None] * xbar)
    xbar_mean = per_time(xbar) / groups.d[:, None]
    C0 = groups.over_risk_times(h0)
    C1 = groups.over_risk_times(h1)
    resid = -risk[:, None] * (X * C0[:, None] - C1)
    di, k = groups.death_idx, groups.death_group
    rd = risk[di][:, None]
    resid[di] += X[di] - xbar_mean[k]
    resid[di] += rd * (X[di] * h0[k][:, None] - h1[k]) - rd * (X[di] * h0d[k][:, None] - h1d[k])
    return resid


# ----------------------------------------------------------------------------- proportional hazards
def _km_transform(time, event) -> np.ndarray:
    """1 - KM(t-) for each subject, as ``cox.zph(transform = "km")`` (findInterval left.open)."""
    t_ev = np.unique(time[event == 1])
    at_risk = len(time) - np.searchsorted(np.sort(time), t_ev, side="left")
    d = np.bincount(np.searchsorted(t_ev, time[event == 1]), minlength=len(t_ev))
    surv = np.cumprod(1 - d / at_risk)
    idx = np.searchsorted(t_ev, time, side="left")      # number of event times strictly < t
    return 1 - np.concatenate([[1.0], surv])[idx]


def _zph_pieces(fit: CoxFit):
    if fit.entry is not None or fit.stratified or fit.weights is not None:
        raise ValueError("the PH test is implemented for unweighted, unstratified right-censored fits")
    X = np.ascontiguousarray(fit.X)
    time, event = fit.time, fit.event
    beta = fit.coef
    p = X.shape[1]
    g_all = _km_transform(time, event)
    g_all = g_all - g_all[event == 1].mean()
    # Per event time k (Efron risk-set moments at the fitted beta, O(n p^2), no Python loop):
    # score U_k, information V_k, and g_k = centred 1 - KM(t_k-); imat is the information of
    # (beta, gamma) for the model with x * g(t) added.
    groups = _event_groups(time, event)
    sums = _efron_sums(beta, X, fit.ties, groups)
    deaths = groups._deaths_by_time                       # by event time, then subject index
    g_time = g_all[deaths[groups._group_starts]]
    mean_sum = sums.mean_sum()
    U = groups.group_sum(X) - mean_sum
    u2 = g_time @ U
    info = {power: _weighted_information(X, sums, g_time ** power) for power in (0, 1, 2)}
    imat = np.block([[info[0], info[1]], [info[1], info[2]]])
    m_bar = mean_sum / groups.d[:, None]
    death_time = np.repeat(np.arange(len(groups.times)), groups.d)
    sres = X[deaths] - m_bar[death_time]                   # Schoenfeld residuals, one row per death
    g_rows = g_time[death_time]
    var = np.linalg.inv(imat[:p, :p])
    return p, u2, imat, sres, g_rows, var, time[deaths]


def proportional_hazards_test(fit: CoxFit, terms: dict | None = None) -> pd.DataFrame:
    """Tests of proportional hazards on scaled Schoenfeld residuals, km time transform.

    Parameters
    ----------
    fit : an unweighted, unstratified right-censored :class:`CoxFit`.
    terms : {term: [column names]} tested jointly (a factor's dummies); default one term per column.

    Returns
    -------
    DataFrame, one row per term and a last row "GLOBAL": term, df, chisq, p (the score test of
    survival >= 3.0, equal to R ``cox.zph(fit, transform = "km")``: a score test for adding x g(t),
    g = 1 - KM(t-), at the fitted coefficients), chisq_gt, p_gt (the Grambsch and Therneau 1994
    approximation of survival 2.x and lifelines ``proportional_hazard_test(time_transform = "km")``;
    per coefficient, so only for 1-df terms, and global).
    """
    p, u2, imat, sres, g_rows, var, _ = _zph_pieces(fit)
    cols = list(fit.names)
    terms = {c: [c] for c in cols} if terms is None else terms

    def score_test(idx):
        kk = list(range(p)) + [p + i for i in idx]
        u = np.concatenate([np.zeros(p), u2[idx]])
        return float(np.linalg.solve(imat[np.ix_(kk, kk)], u) @ u)

    ndead = sres.shape[0]
    xx = np.asarray(g_rows)
    xx = xx - xx.mean()
    test = xx @ (sres @ var * ndead)
    gt_per = test ** 2 / (np.diag(var) * ndead * (xx ** 2).sum())
    tu = xx @ sres
    gt_global = float(tu @ var @ tu * ndead / (xx ** 2).sum())
    rows = []
    for name, term_cols in terms.items():
        idx = [cols.index(c) for c in term_cols]
        chisq = score_test(idx)
        gt = float(gt_per[idx[0]]) if len(idx) == 1 else np.nan
        rows.append({"term": name, "df": len(idx), "chisq": chisq, "p": float(stats.chi2.sf(chisq, len(idx))),
                     "chisq_gt": gt, "p_gt": float(stats.chi2.sf(gt, 1)) if len(idx) == 1 else np.nan})
    u = np.concatenate([np.zeros(p), u2])
    glob = float(np.linalg.solve(imat, u) @ u)
    rows.append({"term": "GLOBAL", "df": p, "chisq": glob, "p": float(stats.chi2.sf(glob, p)),
                 "chisq_gt": gt_global, "p_gt": float(stats.chi2.sf(gt_global, p))})
    return pd.DataFrame(rows)


def scaled_schoenfeld(fit: CoxFit) -> pd.DataFrame:
    """Scaled Schoenfeld residuals (R ``cox.zph(fit)$y``): column ``time`` (months) + one per coefficient."""
    p, u2, imat, sres, g_rows, var, death_times = _zph_pieces(fit)
    resid = pd.DataFrame(sres @ var * sres.shape[0] + fit.coef, columns=list(fit.names))
    resid.insert(0, "time", np.asarray(death_times, dtype=float))
    return resid


def km_time_transform(fit: CoxFit, times=None) -> np.ndarray:
    """1 - KM(t-) of the fit's data at ``times`` (default: the event times of :func:`scaled_schoenfeld`'s
    rows): the time scale of ``cox.zph(fit, transform = "km")`` (its ``$x``, uncentred), on which the PH
    test and R ``plot.cox.zph`` put the scaled Schoenfeld residuals."""
    time, event = np.asarray(fit.time, float), np.asarray(fit.event)
    t_ev = np.unique(time[event == 1])
    at_risk = len(time) - np.searchsorted(np.sort(time), t_ev, side="left")
    d = np.bincount(np.searchsorted(t_ev, time[event == 1]), minlength=len(t_ev))
    surv = np.cumprod(1 - d / at_risk)
    if times is None:
        times = scaled_schoenfeld(fit)["time"].to_numpy(float)
    idx = np.searchsorted(t_ev, np.asarray(times, float), side="left")   # event times strictly < t
    return 1 - np.concatenate([[1.0], surv])[idx]


def schoenfeld_variance(fit: CoxFit) -> np.ndarray:
    """The coefficient variance used by the PH test (inverse information at the fitted coefficients),
    times the number of events: the variance of one scaled Schoenfeld residual, as the ±2 SE band of
    R ``plot.cox.zph`` uses it."""
    p, u2, imat, sres, g_rows, var, _ = _zph_pieces(fit)
    return var * sres.shape[0]


# ----------------------------------------------------------------------------- episode splitting
def tt_cut_times(time: np.ndarray, event: np.ndarray, max_rows: int = TT_MAX_ROWS) -> tuple[np.ndarray, bool]:
    """Split times for x log(t): every event time (exact, as R ``tt()``) if the split data have at
    most ``max_rows`` rows, else about 2 max_rows / n quantiles of the event times (at least 20).
    Returns (increasing cut times, exact)."""
    event_times = np.unique(time[event == 1])
    rows = int(np.searchsorted(event_times, time, side="left").sum()) + len(time)
    if rows <= max_rows:
        return event_times, True
    m = max(20, int(2 * max_rows / len(time)))
    return np.unique(np.quantile(event_times, np.linspace(0, 1, m + 1)[1:])), False


def split_at_cuts(time: np.ndarray, event: np.ndarray, cuts: np.ndarray):
    """Episode splitting (R ``survSplit``): subject i gets rows (a, b] at the cuts below its time and
    a last row ending at its time (event there). Returns (subject index, start, stop, event)."""
    below = np.searchsorted(cuts, time, side="left")           # cuts strictly below t_i
    n_rows = below + 1
    subject = np.repeat(np.arange(len(time)), n_rows)
    first = np.cumsum(n_rows) - n_rows
    j = np.arange(n_rows.sum()) - first[subject]                # row index within the subject
    last = j == below[subject]
    stop = np.where(last, time[subject], cuts[np.minimum(j, len(cuts) - 1)] if len(cuts) else 0.0)
    start = np.where(j == 0, 0.0, cuts[np.maximum(j - 1, 0)] if len(cuts) else 0.0)
    keep = stop > start                                          # follow-up 0: no row
    return subject[keep], start[keep], stop[keep], (last & (event[subject] == 1))[keep].astype(int)
