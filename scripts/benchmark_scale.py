"""Scale benchmark: the analysis steps on synthetic cohorts of 1,000, 10,000 and 100,000 patients.

For each size the generator writes a cohort (``helpers.data.synthetic.generate_cohort(n_total=N)``, whole-array
code path) to a temporary folder; then each analysis step runs as the notebooks call it, without rendering.
Printed per step: wall time (s) and peak extra memory (MB: the highest RSS of this process plus the
proportional set size of its worker processes, sampled every 100 ms with psutil (reading a worker's
proportional set size costs CPU: sampled every 10 ms it slowed the steps it measured), minus the value
before the step; native numpy/pandas buffers included), and the growth exponent k of the time from the second-largest
to the largest size (time ~ n^k; n log n from 10^4 to 10^5 is k = 1.10). A step with k > 1.25 and more than 0.5 s is flagged "worse than n log n".

The sensitivity step runs as notebook 07's defaults (``ci_method="auto"``): the 1,000-replicate
whole-pipeline bootstrap up to ``helpers.stats.propensity.BOOTSTRAP_MAX_N`` patients, the robust (sandwich) CI
above. A separate row times the bootstrap itself with ``--bootstrap`` replicates (default 20) at every
size, for information; it is not part of the total (its time is linear in the replicates).

Every analysis step of notebooks 01-07 runs (figures and rendering are timed by ``scripts/benchmark_report.py``);
steps with a process pool use the plan's worker count (``workers: auto``). Every step of notebook 05 runs,
with the multivariable model fixed at all candidates of the shipped analysis plan (the notebook's
P < 0.05 screen selects at most these); the Firth model runs only when a level is sparse (as in the
notebook), so at large n that row times the sparse-level check alone.

Usage::

    python scripts/benchmark_scale.py [--sizes 1000,10000,100000] [--bootstrap 20] [--skip-sensitivity]
                                      [--step-budget 120] [--max-memory-gb 12]

A step whose n log n extrapolation from the previous size exceeds ``--step-budget`` seconds is skipped
and marked so (a step that is worse than n log n would take longer still).
"""
from __future__ import annotations

import os

# One BLAS thread, as in the pipeline's notebook kernels (two of which run side by side on two cores):
# OpenBLAS threads that wait for a busy core make the many small matrix products of the Cox fits up to
# 15 times slower. Set before numpy is imported; an explicit setting in the environment wins.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse
import math
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Callable

import psutil

from helpers.benchmarking import resident
from helpers.config import PROJECT_ROOT, SEED
from helpers.parallel import resolve_workers

#: Worker processes of the steps that use a pool: as the notebooks (the plan's ``workers: auto``).
WORKERS = resolve_workers("auto")
TARGET_SECONDS = 45.0   # issue 16: the analysis steps at 100,000 patients
#: Steps whose method changes with n (the sensitivity step's bootstrap stops above BOOTSTRAP_MAX_N):
#: never skipped by the n log n extrapolation.
BOUNDED_STEPS = ("sensitivity, notebook defaults (run_sensitivity)",
                 "C-index validation, notebook defaults (validate_concordance)")
#: Rows whose name starts with this are shown but not counted in the analysis total.
INFO_PREFIX = "(info)"
#: The shipped data folder: its analysis plan (candidates, merged levels, published model) is used for every size.
DATA_DIR = PROJECT_ROOT / "data"
PS_COVARIATES = ["age", "sex:Female", "underlying_disease:Yes", "symptoms:Yes", "kps_group:< 70",
                 "histology:EAC|Other", "grade_group:G3-G4", "t_stage_group:T3-4", "n_stage_group:N+",
                 "synchronous_liver_met:Yes", "distant_ln_met:Yes", "primary_surgery:Yes",
                 "liver_met_number:Multiple"]


