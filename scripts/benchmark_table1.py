"""Table 1 benchmark: helpers.analyses.baseline.summarise_baseline vs the Python ``tableone`` package.

Not a test: a report for issue 16 (Table 1 on registry-size cohorts, side by side with a reference). There
is no R reference: R's ``tableone`` is not installed here (no Debian package), so the output says
"no R reference"; the Python ``tableone`` (a test extra of this project) is the comparison. The script
exits 0 whether or not a check passes and says which do.

Data: the project's synthetic generator (``helpers.data.synthetic.generate_cohort(n_total=N)``, the
shipped dictionary's columns, missing values included) writes one cohort of ``--base`` patients (default
100,000) that is loaded and validated once (``load_study``); each size is a sample of its patients
(without replacement below the base size, with replacement above it; seed from analysis.yaml). The rows
are the shipped analysis plan's ``baseline.rows`` (notebook 02's Table 1).

Timed per size (best of ``--repeat``; one run from 10^6 on):

- ours: ``summarise_baseline(study, plan["baseline"])``, what notebook 02 calls (counts, summaries, tests
  under the plan's rule, SMDs);
- tableone: ``TableOne(data, columns=rows, categorical=..., nonnormal=[continuous rows], groupby="arm",
  pval=True, smd=True)``.

Checked where the two compute the same quantity: the SMD of every row without missing values (tableone
counts a missing categorical value as a level, this project uses known values; tolerance 1e-9), and the
P value of every row where both ran the same test: Pearson chi-square of an r x 2 table with r > 2
(tableone applies Yates' correction to 2 x 2 tables, which this project's "cochran" rule does not when all
expected counts are >= 5) and Fisher's exact test (tolerance 1e-9 relative). The other P values (2 x 2
tables; Wilcoxon rank-sum with continuity correction vs tableone's Kruskal-Wallis without) are printed
for information.

Usage::

    python scripts/benchmark_table1.py [--sizes 10000,100000,1000000] [--repeat 3] [--base 100000]
                                       [--no-tableone-large]
"""
from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import dataclasses
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.benchmarking import best_of, verdict
from helpers.analyses.baseline import summarise_baseline
from helpers.config import load_plan
from helpers.stats.types import TestResult

DEFAULT_SIZES = "10000,100000,1000000"
LARGE = 1_000_000
SMD_TOLERANCE = 1e-9
P_TOLERANCE = 1e-9
OTHER_TESTS = {("pearson", "Chi-squared"): "2 x 2 tables, Pearson here and Yates-corrected in tableone",
               ("wilcoxon", "Kruskal-Wallis"): "Wilcoxon rank-sum (continuity-corrected) here, Kruskal-Wallis "
                                               "in tableone"}




def base_study(n: int):
    """Generate, write and load (validate, derive) a synthetic cohort of n patients."""
    from helpers.data.load import load_study
    from helpers.data.synthetic import generate_cohort, write_cohort

    cohort = generate_cohort(n_total=n)
    with tempfile.TemporaryDirectory() as folder:
        write_cohort(cohort, Path(folder))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_study(Path(folder))


def sized(study, n: int, seed: int):
    """The study with a sample of n of its patients (with replacement when n exceeds them)."""
    patients = study.patients
    if n == len(patients):
        return study
    rng = np.random.default_rng(seed + n)
    rows = rng.choice(len(patients), size=n, replace=n > len(patients))
    return dataclasses.replace(study, patients=patients.iloc[np.sort(rows)].reset_index(drop=True))


