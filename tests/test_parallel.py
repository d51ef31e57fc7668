"""Process pools (helpers.parallel) give the results of one worker; Harrell's C in O(n log^2 n) equals the
pairwise definition (and so R's concordance(), tested in test_cox.py against tests/reference/cox_validate.R)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from helpers.analyses import prognostic
from helpers.config import PROJECT_ROOT
from helpers.parallel import available_cores, map_tasks, resolve_workers
from helpers.stats.concordance import harrell_c, pair_counts, pair_counts_pairwise

VALIDATE = json.loads((PROJECT_ROOT / "tests" / "reference" / "cox_validate.json").read_text())


@pytest.fixture(scope="module")
def veteran() -> pd.DataFrame:
    frame = pd.DataFrame(VALIDATE["veteran"]).rename(columns={"time": "os_months", "status": "os_event"})
    frame["celltype"] = pd.Categorical(frame["celltype"], categories=["squamous", "smallcell", "adeno", "large"])
    return frame


def test_workers_follow_the_machine_unless_the_plan_names_a_number():
    assert resolve_workers("auto") == available_cores() >= 1
    assert resolve_workers(None) == available_cores()
    assert resolve_workers(3) == 3 and resolve_workers("1") == 1
    for bad in (0, -2, "many", True, 1.5j):
        with pytest.raises(ValueError, match="workers must be 'auto' or a positive integer"):
            resolve_workers(bad)


def _square_plus(context, task):
    return context["offset"] + task * task


def test_map_tasks_returns_results_in_task_order_for_any_worker_count():
    tasks = list(range(23))
    one = map_tasks(_square_plus, tasks, {"offset": 5}, workers=1)
    assert one == [5 + t * t for t in tasks]
    assert map_tasks(_square_plus, tasks, {"offset": 5}, workers=2) == one
    assert map_tasks(_square_plus, tasks, {"offset": 5}, workers=7) == one
    assert map_tasks(_square_plus, [], {"offset": 5}, workers=2) == []


@pytest.mark.parametrize("n", [1, 2, 3, 17, 64, 65, 200])
def test_pair_counts_equal_the_pairwise_definition_with_tied_times_and_scores(n):
    rng = np.random.default_rng(n)
    for _ in range(20):
        time = rng.integers(1, 8, n).astype(float)
        event = rng.integers(0, 2, n)
        risk = rng.integers(0, 4, n).astype(float)
        assert pair_counts(time, event, risk) == pair_counts_pairwise(time, event, risk)


def test_harrell_c_above_the_old_pairwise_limit_equals_the_pairwise_definition():
    # Above 5,000 patients lifelines' estimate was used (another rule for a censoring tied with a death).
    rng = np.random.default_rng(7)
    n = 6000
    time = np.round(rng.exponential(12, n), 0)
    event = rng.integers(0, 2, n)
    risk = np.round(rng.normal(size=n), 1)
    conc, disc, tied = pair_counts_pairwise(time, event, risk)
    assert harrell_c(time, event, risk) == pytest.approx((conc + tied / 2) / (conc + disc + tied), abs=1e-15)
    assert np.isnan(harrell_c([1.0, 2.0], [0, 0], [0.1, 0.2]))


def test_validation_replicates_give_the_same_result_with_one_or_two_workers(veteran):
    ref = VALIDATE["selection"]
    kwargs = dict(entry_p=ref["entry_p"], replicates=30, seed=11)
    one = prognostic.validate_concordance(veteran, "os", ref["candidates"], workers=1, **kwargs)
    two = prognostic.validate_concordance(veteran, "os", ref["candidates"], workers=2, **kwargs)
    assert (one.apparent, one.optimism, one.used, one.times_selected) == \
        (two.apparent, two.optimism, two.used, two.times_selected)
    assert one.replicates == 30 and one.precision is None


def test_precision_stops_the_bootstrap_at_the_first_batch_with_a_small_monte_carlo_error(veteran):
    ref = VALIDATE["selection"]
    full = prognostic.validate_concordance(veteran, "os", ref["candidates"], entry_p=ref["entry_p"],
                                           replicates=40, seed=3)
    loose = prognostic.validate_concordance(veteran, "os", ref["candidates"], entry_p=ref["entry_p"],
                                            replicates=40, seed=3, precision=1.0)
    assert loose.replicates == prognostic.VALIDATION_BATCH and loose.mcse < 1.0
    # the first batch is the first replicates of the unstopped run (one stream, drawn in turn)
    tight = prognostic.validate_concordance(veteran, "os", ref["candidates"], entry_p=ref["entry_p"],
                                            replicates=prognostic.VALIDATION_BATCH, seed=3)
    assert loose.optimism == tight.optimism
    never = prognostic.validate_concordance(veteran, "os", ref["candidates"], entry_p=ref["entry_p"],
                                            replicates=40, seed=3, precision=1e-9)
    assert never.replicates == 40 and never.optimism == full.optimism


def test_bootstrap_rule_is_said_in_words(veteran):
    from helpers.report.prognostic import bootstrap_rule_sentence
    ref = VALIDATE["selection"]
    loose = prognostic.validate_concordance(veteran, "os", ref["candidates"], entry_p=ref["entry_p"],
                                            replicates=40, seed=3, precision=1.0)
    text = bootstrap_rule_sentence(loose)
    assert text.startswith("Replicates were drawn in batches of 10 until the Monte Carlo standard error")
    assert "at most 40; 10 were needed" in text
    capped = prognostic.validate_concordance(veteran, "os", ref["candidates"], entry_p=ref["entry_p"],
                                             replicates=20, seed=3, precision=1e-9)
    assert "below 1e-09, at most 20; all 20 were drawn (final Monte Carlo standard error 0.0" in \
        bootstrap_rule_sentence(capped)


def test_multiple_imputation_fits_are_the_same_with_one_or_two_workers():
    rng = np.random.default_rng(5)
    n = 300
    frame = pd.DataFrame({"os_months": rng.exponential(10, n).round(1), "os_event": rng.integers(0, 2, n),
                          "age": rng.normal(60, 8, n), "size": rng.normal(4, 1, n)})
    frame.loc[rng.choice(n, 40, replace=False), "size"] = np.nan
    one = prognostic.fit_multiple_imputation(frame, "os", ["age", "size"], m=6, seed=2, workers=1)
    two = prognostic.fit_multiple_imputation(frame, "os", ["age", "size"], m=6, seed=2, workers=2)
    pd.testing.assert_frame_equal(one, two)
    assert one.attrs["n_mi"] == n and one.attrs["m"] == 6
