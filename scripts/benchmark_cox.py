"""Cox engine benchmark: helpers.stats.cox.fit_coxph vs lifelines CoxPHFitter vs R survival::coxph.

Simulated data (seed from analysis.yaml): n patients x 10 covariates (5 normal, 3 binary, 2 uniform),
exponential event times with true log hazard ratios in [-0.5, 0.5], uniform censoring on 0-40 months,
times rounded to 0.1 month so that events are tied (Efron ties matter). For each size the three fits run
on the same data; printed per size and fit: seconds (wall, one BLAS thread) and the largest absolute
difference of the coefficients from R's (from the engine's when R is absent).

R runs when ``Rscript`` is on PATH with the survival package (``coxph(..., ties = "efron")``, default
``coxph.control``, i.e. relative log-likelihood change < 1e-9; its time is measured inside R, reading the
CSV excluded). lifelines runs with tight convergence options (``precision=1e-12``) so that its
coefficients are comparable to R's.

Usage::

    python scripts/benchmark_cox.py [--sizes 10000,100000] [--large] [--no-lifelines] [--repeat 3]

``--large`` adds 1,000,000 patients.
"""
from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.config import load_plan
from helpers.stats.cox import fit_coxph

N_COVARIATES = 10

R_SCRIPT = r"""
suppressMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
f <- as.formula(paste("Surv(time, event) ~", paste(grep("^x", names(d), value = TRUE), collapse = " + ")))
best <- Inf
for (i in seq_len(as.integer(args[3]))) {
  t0 <- proc.time()[["elapsed"]]
  fit <- coxph(f, data = d, ties = "efron")
  best <- min(best, proc.time()[["elapsed"]] - t0)
}
writeLines(c(sprintf("%.10f", best), sprintf("%.17g", coef(fit))), args[2])
"""


def simulate(n: int, seed: int) -> pd.DataFrame:
    """n patients x 10 covariates, exponential times (months) with tied values, ~30% censored."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(size=(n, 5)), rng.integers(0, 2, size=(n, 3)), rng.uniform(0, 2, size=(n, 2))])
    beta = np.linspace(-0.5, 0.5, N_COVARIATES)
    event_time = rng.exponential(12.0 / np.exp(X @ beta))
    censor = rng.uniform(0, 40, size=n)
    time = np.round(np.maximum(np.minimum(event_time, censor), 0.05), 1)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(N_COVARIATES)])
    frame.insert(0, "event", (event_time <= censor).astype(int))
    frame.insert(0, "time", time)
    return frame


def best_of(repeat: int, fn):
    times, value = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return min(times), value


def run_engine(frame: pd.DataFrame, repeat: int):
    X = frame.filter(like="x").to_numpy()
    seconds, fit = best_of(repeat, lambda: fit_coxph(frame["time"], frame["event"], X))
    return seconds, np.asarray(fit.coef)


def run_lifelines(frame: pd.DataFrame, repeat: int):
    from lifelines import CoxPHFitter

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return CoxPHFitter().fit(frame, "time", "event",
                                     fit_options={"precision": 1e-12, "r_precision": 1e-14, "step_size": 0.95,
                                                  "max_steps": 200})
    seconds, model = best_of(repeat, fit)
    return seconds, model.params_.to_numpy()


def run_r(frame: pd.DataFrame, repeat: int):
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        data, out, script = Path(tmp, "d.csv"), Path(tmp, "out.txt"), Path(tmp, "fit.R")
        frame.to_csv(data, index=False, float_format="%.17g")
        script.write_text(R_SCRIPT)
        done = subprocess.run(["Rscript", str(script), str(data), str(out), str(repeat)], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"R failed: {done.stderr.strip()[:200]}", file=sys.stderr)
            return None
        lines = out.read_text().split()
    return float(lines[0]), np.array([float(v) for v in lines[1:]])


def time_validation() -> None:
    """Seconds of helpers.analyses.prognostic.validate_concordance (the plan's replicates, whole selection
    procedure) on the default data, printed to stderr."""
    from helpers.analyses import prognostic
    from helpers.data.load import load_study
    study = load_study()
    plan = load_plan(study.folder)
    choices = {**plan["prognostic"], "seed": plan["seed"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = prognostic.prepare(study, choices)
        t0 = time.perf_counter()
        res = prognostic.validate_concordance(data.patients, "os", data.candidates, choices["entry_p"],
                                              choices["entry_test"], choices["bootstrap_replicates"], choices["seed"])
    print(f"C-index validation: {time.perf_counter() - t0:.1f} s for {res.replicates} replicates, "
          f"{len(data.candidates)} candidates, {len(data.patients)} patients", file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--large", action="store_true", help="add 1,000,000 patients")
    parser.add_argument("--no-lifelines", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many fits per method")
    parser.add_argument("--validation", action="store_true",
                        help="also time the bootstrap C-index validation (whole selection) on the default data")
    args = parser.parse_args(argv)
    if args.validation:
        time_validation()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.large:
        sizes.append(1_000_000)
    seed = int(load_plan()["seed"])
    rows = []
    for n in sizes:
        frame = simulate(n, seed)
        engine_s, engine_coef = run_engine(frame, args.repeat)
        r = run_r(frame, args.repeat)
        reference = r[1] if r is not None else engine_coef
        ref_name = "R" if r is not None else "engine"
        rows.append({"n": n, "events": int(frame["event"].sum()), "method": "engine (fit_coxph)",
                     "seconds": engine_s, f"max |coef - {ref_name}|": float(np.max(np.abs(engine_coef - reference)))})
        if not args.no_lifelines:
            ll_s, ll_coef = run_lifelines(frame, args.repeat)
            rows.append({"n": n, "events": int(frame["event"].sum()), "method": "lifelines CoxPHFitter",
                         "seconds": ll_s, f"max |coef - {ref_name}|": float(np.max(np.abs(ll_coef - reference)))})
        if r is not None:
            rows.append({"n": n, "events": int(frame["event"].sum()), "method": "R survival::coxph",
                         "seconds": r[0], f"max |coef - {ref_name}|": 0.0})
        print(f"n = {n:,} done", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    engine_time = table[table["method"].str.startswith("engine")].set_index("n")["seconds"]
    table["x engine time"] = [s / engine_time[n] for n, s in zip(table["n"], table["seconds"])]
    with pd.option_context("display.width", 200, "display.float_format", lambda v: f"{v:.3g}"):
        print(f"Cox fits, {N_COVARIATES} covariates, Efron ties, one BLAS thread, best of {args.repeat}")
        print(table.to_string(index=False))
    print(json.dumps({"sizes": sizes, "seed": seed}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
