"""Benchmark of the propensity-score bootstrap (issue 7): 1,000 replicates of the whole pipeline.

Not a test: prints the wall-clock time of ``helpers.stats.propensity.bootstrap_weighted_hr`` on the default
study (common support, logistic PS, IPTW and overlap weights, weighted Cox for OS and PFS per replicate)
with 1 and 2 worker processes, checks that both give identical replicates, and compares with the
target (<= 30 s for 1,000 replicates on 2 cores).

Usage: python scripts/benchmark_bootstrap.py [--n-boot 1000] [--jobs 2] [--data data]
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

from helpers.config import SEED, data_dir
from helpers.data.load import load_study
from helpers.stats.propensity import PropensityCaveatWarning, bootstrap_weighted_hr

TARGET_S = 30.0
#: The notebook's default propensity covariates (notebooks/07-sensitivity.ipynb).
PS_COVARIATES = ["age", "sex:Female", "underlying_disease:Yes", "symptoms:Yes", "kps_group:< 70",
                 "histology:EAC|Other", "grade_group:G3-G4", "t_stage_group:T3-4", "n_stage_group:N+",
                 "synchronous_liver_met:Yes", "distant_ln_met:Yes", "primary_surgery:Yes",
                 "liver_met_number:Multiple"]


def _run(patients, n_boot: int, jobs: int):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PropensityCaveatWarning)
        out = bootstrap_weighted_hr(patients, PS_COVARIATES, n_boot=n_boot, seed=SEED,
                                    trim_quantiles=(0.01, 0.99), n_jobs=jobs)
    return time.perf_counter() - start, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--data", default=None)
    args = parser.parse_args(argv)
    patients = load_study(args.data or data_dir()).patients
    t_par, par = _run(patients, args.n_boot, args.jobs)
    t_one, one = _run(patients, args.n_boot, 1)
    same = np.array_equal(par["coefs"], one["coefs"], equal_nan=True)
    print(f"{args.n_boot} replicates, {len(patients)} patients, seed {SEED}")
    print(f"  {args.jobs} workers: {t_par:6.1f} s   ({1000 * t_par / args.n_boot:.1f} ms per replicate)")
    print(f"  1 worker : {t_one:6.1f} s")
    print(f"  identical replicates for 1 and {args.jobs} workers: {same}")
    print(f"  failed replicates: {par['n_failed']}")
    for ep in ("os", "pfs"):
        for est in ("ATE", "ATO"):
            b = par[ep][est]
            print(f"  {ep.upper():3s} {est}: 95% CI {b['lower']:.3f}-{b['upper']:.3f} ({b['n_valid']} valid)")
    ok = t_par <= TARGET_S and same
    print(f"target <= {TARGET_S:.0f} s on {args.jobs} cores: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