class PeakRSS:
    """Context manager: highest resident set size (bytes) of this process and its child processes (the
    worker pools) together, above the starting one, sampled in a thread."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.process = psutil.Process()
        self.extra = 0

    def _rss(self) -> int:
        total = self.process.memory_info().rss
        for child in self.process.children(recursive=True):
            try:
                total += resident(child)
            except psutil.Error:    # a worker that has just finished
                pass
        return total

    def __enter__(self):
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        self.extra = self.peak - self.start
        return False


def measure(step: Callable[[], object]) -> tuple[object, float, float, str]:
    """Run ``step``; return (value, seconds, peak extra MB, error text or '')."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with PeakRSS() as memory:
            started = time.perf_counter()
            try:
                value, error = step(), ""
            except MemoryError:
                value, error = None, "MemoryError (over the --max-memory-gb limit)"
            except Exception as exc:  # a failing step is reported and the others still run
                value, error = None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
            seconds = time.perf_counter() - started
    return value, seconds, memory.extra / 2**20, error


def analysis_steps(folder: Path, n_bootstrap: int, sensitivity: bool) -> list[tuple[str, Callable]]:
    """(name, thunk) pairs in pipeline order; later thunks use the values of earlier ones via ``state``."""
    from helpers.analyses import baseline
    from helpers.analyses import prognostic
    from helpers.config import load_plan
    from helpers.analyses import response
    from helpers.analyses import safety
    from helpers.data.load import derive_endpoints, load_study

    state: dict = {}

    def load():
        state["study"] = load_study(folder)
        return state["study"]

    def derive():
        s = state["study"]
        return derive_endpoints(s.patients, s.cycles, s.config.days_per_month)

    def plan(section: str) -> dict:
        # the shipped data folder's analysis plan, the same at every size
        return load_plan(DATA_DIR)[section]

    def table1():
        return baseline.summarise_baseline(state["study"], plan("baseline"))

    def km_logrank_cox():
        from helpers.analyses.survival import analyse_endpoint
        return [analyse_endpoint(state["study"], ep, plan("survival")) for ep in ("os", "pfs")]

    def responses():
        return response.analyse_response(state["study"], plan("response"))

    def trae():
        return safety.analyse_safety(state["study"], plan("safety"))

    def cox_univariable():
        # the shipped analysis plan's prognostic choices (candidates, merged levels, published model)
        plan = load_plan(DATA_DIR)
        state["data"] = prognostic.prepare(state["study"], {**plan["prognostic"], "seed": plan["seed"],
                                                            "workers": WORKERS})
        state["uni"] = prognostic.fit_univariables(state["data"])
        return state["uni"]

    def cox_multivariable():
        # every candidate enters (entry_p=None): the same model size at every n, so the growth
        # exponent measures n alone (the notebook's P < 0.05 screen selects at most these terms)
        d = state["data"]
        state["mv"] = prognostic.fit_multivariable(d.patients, "os", d.candidates, entry_p=None,
                                                   post_baseline=d.post_baseline, workers=WORKERS)
        return state["mv"]

    def ph_test():
        return prognostic.check_proportional_hazards(state["mv"])

    def ph_remedy():
        return prognostic.fit_ph_remedy(state["mv"], state["data"].patients)

    def pfs_and_paper_models():
        d = state["data"]
        return (prognostic.fit_multivariable(d.patients, "pfs", d.candidates, entry_p=None, workers=WORKERS),
                prognostic.fit_published_model(d, "os"))

    def immortal_time():
        return prognostic.compare_immortal_time(state["data"], "os", state["mv"].selected)

    def firth():
        return prognostic.sparse_analysis(state["data"], state["mv"], "os")

    def imputation():
        return prognostic.multiple_imputation(state["data"], state["mv"], "os", seed=SEED, workers=WORKERS)

    def validation():
        # as notebook 05: the whole selection refitted per replicate, replicates drawn until the Monte Carlo
        # error of the optimism is below the plan's precision, in WORKERS processes
        d, choices = state["data"], load_plan(DATA_DIR)["prognostic"]
        return prognostic.validate_concordance(d.patients, "os", d.candidates, choices["entry_p"],
                                               choices["entry_test"], replicates=choices["bootstrap_replicates"],
                                               precision=choices["bootstrap_precision"], seed=SEED,
                                               workers=WORKERS)

    def cohort_tables():
        from helpers.analyses.cohort import (patient_flow, summarise_cohort, summarise_deaths,
                                             summarise_disposition, summarise_exposure)
        s, choices = state["study"], plan("cohort")
        lost = plan("survival")["lost_to_followup_months"]
        return (summarise_cohort(s), patient_flow(s, lost), summarise_disposition(s, choices, lost),
                summarise_exposure(s, choices), summarise_deaths(s, choices))

    def stratified_and_subgroups():
        from helpers.analyses.subgroups import run_stratified, run_subgroups
        return (run_stratified(state["study"], plan("stratified")),
                run_subgroups(state["study"], plan("subgroups"), workers=WORKERS))

    def sensitivity_analysis():
        from helpers.analyses.sensitivity import run_sensitivity

        return run_sensitivity(state["study"], plan("sensitivity"), seed=SEED, workers=WORKERS)

    def bootstrap_only():
        from helpers.stats.propensity import bootstrap_weighted_hr

        s = state["study"]
        return bootstrap_weighted_hr(s.patients, PS_COVARIATES, n_bootstrap, SEED, (0.01, 0.99),
                                     s.config.experimental_arm, workers=WORKERS)

    steps = [("load + validate + derive (load_study)", load), ("derive endpoints again (derive_endpoints)", derive),
             ("patient flow, disposition, exposure, deaths (notebook 01)", cohort_tables),
             ("Table 1 (summarise_baseline)", table1), ("KM, log-rank, Cox HR, RMST (analyse_endpoint x2)",
                                                         km_logrank_cox),
             ("response (analyse_response)", responses), ("safety (analyse_safety)", trae),
             ("Cox univariable, OS and PFS, plan candidates (fit_univariables)", cox_univariable),
             ("Cox multivariable, all candidates + drop-one LR (fit_multivariable)", cox_multivariable),
             ("PH test (check_proportional_hazards)", ph_test),
             ("PH remedy: strata, x log(t) (fit_ph_remedy)", ph_remedy),
             ("PFS multivariable, published-specification model", pfs_and_paper_models),
             ("baseline vs landmark vs time-varying cycles (compare_immortal_time)", immortal_time),
             ("Firth, sparse levels only (fit_firth_sensitivity)", firth),
             ("multiple imputation, 20 (fit_multiple_imputation)", imputation),
             ("C-index validation, notebook defaults (validate_concordance)", validation)]
    if sensitivity:
        steps.append(("sensitivity, notebook defaults (run_sensitivity)", sensitivity_analysis))
        steps.append(("stratified analyses and subgroups (run_stratified, run_subgroups)", stratified_and_subgroups))
        if n_bootstrap:
            steps.append((f"{INFO_PREFIX} bootstrap, {n_bootstrap} replicates", bootstrap_only))
    return steps