def run_ours(study, choices: dict, repeat: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return best_of(repeat, lambda: summarise_baseline(study, choices))


def run_tableone(study, table, repeat: int):
    from tableone import TableOne

    rows = [r.variable for r in table.rows]
    categorical = [r.variable for r in table.rows if r.kind == "categorical"]
    continuous = [r.variable for r in table.rows if r.kind != "categorical"]
    data = study.patients[rows + ["arm"]].copy()
    data["arm"] = data["arm"].astype(str)

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return TableOne(data, columns=rows, categorical=categorical, nonnormal=continuous, groupby="arm",
                            pval=True, smd=True)
    return best_of(repeat, fit)


def compare(table, reference) -> dict:
    """SMD and P differences between our table and tableone's, where they compute the same quantity."""
    smd = reference.smd_table.apply(pd.to_numeric, errors="coerce").abs().max(axis=1)
    htest = reference.htest_table
    smd_diff, p_same, p_other = [], [], []
    for row in table.rows:
        missing = row.missing.get("Overall", 0) if isinstance(row.missing, dict) else 0
        if row.smd_value is not None and row.variable in smd.index and not missing:
            smd_diff.append(abs(row.smd_value - float(smd[row.variable])))
        if not isinstance(row.test, TestResult) or row.variable not in htest.index:
            continue
        theirs, their_test = float(htest.loc[row.variable, "P-Value"]), str(htest.loc[row.variable, "Test"])
        ours = float(row.test.p)
        rel = abs(ours - theirs) / max(abs(theirs), 1e-300) if ours != theirs else 0.0
        same = ((row.test.test == "pearson" and (row.test.df or 0) > 1 and their_test == "Chi-squared")
                or (row.test.test == "yates" and their_test == "Chi-squared")
                or (row.test.test == "fisher" and their_test == "Fisher's exact"))
        (p_same if same else p_other).append((row.variable, row.test.test, their_test, rel, ours == theirs == 0))
    return {"smd": smd_diff, "p_same": p_same, "p_other": p_other}




def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"comma-separated patients (default {DEFAULT_SIZES})")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many tables (default 3)")
    parser.add_argument("--base", type=int, default=100_000,
                        help="patients of the generated cohort the sizes are sampled from (default 100,000)")
    parser.add_argument("--no-tableone", action="store_true", help="time our table only")
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",") if s]
    plan = load_plan()
    seed, choices = int(plan["seed"]), plan["baseline"]
    t0 = time.perf_counter()
    study = base_study(min(args.base, max(sizes)))
    print(f"setup: generated, wrote and loaded {len(study.patients):,} patients in "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    results = []
    for n in sizes:
        data = sized(study, n, seed)
        repeat = args.repeat if n < LARGE else 1
        ours_s, table = run_ours(data, choices, repeat)
        row = {"n": n, "rows": len(table.rows), "ours_s": ours_s, "tableone_s": None}
        if not args.no_tableone:
            row["tableone_s"], reference = run_tableone(data, table, repeat)
            row.update(compare(table, reference))
        results.append(row)
        print(f"n = {n:,} done", file=sys.stderr, flush=True)

    print(f"Table 1 ({results[0]['rows']} rows of the shipped plan, two arms, tests and SMDs); seconds = best of "
          f"{args.repeat} (1 from {LARGE:,} patients). No R reference: R's tableone is not installed "
          f"(no Debian package).")
    for row in results:
        line = f"n = {row['n']:>9,}: ours {row['ours_s']:.3f} s"
        if row["tableone_s"] is not None:
            line += (f", tableone {row['tableone_s']:.3f} s (tableone / ours = "
                     f"{row['tableone_s'] / row['ours_s']:.1f}x)")
        print(line)
        if row["tableone_s"] is not None:
            same = row["p_same"]
            kinds = {}
            for _, ours, theirs, rel, _zero in row["p_other"]:
                kind = OTHER_TESTS.get((ours, theirs), f"{ours} here, {theirs} in tableone")
                kinds.setdefault(kind, []).append(rel)
            other = "; ".join(f"{kind}: {len(rels)} row(s), largest {max(rels):.2g}" for kind, rels in kinds.items())
            underflow = sum(r[4] for r in same)
            print(f"              SMD: {len(row['smd'])} rows without missing values, largest |difference| "
                  f"{max(row['smd'], default=0):.2g}; P same test: {len(same)} rows, largest relative "
                  f"difference {max((r[3] for r in same), default=0):.2g}"
                  + (f" ({underflow} of them 0 in both: below the smallest double)" if underflow else ""))
            if other:
                print(f"              P of different tests (relative difference, for information): {other}")
    print()
    print("n/a : speed against R (no R reference: R's tableone is not installed)")
    compared = [r for r in results if r["tableone_s"] is not None]
    missed = 0
    if compared:
        smd = max((d for r in compared for d in r["smd"]), default=0.0)
        p = max((x[3] for r in compared for x in r["p_same"]), default=0.0)
        missed += (smd > SMD_TOLERANCE) + (p > P_TOLERANCE)
        print(f"{verdict(smd <= SMD_TOLERANCE)}: SMDs equal to tableone's within {SMD_TOLERANCE:g} (rows without "
              f"missing values; largest {smd:.2g})")
        print(f"{verdict(p <= P_TOLERANCE)}: P values equal to tableone's within {P_TOLERANCE:g} relative where "
              f"both run the same test (largest {p:.2g})")
        for target_n in (100_000, 1_000_000):
            row = next((r for r in compared if r["n"] == target_n), None)
            if row is not None:
                print(f"info: ours is {row['tableone_s'] / row['ours_s']:.1f}x faster than tableone at {target_n:,}")
    print("All checks met." if not missed else f"{missed} check(s) NOT met (this script is a report: exit 0).")
    print(json.dumps({"sizes": sizes, "seed": seed, "base": len(study.patients)}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
