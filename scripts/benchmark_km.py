"""Kaplan-Meier + log-rank benchmark: helpers.stats.survival vs R survfit + survdiff vs lifelines.

Not a test: a report of issue 16's targets for the survival section's estimators (at least 5 times
faster than R at 10^5 and 10^6 patients; survival estimates and the log-rank chi-square equal to R's).
It exits 0 whether or not a target is met and says which are.

Simulated data (seed from analysis.yaml): n patients in two arms (1:1), exponential times with a hazard
ratio of 0.8, uniform censoring on 0-40 months, times in whole days converted to months (days / 30.4375),
so that times are tied as in real data. Per size, one "analysis" is what the survival section computes:

- ours: ``helpers.stats.survival.fit_km`` per arm (the curve every table, median and figure of the
  section is read from) and ``helpers.stats.survival.logrank_test`` on both arms;
- R: ``survfit(Surv(time, event) ~ arm)`` and ``survdiff(Surv(time, event) ~ arm)`` (survival package,
  when ``Rscript`` is present), timed inside R (data passed as raw doubles, reading excluded);
- lifelines: ``KaplanMeierFitter().fit`` per arm and ``logrank_test``.

Printed: seconds (best of ``--repeat``; one run from 10^6 on), time ratios, the largest absolute
difference of S(t) and of its standard error (Greenwood, of log S) from R's at every distinct time of
each arm, and the relative difference of the chi-square from R's. Tolerances: 1e-12 for S(t) and its
standard error, 1e-9 relative for the chi-square.

Usage::

    python scripts/benchmark_km.py [--sizes 10000,100000,1000000] [--repeat 5] [--no-r] [--no-lifelines]
"""
from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.benchmarking import add_comparison_arguments, best_of, r_available, sizes_of, speed_line, verdict
from helpers.config import load_plan
from helpers.stats.survival import fit_km, logrank_test

DEFAULT_SIZES = "10000,100000,1000000"
LARGE = 1_000_000
SPEED_TARGET = 5.0
SPEED_SIZES = (100_000, 1_000_000)
SURV_TOLERANCE = 1e-12          # |S(t) - R|, |se - R|
CHISQ_TOLERANCE = 1e-9          # relative
TARGETS = 4                     # speed at 10^5, speed at 10^6, S(t), chi-square


def summary(checked: int, missed: int, targets: int) -> str:
    """The closing line: how many targets were checked and met (the script always exits 0)."""
    unchecked = f"; {targets - checked} not checked (see n/a above)" if checked < targets else ""
    if missed:
        return f"{missed} of {checked} target(s) checked NOT met{unchecked} (this script is a report: exit 0)."
    return f"All {checked} target(s) checked met{unchecked}." if checked else f"No target checked{unchecked}."
DAYS_PER_MONTH = 30.4375

R_SCRIPT = r"""
suppressMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
n <- as.integer(args[2])
con <- file(args[1], "rb"); m <- readBin(con, "double", n = 3 * n); close(con)
d <- data.frame(time = m[1:n], event = m[(n + 1):(2 * n)], arm = m[(2 * n + 1):(3 * n)])
best <- Inf
for (i in seq_len(as.integer(args[4]))) {
  t0 <- proc.time()[["elapsed"]]
  km <- survfit(Surv(time, event) ~ arm, data = d)
  lr <- survdiff(Surv(time, event) ~ arm, data = d)
  best <- min(best, proc.time()[["elapsed"]] - t0)
}
arm <- rep(as.integer(sub("arm=", "", names(km$strata))), km$strata)
write.table(data.frame(arm = arm, time = km$time, surv = km$surv, std_err = km$std.err),
            args[3], sep = ",", row.names = FALSE, quote = FALSE)
writeLines(c(sprintf("%.10f", best), sprintf("%.17g", lr$chisq)), paste0(args[3], ".txt"))
"""