def predicted_seconds(previous: tuple[int, float] | None, n: int) -> float:
    """Time at size ``n`` if the step grew as n log n from its previous measurement."""
    if previous is None:
        return 0.0
    n0, seconds = previous
    return seconds * (n / n0) * math.log(n) / math.log(n0)


def run_size(n: int, n_bootstrap: int, sensitivity: bool, budget: float = math.inf,
             previous: dict | None = None) -> dict:
    from helpers.data.synthetic import generate_cohort, write_cohort

    rows = {}
    with tempfile.TemporaryDirectory(prefix=f"bench-{n}-") as tmp:
        folder = Path(tmp)
        cohort, seconds, mb, error = measure(lambda: generate_cohort(n_total=n))
        rows["(setup) generate cohort"] = (seconds, mb, error)
        _, seconds, mb, error = measure(lambda: write_cohort(cohort, folder))
        rows["(setup) write CSV files"] = (seconds, mb, error)
        sizes = f"{len(cohort.patients):,} patients, {len(cohort.cycles):,} cycles, {len(cohort.adverse_events):,} AEs"
        del cohort
        for name, step in analysis_steps(folder, n_bootstrap, sensitivity):
            guess = predicted_seconds((previous or {}).get(name), n)
            if guess > budget and name not in BOUNDED_STEPS:   # would take too long even at n log n: say so instead of waiting
                rows[name] = (math.nan, math.nan, f"skipped: > {guess:.0f} s predicted (n log n from smaller n)")
                continue
            print(f"    {name} ...", end="", file=sys.stderr, flush=True)
            _, seconds, mb, error = measure(step)
            print(f" {error or f'{seconds:.2f} s, {mb:.0f} MB'}", file=sys.stderr, flush=True)
            rows[name] = (seconds, mb, error)
    return {"rows": rows, "sizes": sizes}


