"""Immortal-time bias of cycle counts: landmark analysis and a time-varying Cox model.

"Number of cycles received" is known only at the end of treatment: a patient who dies at two months
cannot have received eight three-weekly cycles. Entered as a baseline covariate, the count gives
the long-lived patients the credit of the time they had to survive to receive their cycles
(immortal time; Anderson, Cain and Gelber, J Clin Oncol 1983;1:710-719; Suissa 2008).
Two valid alternatives are computed here:

- Landmark analysis: patients still alive (OS) or alive and progression-free (PFS) at the landmark
  L months; cycles counted up to and including month L; follow-up restarts at L.
- Time-varying Cox model: the cumulative number of cycles is a step function of time that steps
  up at each cycle date (counting-process data, one row per interval (start, stop]); fitted with
  lifelines ``CoxTimeVaryingFitter`` (Efron ties), as R
  ``coxph(Surv(tstart, tstop, event) ~ chemo_cum + ici_cum + ..., ties = "efron")``.

Times in months from the start of first-line treatment.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from helpers.cox import (CoxWarning, ENDPOINTS, FIT_OPTIONS, POST_BASELINE, VARIABLE_LABELS,
                         build_design, code_cycles, fit_cox)

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
    measured from the landmark. Returns the fitted :class:`helpers.cox.CoxFit`.
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
    agents = {column: (cycles["agent_class"].astype(str) == agent).to_numpy()
              for agent, column in CYCLE_COLUMNS.items()}
    cyc_month = cycles["cycle_month"].to_numpy(float)
    cyc_pid = cycles["patient_id"].to_numpy()
    pids = patients.loc[base.index, "patient_id"].to_numpy()
    T_all = patients.loc[base.index, time_col].to_numpy(float)
    E_all = patients.loc[base.index, event_col].to_numpy(int)
    pieces = []
    for k, (pid, T, E) in enumerate(zip(pids, T_all, E_all)):
        own = cyc_pid == pid
        months = cyc_month[own]
        cuts = np.unique(np.concatenate([[0.0], months]))
        cuts = np.concatenate([cuts[cuts < T], [T]])
        start, stop = cuts[:-1], cuts[1:]
        rec = {"id": np.repeat(pid, len(start)), "start": start, "stop": stop,
               "event": ((stop == T) & bool(E)).astype(int), "_row": np.repeat(k, len(start))}
        for column, is_agent in agents.items():   # cycles given at or before each start
            given = np.sort(months[is_agent[own]])
            rec[column] = np.searchsorted(given, start, side="right")
        pieces.append(pd.DataFrame(rec))
    long = pd.concat(pieces, ignore_index=True)
    covs = base.to_numpy(dtype=float)[long.pop("_row").to_numpy()]
    for j, column in enumerate(base.columns):
        long[column] = covs[:, j]
    if cycles_coding == "categories":
        coded = code_cycles(long, "categories")
        for c in CYCLE_COLUMNS.values():
            levels = coded[c].cat.categories
            long[c] = (coded[c] == levels[1]).astype(float)
    keep = ["id", "start", "stop", "event", *cyc_vars, *base.columns]
    return long[keep]


def fit_time_varying(patients: pd.DataFrame, cycles: pd.DataFrame, endpoint: str,
                     covariates: list[str], cycles_coding: str = "per_cycle") -> pd.DataFrame:
    """Time-varying Cox model with cumulative cycle counts (lifelines CoxTimeVaryingFitter).

    Returns one row per coefficient: term, coef, se, hr, lower, upper (Wald 95% CI), p (Wald);
    ``attrs``: n (patients), events, intervals, loglik.
    """
    from lifelines import CoxTimeVaryingFitter
    long = build_cycles_long(patients, cycles, endpoint, covariates, cycles_coding)
    ctv = CoxTimeVaryingFitter()
    ctv.fit(long, id_col="id", event_col="event", start_col="start", stop_col="stop",
            fit_options=FIT_OPTIONS)
    s = ctv.summary
    out = pd.DataFrame({"term": s.index, "coef": s["coef"].to_numpy(), "se": s["se(coef)"].to_numpy(),
                        "hr": s["exp(coef)"].to_numpy(), "lower": s["exp(coef) lower 95%"].to_numpy(),
                        "upper": s["exp(coef) upper 95%"].to_numpy(), "p": s["p"].to_numpy()})
    out.attrs.update(n=int(long["id"].nunique()), events=int(long["event"].sum()),
                     intervals=int(len(long)), loglik=float(ctv.log_likelihood_))
    return out


def compare_immortal_time(patients: pd.DataFrame, cycles: pd.DataFrame, endpoint: str,
                          covariates: list[str], landmark: float = 3.0,
                          cycles_coding: str = "per_cycle") -> pd.DataFrame:
    """HRs of the cycle terms three ways, all adjusted for the same other ``covariates``.

    approach: "Baseline count (paper)" (counts over the whole treatment as baseline covariates:
    biased), "Landmark at L months" and "Time-varying cumulative count".
    Columns: approach, term, label, hr, lower, upper, p, n, events.
    """
    cyc = [c for c in covariates if c in POST_BASELINE]
    if not cyc:
        raise ValueError("no cycle-count covariate in the model: nothing to compare")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CoxWarning)
        paper = fit_cox(build_design(code_cycles(patients, cycles_coding), endpoint, covariates))
    rows = _term_rows(paper, cyc, "Baseline count (paper-style)")
    lm = fit_landmark(patients, cycles, endpoint, covariates, landmark, cycles_coding)
    rows += _term_rows(lm, cyc, f"Landmark at {landmark:g} months")
    tv = fit_time_varying(patients, cycles, endpoint, covariates, cycles_coding)
    for var in cyc:
        r = tv[tv["term"] == var].iloc[0]
        rows.append({"approach": "Time-varying cumulative count", "term": var,
                     "label": VARIABLE_LABELS.get(var, var), "hr": r["hr"], "lower": r["lower"],
                     "upper": r["upper"], "p": r["p"], "n": tv.attrs["n"], "events": tv.attrs["events"]})
    out = pd.DataFrame(rows)
    for var in cyc:   # label the term in the same words across approaches
        out.loc[out["term"].str.startswith(var), "label"] = VARIABLE_LABELS.get(var, var)
    return out


def make_immortal_time_table(comparison: pd.DataFrame, cycles_coding: str = "per_cycle") -> pd.DataFrame:
    """Display table of :func:`compare_immortal_time`."""
    from helpers.formatting import format_ci, format_number, format_p
    unit = "per cycle" if cycles_coding == "per_cycle" else ">= cutpoint vs fewer"
    return pd.DataFrame({
        "Covariate": [f"{l} ({unit})" for l in comparison["label"]],
        "Approach": comparison["approach"],
        "Patients": comparison["n"], "Events": comparison["events"],
        "HR (95% CI)": [f"{format_number(h, 2)} ({format_ci(a, b, 2)})"
                        for h, a, b in comparison[["hr", "lower", "upper"]].to_numpy()],
        "P (Wald)": [format_p(p) for p in comparison["p"]],
    }).sort_values(["Covariate"], kind="stable").reset_index(drop=True)