def simulate(n: int, seed: int) -> pd.DataFrame:
    """Two arms 1:1, exponential times (HR 0.8), uniform censoring on 0-40 months, whole days."""
    rng = np.random.default_rng(seed)
    arm = rng.integers(0, 2, size=n)
    event_time = rng.exponential(12.0 / np.where(arm == 1, 0.8, 1.0))
    censor = rng.uniform(0, 40, size=n)
    days = np.maximum(np.round(np.minimum(event_time, censor) * DAYS_PER_MONTH), 1)
    return pd.DataFrame({"time": days / DAYS_PER_MONTH, "event": (event_time <= censor).astype(int), "arm": arm})




def run_ours(frame: pd.DataFrame, repeat: int):
    t, e, arm = frame["time"].to_numpy(), frame["event"].to_numpy(), frame["arm"].to_numpy()

    def analysis():
        curves = {a: fit_km(t[arm == a], e[arm == a]) for a in (0, 1)}
        return curves, logrank_test(t, e, arm)["chisq"]
    seconds, (curves, chisq) = best_of(repeat, analysis)
    return seconds, curves, chisq


def run_lifelines(frame: pd.DataFrame, repeat: int):
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import logrank_test as ll_logrank

    t, e, arm = frame["time"].to_numpy(), frame["event"].to_numpy(), frame["arm"].to_numpy()

    def analysis():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits = {a: KaplanMeierFitter().fit(t[arm == a], e[arm == a]) for a in (0, 1)}
            res = ll_logrank(t[arm == 0], t[arm == 1], e[arm == 0], e[arm == 1])
        return fits, res.test_statistic
    seconds, (fits, chisq) = best_of(repeat, analysis)
    curves = {a: pd.DataFrame({"time": f.survival_function_.index.to_numpy(float),
                               "surv": f.survival_function_.iloc[:, 0].to_numpy(float)}) for a, f in fits.items()}
    return seconds, curves, float(chisq)