def print_table(results: dict[int, dict]) -> list[str]:
    sizes = sorted(results)
    names = list(results[sizes[-1]]["rows"])
    width = max(len(n) for n in names) + 2
    head = f"{'step':<{width}}" + "".join(f"{f'n={n:,}':>22}" for n in sizes) + f"{'k':>7}  note"
    print(head)
    print(f"{'':<{width}}" + "".join(f"{'s':>11}{'MB':>11}" for _ in sizes))
    print("-" * len(head))
    flagged = []
    for name in names:
        cells = ""
        for n in sizes:
            seconds, mb, error = results[n]["rows"].get(name, (math.nan, math.nan, "missing"))
            cells += f"{('skipped' if error.startswith('skipped') else 'failed'):>22}" if error else \
                f"{seconds:>11.2f}{mb:>11.0f}"
        note = next((results[n]["rows"][name][2] for n in sizes if results[n]["rows"].get(name, (0, 0, ""))[2]), "")
        k = math.nan
        if len(sizes) > 1 and not note:
            (s1, *_), (s2, *_) = results[sizes[-2]]["rows"][name], results[sizes[-1]]["rows"][name]
            if s1 > 0:
                k = math.log(s2 / s1) / math.log(sizes[-1] / sizes[-2])
            if k > 1.25 and s2 > 0.5:
                note = "worse than n log n"
                flagged.append(name)
        print(f"{name:<{width}}{cells}{k:>7.2f}  {note}")
    for n in sizes:
        total = sum(s for name, (s, _, e) in results[n]["rows"].items()
                    if not name.startswith(("(setup)", INFO_PREFIX)) and not e)
        verdict = ""
        if any(e for _, _, e in results[n]["rows"].values()):
            verdict = " (steps that failed or were skipped not counted)"
        if n >= 100_000:
            verdict += f" (target <= {TARGET_SECONDS:.0f} s: {'met' if total <= TARGET_SECONDS else 'NOT met'})"
        print(f"n={n:,}: {results[n]['sizes']}; analysis total {total:.1f} s{verdict}")
    return flagged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated cohort sizes")
    parser.add_argument("--bootstrap", type=int, default=20,
                        help="replicates of the separately timed bootstrap row (0: leave it out)")
    parser.add_argument("--skip-sensitivity", action="store_true", help="leave out the propensity-score step")
    parser.add_argument("--max-memory-gb", type=float, default=12.0,
                        help="address-space limit of the process (0: none); protects the machine")
    parser.add_argument("--step-budget", type=float, default=120.0,
                        help="skip a step whose n log n extrapolation from the previous size exceeds this (s)")
    args = parser.parse_args(argv)
    if args.max_memory_gb:   # a step that needs more fails with MemoryError instead of being OOM-killed
        import resource

        limit = int(args.max_memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"Scale benchmark on {psutil.cpu_count()} CPU(s), {WORKERS} worker processes; Python {sys.version.split()[0]}; "
          f"seed {SEED}")
    results = {}
    for n in sizes:
        print(f"... n = {n:,}", file=sys.stderr, flush=True)
        previous = {name: (sizes[sizes.index(n) - 1], row[0]) for name, row in results[sizes[sizes.index(n) - 1]]["rows"].items()
                    if not row[2]} if results else {}
        results[n] = run_size(n, args.bootstrap, not args.skip_sensitivity, args.step_budget, previous)
    flagged = print_table(results)
    print("Steps that grow worse than n log n: " + (", ".join(flagged) if flagged else "none"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
