"""Immortal-time bias of cycle counts: landmark analysis and a time-varying Cox model.

"Number of cycles received" is known only at the end of treatment: a patient who dies at two months
cannot have received eight three-weekly cycles. Entered as a baseline covariate, the count gives
the long-lived patients the credit of the time they had to survive to receive their cycles
(immortal time; Anderson, Cain and Gelber, J Clin Oncol 1983;1:710-719; Suissa 2008).
Two valid alternatives are computed here:

- Landmark analysis: patients still alive (OS) or alive and progression-free (PFS) at the landmark
  L months; cycles counted up to and including month L; follow-up restarts at L.
- Time-varying Cox model: the cumulative number of cycles is a step function of time that steps
  up at each cycle date (counting-process data, one row per interval (start, stop]); fitted by
  Newton-Raphson on the counting-process Efron partial likelihood (:mod:`helpers.stats.firth`), as R
  ``coxph(Surv(tstart, tstop, event) ~ chemo_cum + ici_cum + ..., ties = "efron")``.

Times in months from the start of first-line treatment.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from helpers.stats.cox import (ENDPOINTS, POST_BASELINE, SEPARATION_COEF, VARIABLE_LABELS, CoxModelError,
                         CoxWarning, SeparationWarning, _newton_cox, build_design, code_cycles,
                         fit_cox)

#: Agent class in the cycles table -> cycle-count column of the patient table.
CYCLE_COLUMNS = {"chemotherapy": "chemo_cycles", "ICI": "ici_cycles"}


def count_cycles_until(patients: pd.DataFrame, cycles: pd.DataFrame, months: float) -> pd.DataFrame:
    """Copy of ``patients`` with chemo_cycles / ici_cycles counted over cycle_month <= ``months``."""
    out = patients.copy()
    early = cycles[cycles["cycle_month"] <= months]
    for agent, column in CYCLE_COLUMNS.items():
        counts = early[early["agent_class"].astype(str) == agent].groupby("patient_id").size()
        out[column] = out["patient_id"].map(counts).fillna(0).astype(int)
    return out


def _term_rows(fit, terms, approach):
    z = stats.norm.ppf(0.975)
    rows = []
    for var in terms:
        for col in fit.design.terms.get(var, []):
            b, s = fit.coef[col], fit.se[col]
            rows.append({"approach": approach, "term": col,
                         "label": VARIABLE_LABELS.get(var, var) + (col[len(var):] if col != var else ""),
                         "hr": np.exp(b), "lower": np.exp(b - z * s), "upper": np.exp(b + z * s),
                         "p": 2 * stats.norm.sf(abs(b / s)), "n": fit.design.n,
                         "events": fit.design.events})
    return rows


def fit_landmark(patients: pd.DataFrame, cycles: pd.DataFrame, endpoint: str, covariates: list[str],
                 landmark: float = 3.0, cycles_coding: str = "per_cycle"):
    """Landmark Cox model at ``landmark`` months.

    At risk at the landmark: endpoint time > landmark (OS: alive and in follow-up; PFS: alive,
    progression-free and in follow-up). Cycles counted with cycle_month <= landmark; time is
    measured from the landmark. Returns the fitted :class:`helpers.stats.cox.CoxFit`.
    """
    time_col, event_col, _ = ENDPOINTS[endpoint]
    at_risk = patients[patients[time_col] > landmark]
    data = count_cycles_until(at_risk, cycles, landmark)
    data = code_cycles(data, cycles_coding)
    data[time_col] = data[time_col] - landmark
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CoxWarning)
        return fit_cox(build_design(data, endpoint, covariates))


def build_cycles_long(patients: pd.DataFrame, cycles: pd.DataFrame, endpoint: str,
                      covariates: list[str], cycles_coding: str = "per_cycle") -> pd.DataFrame:
    """Counting-process data: one row per patient and interval (start, stop] in months.

    Intervals break at each cycle date before the end of follow-up; on (start, stop] the cumulative
    counts include every cycle given at or before ``start`` (a cycle on day 0 counts from day 0).
    Baseline covariates (those not in POST_BASELINE) are dummy-coded as in the Cox models.
    Columns: id, start, stop, event, the cycle columns, then the baseline model-matrix columns.
    Whole-array construction (sort and cumulative counts), O(rows log rows).
    """
    time_col, event_col, _ = ENDPOINTS[endpoint]
    baseline = [c for c in covariates if c not in POST_BASELINE]
    cyc_vars = [c for c in covariates if c in POST_BASELINE]
    if baseline:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CoxWarning)
            design = build_design(patients, endpoint, baseline)
        base = design.X
    else:
        base = pd.DataFrame(index=patients.index[patients[[time_col, event_col]].notna().all(axis=1)])
    pids = patients.loc[base.index, "patient_id"].to_numpy()
    T_all = patients.loc[base.index, time_col].to_numpy(float)
    E_all = patients.loc[base.index, event_col].to_numpy(int)
    n = len(pids)
    # each analysed patient's cycles, as (row k of the patient, month, agent); the others dropped
    row_of = pd.Series(np.arange(n), index=pd.Index(pids))
    k_cyc = pd.Series(cycles["patient_id"].to_numpy()).map(row_of).to_numpy()
    known = ~pd.isna(k_cyc)
    k_cyc = k_cyc[known].astype(np.int64)
    month = cycles["cycle_month"].to_numpy(float)[known]
    agent = cycles["agent_class"].astype(str).to_numpy()[known]
    # candidate cut points: 0 for every patient, then each cycle month before the end of follow-up
    before_end = month < T_all[k_cyc]
    cut_k = np.concatenate([np.arange(n), k_cyc[before_end]])
    cut_m = np.concatenate([np.zeros(n), month[before_end]])
    order = np.lexsort((cut_m, cut_k))
    cut_k, cut_m = cut_k[order], cut_m[order]
    first = np.ones(len(cut_k), dtype=bool)           # unique (patient, month)
    first[1:] = (cut_k[1:] != cut_k[:-1]) | (cut_m[1:] != cut_m[:-1])
    cut_k, start = cut_k[first], cut_m[first]
    # an interval's stop is the patient's next cut, or the end of follow-up after the last cut
    last = np.ones(len(cut_k), dtype=bool)
    last[:-1] = cut_k[1:] != cut_k[:-1]
    stop = np.empty(len(start))
    stop[:-1] = start[1:]
    stop[last] = T_all[cut_k[last]]
    keep_row = start < stop                            # T = 0 (no follow-up): no interval
    cut_k, start, stop, last = cut_k[keep_row], start[keep_row], stop[keep_row], last[keep_row]
    long = pd.DataFrame({"id": pids[cut_k], "start": start, "stop": stop,
                         "event": (last & (E_all[cut_k] == 1)).astype(int)})
    for agent_name, column in CYCLE_COLUMNS.items():   # cycles given at or before each start
        long[column] = _count_at_or_before(k_cyc[agent == agent_name], month[agent == agent_name],
                                           cut_k, start, n)
    covs = base.to_numpy(dtype=float)[cut_k]
    for j, column in enumerate(base.columns):
        long[column] = covs[:, j]
    if cycles_coding == "categories":
        coded = code_cycles(long, "categories")
        for c in CYCLE_COLUMNS.values():
            levels = coded[c].cat.categories
            long[c] = (coded[c] == levels[1]).astype(float)
    keep = ["id", "start", "stop", "event", *cyc_vars, *base.columns]
    return long[keep]


def _count_at_or_before(event_k, event_month, query_k, query_month, n) -> np.ndarray:
    """For each query (patient row k, month m): the number of events of patient k with month <= m.

    One stable sort of events and queries together by (patient, month, events before queries),
    then a running count of events, less the events of the patients sorted before k. Exact: no
    float keys.
    """
    k = np.concatenate([event_k, query_k])
    m = np.concatenate([event_month, query_month])
    is_query = np.concatenate([np.zeros(len(event_k), dtype=bool), np.ones(len(query_k), dtype=bool)])
    order = np.lexsort((is_query, m, k))
    running = np.cumsum(~is_query[order])             # events up to and including each position
    before_patient = np.concatenate([[0], np.cumsum(np.bincount(event_k, minlength=n))])
    counts = np.empty(len(k), dtype=np.int64)
    counts[order] = running - before_patient[k[order]]
    return counts[len(event_k):]


def fit_time_varying(patients: pd.DataFrame, cycles: pd.DataFrame, endpoint: str,
                     covariates: list[str], cycles_coding: str = "per_cycle",
                     start: pd.Series | None = None) -> pd.DataFrame:
    """Time-varying Cox model with cumulative cycle counts, Efron ties.

    The counting-process partial likelihood (risk set of t: rows with start < t <= stop) maximised
    by the same Newton-Raphson as the other Cox models; R
    ``coxph(Surv(start, stop, event) ~ ..., ties = "efron")`` (tests compare with it).
    Returns one row per coefficient: term, coef, se, hr, lower, upper (Wald 95% CI), p (Wald),
    note ("not estimable (monotone likelihood)" when |coef| > 10, with NaN HR, CI and P, and a
    SeparationWarning); ``attrs``: n (patients), events, intervals, loglik. ``start``: coefficients by
    term to start Newton-Raphson from (a warm start, e.g. the baseline-count model's; same maximum).
    """
    long = build_cycles_long(patients, cycles, endpoint, covariates, cycles_coding)
    terms = [c for c in long.columns if c not in ("id", "start", "stop", "event")]
    X = long[terms].to_numpy(dtype=float)
    stop, entry, event = (long[c].to_numpy() for c in ("stop", "start", "event"))
    if event.sum() == 0:
        raise CoxModelError("no events in the counting-process data: no time-varying Cox model")
    initial = None
    if start is not None and set(terms) <= set(start.index) and np.all(np.isfinite(start[terms])):
        initial = start[terms].to_numpy(dtype=float)
    beta, pl, converged = _newton_cox(X, stop.astype(float), event.astype(int), entry=entry.astype(float),
                                      start=initial)
    separated = [t for t, b in zip(terms, beta) if abs(b) > SEPARATION_COEF]
    if not converged and not separated:
        raise CoxModelError("the time-varying Cox model did not converge in 60 Newton-Raphson "
                            "iterations; check for separation or collinearity")
    se = np.sqrt(np.abs(np.diag(np.linalg.pinv(pl.information))))
    z = stats.norm.ppf(0.975)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = pd.DataFrame({"term": terms, "coef": beta, "se": se, "hr": np.exp(beta),
                            "lower": np.exp(beta - z * se), "upper": np.exp(beta + z * se),
                            "p": 2 * stats.norm.sf(np.abs(beta / se)), "note": ""})
    if separated:   # monotone likelihood: the HR is infinite or zero, never a huge number
        gone = out["term"].isin(separated)
        out.loc[gone, ["se", "hr", "lower", "upper", "p"]] = np.nan
        out.loc[gone, "note"] = "not estimable (monotone likelihood)"
        warnings.warn(f"time-varying Cox model: monotone likelihood for {separated}; their HRs are "
                      "reported as not estimable", SeparationWarning, stacklevel=2)
    out.attrs.update(n=int(long["id"].nunique()), events=int(event.sum()),
                     intervals=int(len(long)), loglik=float(pl.loglik))
    return out


def compare_immortal_time(patients: pd.DataFrame, cycles: pd.DataFrame, endpoint: str,
                          covariates: list[str], landmark: float = 3.0,
                          cycles_coding: str = "per_cycle") -> pd.DataFrame:
    """HRs of the cycle terms three ways, all adjusted for the same other ``covariates``.

    Without a cycle count among ``covariates`` both counts are added (the comparison is about them).

    approach: "Baseline count (paper)" (counts over the whole treatment as baseline covariates:
    biased), "Landmark at L months" and "Time-varying cumulative count".
    Columns: approach, term, label, hr, lower, upper, p, n, events.
    ``attrs["time_varying"]``: the whole :func:`fit_time_varying` table (every term).
    """
    cyc = [c for c in covariates if c in POST_BASELINE]
    if not cyc:   # the model left the counts out: the comparison is about them, so add both
        cyc = list(POST_BASELINE)
        covariates = [*covariates, *cyc]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CoxWarning)
        paper = fit_cox(build_design(code_cycles(patients, cycles_coding), endpoint, covariates))
    rows = _term_rows(paper, cyc, "Baseline count (paper-style)")
    lm = fit_landmark(patients, cycles, endpoint, covariates, landmark, cycles_coding)
    rows += _term_rows(lm, cyc, f"Landmark at {landmark:g} months")
    # warm start at the baseline-count model: same columns, nearby coefficients
    tv = fit_time_varying(patients, cycles, endpoint, covariates, cycles_coding, start=paper.coef)
    for var in cyc:
        r = tv[tv["term"] == var].iloc[0]
        rows.append({"approach": "Time-varying cumulative count", "term": var,
                     "label": VARIABLE_LABELS.get(var, var), "hr": r["hr"], "lower": r["lower"],
                     "upper": r["upper"], "p": r["p"], "n": tv.attrs["n"], "events": tv.attrs["events"]})
    out = pd.DataFrame(rows)
    for var in cyc:   # label the term in the same words across approaches
        out.loc[out["term"].str.startswith(var), "label"] = VARIABLE_LABELS.get(var, var)
    out.attrs["time_varying"] = tv     # the whole time-varying model, for results.json (no refit)
    return out


def make_immortal_time_table(comparison: pd.DataFrame, cycles_coding: str = "per_cycle") -> pd.DataFrame:
    """Display table of :func:`compare_immortal_time`."""
    from helpers.report.formatting import format_ci, format_number, format_p
    unit = "per cycle" if cycles_coding == "per_cycle" else ">= cutpoint vs fewer"
    return pd.DataFrame({
        "Covariate": [f"{l} ({unit})" for l in comparison["label"]],
        "Approach": comparison["approach"],
        "Patients": comparison["n"], "Events": comparison["events"],
        "HR (95% CI)": [f"{format_number(h, 2)} ({format_ci(a, b, 2)})" if np.isfinite(h)
                        else "not estimable (monotone likelihood)"
                        for h, a, b in comparison[["hr", "lower", "upper"]].to_numpy(dtype=float)],
        "P (Wald)": [format_p(p) if np.isfinite(p) else "—" for p in comparison["p"].to_numpy(dtype=float)],
    }).sort_values(["Covariate"], kind="stable").reset_index(drop=True)