def run_r(frame: pd.DataFrame, repeat: int):
    with tempfile.TemporaryDirectory() as tmp:
        data, out, script = Path(tmp, "d.bin"), Path(tmp, "km.csv"), Path(tmp, "km.R")
        frame[["time", "event", "arm"]].to_numpy(dtype="<f8").ravel(order="F").tofile(data)
        script.write_text(R_SCRIPT)
        done = subprocess.run(["Rscript", str(script), str(data), str(len(frame)), str(out), str(repeat)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            print(f"R failed: {done.stderr.strip()[:300]}", file=sys.stderr)
            return None
        curves = pd.read_csv(out, float_precision="round_trip")
        seconds, chisq = (float(v) for v in Path(f"{out}.txt").read_text().split())
    return seconds, {a: c.reset_index(drop=True) for a, c in curves.groupby("arm")}, chisq


def curve_difference(ours: dict, reference: dict, columns=("surv", "std_err")) -> float:
    """Largest |ours - reference| over both arms, every distinct time of the reference, ``columns``.
    The reference's times must be ours (R's survfit and fit_km report every distinct time)."""
    worst = 0.0
    for arm, ref in reference.items():
        mine = ours[arm].set_index("time")
        ref = ref.set_index("time")
        if len(ref) and ref.index[0] == 0 and 0 not in mine.index:      # lifelines starts at time 0
            ref = ref.iloc[1:]
        if len(mine) != len(ref) or not np.allclose(mine.index, ref.index, rtol=0, atol=1e-12):
            return np.inf
        for column in columns:
            if column in ref:
                a, b = mine[column].to_numpy(float), ref[column].to_numpy(float)
                both = np.isfinite(a) & np.isfinite(b)
                if (np.isfinite(a) != np.isfinite(b)).any():
                    return np.inf
                if both.any():
                    worst = max(worst, float(np.max(np.abs(a[both] - b[both]))))
    return worst




def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_comparison_arguments(parser, DEFAULT_SIZES, LARGE, "best of this many analyses", 2)
    args = parser.parse_args(argv)
    sizes = sizes_of(args.sizes)
    seed = int(load_plan()["seed"])
    with_r = not args.no_r and r_available()
    rows = []
    for n in sizes:
        frame = simulate(n, seed)
        repeat = args.repeat if n < LARGE else args.repeat_large
        ours_s, ours_curves, ours_chisq = run_ours(frame, repeat)
        row = {"n": n, "events": int(frame["event"].sum()), "ours_s": ours_s, "ours_chisq": ours_chisq,
               "r_s": None, "lifelines_s": None}
        if with_r:
            r = run_r(frame, repeat)
            if r is not None:
                row["r_s"], r_curves, row["r_chisq"] = r
                row["surv_diff"] = curve_difference(ours_curves, r_curves)
                row["chisq_rel"] = abs(ours_chisq - row["r_chisq"]) / abs(row["r_chisq"])
        if not args.no_lifelines:
            row["lifelines_s"], ll_curves, row["lifelines_chisq"] = run_lifelines(frame, repeat)
            row["lifelines_surv_diff"] = curve_difference(ours_curves, ll_curves, ("surv",))
        rows.append(row)
        print(f"n = {n:,} done", file=sys.stderr, flush=True)

    print(f"Kaplan-Meier per arm + log-rank test, two arms; seconds = best of {args.repeat} "
          f"({args.repeat_large} from {LARGE:,} patients)")
    for row in rows:
        print(speed_line(f"n = {row['n']:>9,} ({row['events']:,} events)", ("ours", row["ours_s"]),
                         [("R", row["r_s"]), ("lifelines", row["lifelines_s"])], digits=4))
        checks = []
        if row["r_s"] is not None:
            checks.append(f"max |S(t), se - R| {row['surv_diff']:.2g}; chi-square {row['ours_chisq']:.6f} "
                          f"vs R {row['r_chisq']:.6f} (relative difference {row['chisq_rel']:.2g})")
        if row["lifelines_s"] is not None:
            checks.append(f"max |S(t) - lifelines| {row['lifelines_surv_diff']:.2g}, "
                          f"chi-square lifelines {row['lifelines_chisq']:.6f}")
        if checks:
            print("              " + "; ".join(checks))
    print()
    missed = checked = 0
    for target_n in SPEED_SIZES:
        row = next((r for r in rows if r["n"] == target_n), None)
        if row is None or row["r_s"] is None:
            print(f"n/a : ours >= {SPEED_TARGET:g}x faster than R at {target_n:,} "
                  f"({'not run' if row is None else 'R not available'})")
            continue
        ratio = row["r_s"] / row["ours_s"]
        missed, checked = missed + (ratio < SPEED_TARGET), checked + 1
        print(f"{verdict(ratio >= SPEED_TARGET)}: ours >= {SPEED_TARGET:g}x faster than R at {target_n:,} "
              f"(R {row['r_s']:.4f} s / ours {row['ours_s']:.4f} s = {ratio:.1f}x)")
    compared = [r for r in rows if r["r_s"] is not None]
    if compared:
        surv = max(r["surv_diff"] for r in compared)
        chisq = max(r["chisq_rel"] for r in compared)
        missed += (surv > SURV_TOLERANCE) + (chisq > CHISQ_TOLERANCE)
        checked += 2
        print(f"{verdict(surv <= SURV_TOLERANCE)}: S(t) and its standard error within {SURV_TOLERANCE:g} of R's "
              f"survfit at every time (largest {surv:.2g})")
        print(f"{verdict(chisq <= CHISQ_TOLERANCE)}: log-rank chi-square within {CHISQ_TOLERANCE:g} (relative) "
              f"of R's survdiff (largest {chisq:.2g})")
    else:
        print("n/a : estimates equal to R's (R not available)")
    print(summary(checked, missed, TARGETS))
    print(json.dumps({"sizes": sizes, "seed": seed, "r": with_r}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
