"""Counting-process data for time-varying counts (cumulative exposures that step up at event dates).

"Number of cycles received" is known only at the end of treatment: a patient who dies at two months
cannot have received eight three-weekly cycles. Entered as a baseline covariate, such a count gives the
long-lived patients the credit of the time they had to survive to receive it (immortal time; Anderson,
Cain and Gelber, J Clin Oncol 1983;1:710-719; Suissa 2008). The valid alternative is a time-varying
covariate: the cumulative count is a step function of time, one row per interval (start, stop], fitted
by :func:`helpers.stats.cox.fit_coxph` with ``entry=start`` (R ``coxph(Surv(start, stop, event) ~ ...)``).

This module builds those intervals from arrays (whole-array code, O(rows log rows)); the patient table
and the model matrix are handled in :mod:`helpers.analyses.prognostic`. Times in months.
"""
from __future__ import annotations

import numpy as np


def counting_process_intervals(end: np.ndarray, event: np.ndarray, dose_row: np.ndarray,
                               dose_month: np.ndarray, dose_group: np.ndarray | None = None,
                               groups: int = 0):
    """Intervals (start, stop] per subject, cut at each dose date before the end of follow-up.

    Parameters
    ----------
    end, event : arrays (n,) follow-up in months and 1 = event at ``end``.
    dose_row, dose_month : arrays (k,) subject index and month of each dose (any agent).
    dose_group, groups : optional array (k,) of group codes 0..groups-1 (e.g. the agent of each dose).

    Returns
    -------
    (row, start, stop, event): the subject index of each interval, its limits and 1 when the subject's
    event ends it. A subject without follow-up (end 0) has no interval. With ``dose_group``, a fifth
    array (intervals x groups): the subject's doses of each group given at or before the interval's
    start (as :func:`count_at_or_before`; a dose at or after the end of follow-up is never at or before
    a start, and every earlier dose is itself a cut, so the counts are running sums over the sorted cuts).
    """
    n = len(end)
    before_end = dose_month < end[dose_row]
    cut_k = np.concatenate([np.arange(n), dose_row[before_end]])
    cut_m = np.concatenate([np.zeros(n), dose_month[before_end]])
    order = np.lexsort((cut_m, cut_k))
    cut_k, cut_m = cut_k[order], cut_m[order]
    first = np.ones(len(cut_k), dtype=bool)           # unique (subject, month)
    first[1:] = (cut_k[1:] != cut_k[:-1]) | (cut_m[1:] != cut_m[:-1])
    counts = None
    if dose_group is not None:
        # per sorted cut, the subject's doses of each group so far; read at the last cut of each
        # (subject, month), less the doses of the subjects sorted before
        code = np.concatenate([np.full(n, -1), np.asarray(dose_group)[before_end]])[order]
        last_of_month = np.append(first[1:], True)[:len(first)]      # (no cut at all: no subject)
        new_subject = np.append(True, cut_k[1:] != cut_k[:-1])[:len(cut_k)]
        subject_start = np.flatnonzero(new_subject)[np.cumsum(new_subject) - 1][last_of_month]
        counts = np.empty((int(first.sum()), groups), dtype=np.int64)
        for g in range(groups):
            mine = code == g
            running = np.cumsum(mine)
            # doses so far, less those of the subjects sorted before (the running count before the
            # subject's first cut)
            counts[:, g] = running[last_of_month] - (running - mine)[subject_start]
    cut_k, start = cut_k[first], cut_m[first]
    last = np.ones(len(cut_k), dtype=bool)             # an interval stops at the next cut or the end
    last[:-1] = cut_k[1:] != cut_k[:-1]
    stop = np.empty(len(start))
    stop[:-1] = start[1:]
    stop[last] = end[cut_k[last]]
    keep = start < stop
    cut_k, start, stop, last = cut_k[keep], start[keep], stop[keep], last[keep]
    out = (cut_k, start, stop, (last & (event[cut_k] == 1)).astype(int))
    return out if counts is None else (*out, counts[keep])


def count_at_or_before(event_k, event_month, query_k, query_month, n) -> np.ndarray:
    """For each query (subject k, month m): the number of doses of subject k with month <= m.

    One stable sort of doses and queries together by (subject, month, doses before queries), then a
    running count of doses, less the doses of the subjects sorted before k. Exact: no float keys.
    """
    k = np.concatenate([event_k, query_k])
    m = np.concatenate([event_month, query_month])
    is_query = np.concatenate([np.zeros(len(event_k), dtype=bool), np.ones(len(query_k), dtype=bool)])
    order = np.lexsort((is_query, m, k))
    running = np.cumsum(~is_query[order])
    before_patient = np.concatenate([[0], np.cumsum(np.bincount(event_k, minlength=n))])
    counts = np.empty(len(k), dtype=np.int64)
    counts[order] = running - before_patient[k[order]]
    return counts[len(event_k):]
