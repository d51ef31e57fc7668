"""Smoke tests of the side-by-side benchmark scripts (scripts/benchmark_cox.py, benchmark_km.py,
benchmark_table1.py): each runs end to end at a tiny size and prints its report and its target lines.

No timing is asserted (speed is measured by the scripts themselves, ``make bench``); the agreement checks
the scripts print (coefficients, survival estimates, chi-square, SMDs) are asserted to pass, since at any
size they hold when the code is right. R is used when ``Rscript`` is present, otherwise the scripts say so.
"""
from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_cox_runs_and_reports_its_targets(capsys):
    module = _script("benchmark_cox")
    assert module.main(["--sizes", "400", "--repeat", "1", "--no-r"]) == 0
    out = capsys.readouterr().out
    assert "engine (fit_coxph)" in out and "lifelines CoxPHFitter" in out
    assert "n/a : engine >= 5x faster than R at 100,000" in out
    assert "n/a : coefficients within 1e-08 of R's (R not available)" in out


def test_benchmark_km_runs_and_matches_lifelines(capsys):
    module = _script("benchmark_km")
    assert module.main(["--sizes", "400", "--repeat", "1", "--no-r"]) == 0
    out = capsys.readouterr().out
    assert "ours" in out and "lifelines" in out
    assert "n/a : estimates equal to R's" in out


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript is not installed")
def test_benchmark_cox_and_km_agree_with_r(capsys):
    """With R: the coefficients, survival estimates and chi-square agree with R's at a tiny size."""
    assert _script("benchmark_cox").main(["--sizes", "400", "--repeat", "1", "--no-lifelines"]) == 0
    assert _script("benchmark_km").main(["--sizes", "400", "--repeat", "1", "--no-lifelines"]) == 0
    out = capsys.readouterr().out
    if "R failed" in out or "R not available" in out:     # Rscript without the survival package
        pytest.skip("R's survival package is not installed")
    assert "PASS: coefficients within 1e-08 of R's" in out
    assert "PASS: S(t) and its standard error" in out and "PASS: log-rank chi-square" in out


def test_benchmark_table1_runs_and_says_there_is_no_r_reference(capsys):
    pytest.importorskip("tableone")
    module = _script("benchmark_table1")
    assert module.main(["--sizes", "300,600", "--repeat", "1", "--base", "300"]) == 0
    out = capsys.readouterr().out
    assert "no R reference" in out
    assert "PASS: SMDs equal to tableone's" in out
    assert "FAIL" not in out


def test_default_sizes_include_one_million():
    """``make bench`` runs the scripts without arguments: the 10^6 row of the targets must be in it."""
    for name in ("benchmark_cox", "benchmark_km", "benchmark_table1"):
        assert "1000000" in _script(name).DEFAULT_SIZES.split(",")


@pytest.mark.slow
def test_benchmark_report_builds_a_generated_cohort_end_to_end_and_measures_it(capsys):
    """scripts/benchmark_report.py: generate a cohort, run the pipeline in a new process, report its time,
    the notebooks' times and the peak memory of the process tree (a tiny cohort: no target line)."""
    module = _script("benchmark_report")
    assert module.main(["--sizes", "400"]) == 0
    out = capsys.readouterr().out
    assert "n=400:" in out and "FAILED" not in out, out
    notebooks = out.split("notebooks:")[-1]
    assert "peak memory" in out and " 05 " in notebooks and " 01 " in notebooks, out
    assert re.search(r"processes at the peak, (executing \S+\.ipynb|rendering|validating)", out), out


def test_benchmark_scale_runs_every_notebook_step_at_a_tiny_size(capsys):
    module = _script("benchmark_scale")
    assert module.main(["--sizes", "300", "--bootstrap", "0", "--max-memory-gb", "0"]) == 0
    out = capsys.readouterr().out
    for step in ("C-index validation", "multiple imputation", "stratified analyses and subgroups",
                 "patient flow, disposition, exposure, deaths"):
        assert step in out
    assert "failed" not in out.split("step")[-1], out
